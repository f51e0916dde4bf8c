"""The ONVIF answers of a simulated camera: SOAP 1.2 envelopes, as a Profile S device words them.

Enough of the Device service (GetSystemDateAndTime, GetDeviceInformation, GetCapabilities,
GetServices), Media (GetProfiles, GetStreamUri) and Events (CreatePullPointSubscription,
PullMessages, Renew, Unsubscribe) for the cameras driver and for onvif-zeep-async, and the
check of a WS-Security UsernameToken (PasswordDigest).
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

from drivers.cameras.onvif import NS, password_digest

_DECL = '<?xml version="1.0" encoding="UTF-8"?>'
_ROOT = (f'<env:Envelope xmlns:env="{NS["env"]}" xmlns:tds="{NS["tds"]}" xmlns:tt="{NS["tt"]}" '
         f'xmlns:tev="{NS["tev"]}" xmlns:wsnt="{NS["wsnt"]}" xmlns:wsa="{NS["wsa"]}" '
         'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tns1="http://www.onvif.org/ver10/topics" '
         'xmlns:ter="http://www.onvif.org/ver10/error">')
TOKEN_MAX_AGE_S = 300  # a UsernameToken Created further than this from the camera's clock is refused


def envelope(body: str, header: str = "") -> bytes:
    return f"{_DECL}{_ROOT}<env:Header>{header}</env:Header><env:Body>{body}</env:Body></env:Envelope>".encode()


def fault(subcode: str, reason: str, code: str = "env:Sender") -> bytes:
    return envelope(f"<env:Fault><env:Code><env:Value>{code}</env:Value><env:Subcode><env:Value>{subcode}"
                    f'</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{escape(reason)}'
                    "</env:Text></env:Reason></env:Fault>")


@dataclass(frozen=True, slots=True)
class SoapRequest:
    operation: str  # local name of the Body's first child
    body: ET.Element
    user: str | None  # the UsernameToken's, if any
    token_ok: bool  # a UsernameToken was there and its digest and Created were right


def read_request(data: bytes, password_of: dict[str, str], camera_now: datetime) -> SoapRequest:
    """The operation asked and whether its UsernameToken holds; ValueError if it is not SOAP."""
    root = ET.fromstring(data)
    body = root.find("env:Body", NS)
    if body is None or len(body) == 0:
        raise ValueError("no SOAP Body")
    op = body[0].tag.rpartition("}")[2]
    token = root.find("env:Header/wsse:Security/wsse:UsernameToken", NS)
    if token is None:
        return SoapRequest(op, body[0], None, False)
    user = token.findtext("wsse:Username", "", NS)
    given = token.findtext("wsse:Password", "", NS)
    nonce_b64 = token.findtext("wsse:Nonce", "", NS)
    created = token.findtext("wsu:Created", "", NS)
    try:
        nonce = base64.b64decode(nonce_b64, validate=True)
        stamp = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except (binascii.Error, ValueError):
        return SoapRequest(op, body[0], user, False)
    fresh = abs((stamp - camera_now).total_seconds()) <= TOKEN_MAX_AGE_S
    right = user in password_of and given == password_digest(nonce, created, password_of[user])
    return SoapRequest(op, body[0], user, fresh and right)


def system_date_and_time(now: datetime) -> bytes:
    u = now.astimezone(UTC)
    return envelope(
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
        "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime><tt:Time><tt:Hour>{u.hour}</tt:Hour><tt:Minute>{u.minute}</tt:Minute>"
        f"<tt:Second>{u.second}</tt:Second></tt:Time><tt:Date><tt:Year>{u.year}</tt:Year>"
        f"<tt:Month>{u.month}</tt:Month><tt:Day>{u.day}</tt:Day></tt:Date></tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")


def device_information(manufacturer: str, model: str, firmware: str, serial: str) -> bytes:
    return envelope(
        f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{escape(manufacturer)}</tds:Manufacturer>"
        f"<tds:Model>{escape(model)}</tds:Model><tds:FirmwareVersion>{escape(firmware)}</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{escape(serial)}</tds:SerialNumber><tds:HardwareId>1.0</tds:HardwareId>"
        "</tds:GetDeviceInformationResponse>")


def capabilities(base: str) -> bytes:
    return envelope(
        "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        f"<tt:Device><tt:XAddr>{base}/onvif/device_service</tt:XAddr></tt:Device>"
        f"<tt:Events><tt:XAddr>{base}/onvif/event_service</tt:XAddr><tt:WSSubscriptionPolicySupport>false"
        "</tt:WSSubscriptionPolicySupport><tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
        "<tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport>"
        f"</tt:Events><tt:Media><tt:XAddr>{base}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities>"
        "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true"
        "</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
        "</tds:Capabilities></tds:GetCapabilitiesResponse>")


def services(base: str) -> bytes:
    entries = [("http://www.onvif.org/ver10/device/wsdl", "device_service"),
               ("http://www.onvif.org/ver10/media/wsdl", "media_service"),
               ("http://www.onvif.org/ver10/events/wsdl", "event_service")]
    body = "".join(f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{base}/onvif/{path}</tds:XAddr>"
                   "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
                   for ns, path in entries)
    return envelope(f"<tds:GetServicesResponse>{body}</tds:GetServicesResponse>")


def profiles(width: int, height: int, codec: str) -> bytes:
    encoding = "H264" if codec.upper() == "H264" else "H265" if codec.upper() == "H265" else "JPEG"
    return envelope(
        '<trt:GetProfilesResponse><trt:Profiles token="main" fixed="true"><tt:Name>main</tt:Name>'
        f'<tt:VideoEncoderConfiguration token="enc0"><tt:Name>enc0</tt:Name><tt:UseCount>1</tt:UseCount>'
        f"<tt:Encoding>{encoding}</tt:Encoding><tt:Resolution><tt:Width>{width}</tt:Width>"
        f"<tt:Height>{height}</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality>"
        "</tt:VideoEncoderConfiguration></trt:Profiles></trt:GetProfilesResponse>")


def stream_uri(uri: str) -> bytes:
    return envelope(f"<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
                    "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false"
                    "</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subscription(address: str, now: datetime, lifetime_s: int) -> bytes:
    return envelope(
        f"<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa:Address>{escape(address)}"
        f"</wsa:Address></tev:SubscriptionReference><wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime>"
        f"<wsnt:TerminationTime>{_iso(now + timedelta(seconds=lifetime_s))}</wsnt:TerminationTime>"
        "</tev:CreatePullPointSubscriptionResponse>")


@dataclass(frozen=True, slots=True)
class SimNotification:
    topic: str  # "VideoSource/GlobalSceneChange/ImagingService"
    item: str  # "State", "IsTamper", "Failed"
    value: bool
    operation: str = "Changed"  # Initialized on a new subscription
    source: tuple[str, str] = ("VideoSourceConfigurationToken", "vsc0")


def pull_messages(notes: list[SimNotification], now: datetime, lifetime_s: int) -> bytes:
    body = "".join(
        "<wsnt:NotificationMessage><wsnt:Topic Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/"
        f'ConcreteSet">tns1:{escape(n.topic)}</wsnt:Topic><wsnt:Message><tt:Message UtcTime="{_iso(now)}" '
        f'PropertyOperation="{n.operation}"><tt:Source><tt:SimpleItem Name={quoteattr(n.source[0])} '
        f"Value={quoteattr(n.source[1])}/></tt:Source><tt:Data><tt:SimpleItem Name={quoteattr(n.item)} "
        f'Value="{str(n.value).lower()}"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>'
        for n in notes)
    return envelope(f"<tev:PullMessagesResponse><tev:CurrentTime>{_iso(now)}</tev:CurrentTime>"
                    f"<tev:TerminationTime>{_iso(now + timedelta(seconds=lifetime_s))}</tev:TerminationTime>"
                    f"{body}</tev:PullMessagesResponse>")


def renew(now: datetime, lifetime_s: int) -> bytes:
    return envelope(f"<wsnt:RenewResponse><wsnt:TerminationTime>{_iso(now + timedelta(seconds=lifetime_s))}"
                    f"</wsnt:TerminationTime><wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime></wsnt:RenewResponse>")


def unsubscribe() -> bytes:
    return envelope("<wsnt:UnsubscribeResponse/>")


def duration_s(text: str | None, default: float) -> float:
    """PT5S, PT1M, PT0.5S -> seconds (the forms clients send); `default` if absent or odd."""
    if not text or not text.startswith("PT"):
        return default
    rest, total = text[2:], 0.0
    for unit, factor in (("H", 3600.0), ("M", 60.0), ("S", 1.0)):
        if unit in rest:
            number, rest = rest.split(unit, 1)
            try:
                total += float(number) * factor
            except ValueError:
                return default
    return total
