"""ONVIF over SOAP 1.2, sans-I/O: the few requests camera health needs, and their answers parsed.

Requests: GetSystemDateAndTime, GetDeviceInformation, GetCapabilities (Device service),
CreatePullPointSubscription, PullMessages, Renew, Unsubscribe (Events service), each with a
WS-Security UsernameToken (PasswordDigest) when credentials are given. Answers are parsed with
the standard library's expat (no DTD: an answer with a DOCTYPE is refused, so no entity
expansion) into typed values; anything else is a DecodeError naming what was missing.
Checked against onvif-zeep-async on the same simulator (tests/cameras/test_onvif_reference.py).
"""

from __future__ import annotations

import base64
import hashlib
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from drivers.errors import DecodeError

MAX_SOAP = 256 * 1024

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
_PW_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
_B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
_EV = "http://www.onvif.org/ver10/events/wsdl"

ACTIONS = {
    "GetSystemDateAndTime": "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime",
    "GetDeviceInformation": "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation",
    "GetCapabilities": "http://www.onvif.org/ver10/device/wsdl/GetCapabilities",
    "CreatePullPointSubscription": f"{_EV}/EventPortType/CreatePullPointSubscriptionRequest",
    "PullMessages": f"{_EV}/PullPointSubscription/PullMessagesRequest",
    "Renew": "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest",
    "Unsubscribe": "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest",
}
_BODIES = {
    "GetSystemDateAndTime": '<tds:GetSystemDateAndTime xmlns:tds="{tds}"/>',
    "GetDeviceInformation": '<tds:GetDeviceInformation xmlns:tds="{tds}"/>',
    "GetCapabilities": '<tds:GetCapabilities xmlns:tds="{tds}"><tds:Category>All</tds:Category></tds:GetCapabilities>',
    "CreatePullPointSubscription": ('<tev:CreatePullPointSubscription xmlns:tev="{tev}"><tev:InitialTerminationTime>'
                                    "PT{arg}S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>"),
    "PullMessages": ('<tev:PullMessages xmlns:tev="{tev}"><tev:Timeout>PT{arg}S</tev:Timeout>'
                     "<tev:MessageLimit>32</tev:MessageLimit></tev:PullMessages>"),
    "Renew": '<wsnt:Renew xmlns:wsnt="{wsnt}"><wsnt:TerminationTime>PT{arg}S</wsnt:TerminationTime></wsnt:Renew>',
    "Unsubscribe": '<wsnt:Unsubscribe xmlns:wsnt="{wsnt}"/>',
}


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str = field(repr=False)  # never in a repr, a log line or an event


def envelope(operation: str, *, creds: Credentials | None = None, created: datetime | None = None,
             to: str | None = None, arg: int = 0, nonce: bytes | None = None) -> bytes:
    """One SOAP 1.2 request. `created` is the camera's time (gateway time + its known drift):
    cameras refuse a UsernameToken whose Created is far from their clock."""
    header = []
    if creds is not None:
        header.append(username_token(creds, created or datetime.now(UTC), nonce or os.urandom(16)))
    if to is not None:
        header.append(f'<wsa:Action xmlns:wsa="{NS["wsa"]}">{ACTIONS[operation]}</wsa:Action>'
                      f'<wsa:To xmlns:wsa="{NS["wsa"]}">{escape(to)}</wsa:To>')
    body = _BODIES[operation].format(arg=int(arg), **NS)
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{NS["env"]}">'
            f'<env:Header>{"".join(header)}</env:Header><env:Body>{body}</env:Body></env:Envelope>').encode()


def password_digest(nonce: bytes, created: str, password: str) -> str:
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def username_token(creds: Credentials, created: datetime, nonce: bytes) -> str:
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return (f'<wsse:Security xmlns:wsse="{NS["wsse"]}" xmlns:wsu="{NS["wsu"]}" env:mustUnderstand="true">'
            f"<wsse:UsernameToken><wsse:Username>{escape(creds.user)}</wsse:Username>"
            f'<wsse:Password Type="{_PW_DIGEST}">{password_digest(nonce, stamp, creds.password)}</wsse:Password>'
            f'<wsse:Nonce EncodingType="{_B64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
            f"<wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken></wsse:Security>")


class SoapFault(Exception):
    """The camera answered with a SOAP Fault (e.g. ter:NotAuthorized): its code and reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"SOAP fault {code}: {reason}")
        self.code = code
        self.reason = reason


def parse_body(data: bytes) -> ET.Element:
    """The first child of the SOAP Body; SoapFault if it is a Fault; DecodeError if this is not SOAP."""
    if len(data) > MAX_SOAP:
        raise DecodeError(f"SOAP answer of {len(data)} bytes is over the {MAX_SOAP}-byte limit")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise DecodeError("SOAP answer with a DOCTYPE or ENTITY is refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DecodeError(f"SOAP answer is not XML: {exc}") from None
    body = root.find("env:Body", NS) if root.tag == f"{{{NS['env']}}}Envelope" else None
    if body is None or len(body) == 0:
        raise DecodeError(f"not a SOAP 1.2 envelope with a body (root {root.tag[:80]!r})")
    first = body[0]
    if first.tag == f"{{{NS['env']}}}Fault":
        code = first.find("env:Code/env:Subcode/env:Value", NS)
        if code is None:
            code = first.find("env:Code/env:Value", NS)
        reason = first.find("env:Reason/env:Text", NS)
        raise SoapFault((code.text or "").strip()[:80] if code is not None else "?",
                        (reason.text or "").strip()[:200] if reason is not None else "")
    return first


def _text(el: ET.Element, path: str, what: str) -> str:
    found = el.find(path, NS)
    if found is None or found.text is None:
        raise DecodeError(f"{what}: no {path}")
    return found.text.strip()


def _int(el: ET.Element, path: str, what: str) -> int:
    text = _text(el, path, what)
    if not text.isdigit() or len(text) > 6:
        raise DecodeError(f"{what}: {path} is not a number: {text[:20]!r}")
    return int(text)


def _expect(el: ET.Element, tag: str) -> None:
    prefix, _, name = tag.partition(":")
    if el.tag != f"{{{NS[prefix]}}}{name}":
        raise DecodeError(f"expected {tag}, got {el.tag[:80]!r}")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware: str


def parse_device_information(data: bytes) -> DeviceInfo:
    el = parse_body(data)
    _expect(el, "tds:GetDeviceInformationResponse")
    w = "GetDeviceInformation"
    return DeviceInfo(*(_text(el, f"tds:{n}", w)[:120] for n in
                        ("Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId")))


def parse_system_date_and_time(data: bytes) -> datetime:
    """The camera's UTC clock (to the second, as ONVIF gives it)."""
    el = parse_body(data)
    _expect(el, "tds:GetSystemDateAndTimeResponse")
    utc = el.find("tds:SystemDateAndTime/tt:UTCDateTime", NS)
    if utc is None:
        raise DecodeError("GetSystemDateAndTime: no SystemDateAndTime/UTCDateTime")
    w = "UTCDateTime"
    parts = [_int(utc, p, w) for p in ("tt:Date/tt:Year", "tt:Date/tt:Month", "tt:Date/tt:Day",
                                       "tt:Time/tt:Hour", "tt:Time/tt:Minute", "tt:Time/tt:Second")]
    try:
        year, month, day, hour, minute, second = parts
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError(f"UTCDateTime is not a date: {parts} ({exc})") from None


@dataclass(frozen=True, slots=True)
class Capabilities:
    events: str | None  # the Events service XAddr
    media: str | None


def parse_capabilities(data: bytes) -> Capabilities:
    el = parse_body(data)
    _expect(el, "tds:GetCapabilitiesResponse")
    caps = el.find("tds:Capabilities", NS)
    if caps is None:
        raise DecodeError("GetCapabilities: no Capabilities")
    events = caps.find("tt:Events/tt:XAddr", NS)
    media = caps.find("tt:Media/tt:XAddr", NS)
    return Capabilities((events.text or "").strip() or None if events is not None else None,
                        (media.text or "").strip() or None if media is not None else None)


def parse_subscription(data: bytes) -> str:
    """The PullPoint's address (the URL its PullMessages go to)."""
    el = parse_body(data)
    _expect(el, "tev:CreatePullPointSubscriptionResponse")
    return _text(el, "tev:SubscriptionReference/wsa:Address", "CreatePullPointSubscription")


@dataclass(frozen=True, slots=True)
class Notification:
    topic: str  # without its namespace prefix: "VideoSource/GlobalSceneChange/ImagingService"
    utc: str | None  # the message's UtcTime attribute, as given
    operation: str | None  # Initialized | Changed | Deleted
    source: dict[str, str]
    data: dict[str, str]


def parse_pull_messages(data: bytes) -> list[Notification]:
    el = parse_body(data)
    _expect(el, "tev:PullMessagesResponse")
    out: list[Notification] = []
    for note in el.findall("wsnt:NotificationMessage", NS):
        topic = note.find("wsnt:Topic", NS)
        if topic is None or not (topic.text or "").strip():
            raise DecodeError("NotificationMessage without a Topic")
        path = topic.text.strip().split(":", 1)[-1] if topic.text else ""
        msg = note.find("wsnt:Message/tt:Message", NS)
        if msg is None:
            raise DecodeError(f"NotificationMessage {path[:60]!r} without a tt:Message")
        out.append(Notification(path[:200], msg.get("UtcTime"), msg.get("PropertyOperation"),
                                _items(msg, "tt:Source"), _items(msg, "tt:Data")))
    return out


def _items(msg: ET.Element, path: str) -> dict[str, str]:
    items: dict[str, str] = {}
    for item in msg.findall(f"{path}/tt:SimpleItem", NS):
        name, value = item.get("Name"), item.get("Value")
        if name is None or value is None:
            raise DecodeError(f"{path} SimpleItem without Name or Value")
        items[name[:60]] = value[:200]
    return items


def parse_ok(data: bytes, operation: str) -> None:
    """A Renew or Unsubscribe answer: anything but a Fault will do."""
    el = parse_body(data)
    tag = el.tag.rpartition("}")[2]
    if tag != f"{operation}Response":
        raise DecodeError(f"expected {operation}Response, got {tag[:60]!r}")
