"""Open311 GeoReport v2 rules, pure: validation of a new report, the date window of a search,
the internal states and how they show publicly, and the public JSON of a request.

Internal states: received -> dispatched -> in_progress -> resolved, as TRANSITIONS allows (a
step back, a report closed at once, a closed one reopened). Publicly `resolved` is `closed` and
every other state `open`; `status_notes` says where it stands, and `updated_datetime` moves at
each change (the closing time once closed). A reporter's name, e-mail and phone are kept for
operators only: nothing here puts them in a public answer.

What a resident reads is in French, or in English when asked (collector.i18n): errors carry
messages (`Msg`) rendered in the request's language; the notes the collector writes itself are
stored in French and shown in English by `public_json(lang)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from collector.i18n import DEFAULT_LANG, Msg, msg, t
from collector.problem import Problem
from collector.reports import messages  # noqa: F401  (adds the catalog this module renders)
from collector.reports.formats import xml_safe
from collector.reports.services import LAMP_ID, LAMP_ID_RE, SERVICES, Service
from collector.rollup import PARIS
from collector.territory import Commune, Territory

if TYPE_CHECKING:  # the store and the CLI import this module, never the web app: aiohttp is the app's
    from aiohttp import web

STATES = ("received", "dispatched", "in_progress", "resolved")
OPEN_STATES = ("received", "dispatched", "in_progress")
#: the states each state may move to: forward, one step back, closed at once (a duplicate, nothing
#: found), and a closed request reopened
TRANSITIONS = {
    "received": ("dispatched", "in_progress", "resolved"),
    "dispatched": ("received", "in_progress", "resolved"),
    "in_progress": ("dispatched", "resolved"),
    "resolved": ("received",),
}
#: the notes the collector writes itself, by catalog key (stored in French, shown in either language)
SYSTEM_NOTES = ("report.note.received", "report.note.dispatched", "report.note.in_progress",
                "report.note.resolved", "report.note.lamp_restored")
DEFAULT_NOTES = {state: t(f"report.note.{state}", DEFAULT_LANG) for state in STATES}
LAMP_RESTORED_NOTE = t("report.note.lamp_restored", DEFAULT_LANG)
_NOTE_KEYS = {t(key, DEFAULT_LANG): key for key in SYSTEM_NOTES}
WINDOW = timedelta(days=90)
MAX_RESULTS = 1000
MAX_DESCRIPTION = 4000
MAX_NOTE = 1000
MAX_NAME = 100
MAX_FIELD = 500
#: a report further than this from every commune centre is outside the territory
MAX_DISTANCE_M = 12_000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,30}$")
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "device_id", "account_id")
KNOWN_FIELDS = frozenset({
    "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id", "zipcode", "description",
    "media_url", "api_key", *CONTACT_FIELDS,
})


class Open311Error(Problem):
    """An Open311 error: the body is `[{"code": status, "description": ...}, ...]` as the spec says,
    each description rendered in the request's language (routes.open311_language)."""

    def __init__(self, status: int, *errors: Msg, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, "open311", "Open311 error", "; ".join(m.render(DEFAULT_LANG) for m in errors),
                         headers=headers)
        self.errors = errors
        self.descriptions = tuple(m.render(DEFAULT_LANG) for m in errors)

    def in_language(self, lang: str) -> Open311Error:
        self.descriptions = tuple(m.render(lang) for m in self.errors)
        return self

    def response(self) -> web.Response:
        return self.open311_response()


def note_in(note: str | None, lang: str) -> str | None:
    """A status note as `lang` reads it: the collector's own notes translated, an operator's as written."""
    key = None if note is None else _NOTE_KEYS.get(note)
    return note if key is None else t(key, lang)


@dataclass(frozen=True, slots=True)
class Contact:
    """What identifies a reporter: stored for operators, never shown publicly."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewReport:
    commune: Commune
    service: Service
    lat: float | None
    lon: float | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    description: str | None
    media_url: str | None
    lamp_id: str | None  # "gateway/device" as given in attribute[lamp_id]
    contact: Contact
    #: the reporter's answers to the service's attributes, code -> value (lamp_id too, as typed)
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReportRow:
    id: int
    jurisdiction: str
    service_code: str
    description: str | None
    lat: float | None
    lon: float | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    media_url: str | None
    lamp_gateway: str | None
    lamp_device: str | None
    fault_since_ms: int | None
    state: str
    status_notes: str | None
    requested_ms: int
    updated_ms: int
    expected_ms: int | None
    reporters: int
    assigned_to: str | None = None

    @property
    def status(self) -> str:
        return "closed" if self.state == "resolved" else "open"

    def public_json(self, lang: str = DEFAULT_LANG) -> dict[str, Any]:
        """The GeoReport v2 request, with nothing about who reported it."""
        service = SERVICES.get(self.service_code)
        notice = None
        if self.fault_since_ms is not None:
            notice = t("report.notice.fault_since", lang, when=local_text(self.fault_since_ms, lang))
        return {
            "service_request_id": str(self.id),
            "status": self.status,
            "status_notes": note_in(self.status_notes, lang),
            "service_name": service.name_in(lang) if service else self.service_code,
            "service_code": self.service_code,
            "description": self.description,
            "agency_responsible": service.agency if service else None,
            "service_notice": notice,
            "requested_datetime": iso(self.requested_ms),
            "updated_datetime": iso(self.updated_ms),
            "expected_datetime": None if self.expected_ms is None else iso(self.expected_ms),
            "address": self.address,
            "address_id": self.address_id,
            "zipcode": self.zipcode,
            "lat": self.lat,
            "long": self.lon,
            "media_url": self.media_url,
        }

    def operator_json(self, lang: str = DEFAULT_LANG) -> dict[str, Any]:
        return {**self.public_json(lang), "jurisdiction_id": self.jurisdiction, "state": self.state,
                "lamp": None if self.lamp_gateway is None else f"{self.lamp_gateway}/{self.lamp_device}",
                "fault_since_ms": self.fault_since_ms, "reports": self.reporters, "assigned_to": self.assigned_to,
                "next_states": list(TRANSITIONS[self.state]) if self.state in TRANSITIONS else []}


@dataclass(frozen=True, slots=True)
class Reporter:
    submitted_ms: int
    attached: bool
    contact: Contact
    description: str | None
    attributes: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        c = self.contact
        return {"submitted_datetime": iso(self.submitted_ms), "attached": self.attached,
                "first_name": c.first_name, "last_name": c.last_name, "email": c.email, "phone": c.phone,
                "device_id": c.device_id, "account_id": c.account_id, "description": self.description,
                "attributes": dict(self.attributes)}


@dataclass(frozen=True, slots=True)
class HistoryRow:
    ts_ms: int
    state: str
    note: str | None
    operator: str | None

    def as_json(self) -> dict[str, Any]:
        return {"datetime": iso(self.ts_ms), "state": self.state, "note": self.note, "operator": self.operator}


# -- dates -------------------------------------------------------------------------------------------

def iso(ms: int) -> str:
    """ISO 8601 with the Paris offset, to the second (the spec wants a zone on every date-time)."""
    return datetime.fromtimestamp(ms / 1000, PARIS).isoformat(timespec="seconds")


def local_text(ms: int, lang: str = DEFAULT_LANG) -> str:
    """A Paris date and time as a resident reads it: 04/12/2026 à 17:05, or 04/12/2026 at 17:05."""
    at = datetime.fromtimestamp(ms / 1000, PARIS)
    return t("page.date", lang, d=at.strftime("%d/%m/%Y"), t=at.strftime("%H:%M"))


def parse_datetime(raw: str, name: str) -> int:
    """UTC epoch ms of an ISO 8601 date-time that carries its zone (Z or ±hh:mm)."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise Open311Error(400, msg("open311.not_iso", name=name, raw=repr(raw))) from None
    if value.tzinfo is None:
        raise Open311Error(400, msg("open311.no_zone", name=name, raw=repr(raw)))
    return int(value.timestamp() * 1000)


def search_window(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """Inclusive [first, last] ms of a search: the last 90 days by default; a window over 90 days is refused."""
    span = int(WINDOW.total_seconds() * 1000)
    first = None if start is None else parse_datetime(start, "start_date")
    last = None if end is None else parse_datetime(end, "end_date")
    if first is None and last is None:
        return now_ms - span, now_ms
    if first is None:
        assert last is not None
        return last - span, last
    if last is None:
        return first, first + span
    if last < first:
        raise Open311Error(400, msg("open311.end_before_start"))
    if last - first > span:
        raise Open311Error(400, msg("open311.window_too_long"))
    return first, last


# -- a new report --------------------------------------------------------------------------------

def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); plenty for a few kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def jurisdiction(raw: str | None, territory: Territory) -> Commune:
    if raw is None or not raw.strip():
        raise Open311Error(400, msg("open311.no_jurisdiction"))
    commune = territory.resolve(raw.strip())
    if commune is None:
        raise Open311Error(404, msg("open311.unknown_jurisdiction", raw=repr(raw), territory=territory.name))
    return commune


def _text(form: Mapping[str, str], name: str, limit: int, errors: list[Msg]) -> str | None:
    value = form.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit:
        errors.append(msg("open311.too_long", name=name, limit=limit))
    if not xml_safe(value):  # every answer has an XML form: what XML 1.0 cannot carry is refused here
        errors.append(msg("open311.control_chars", name=name))
    return value


def _coordinate(form: Mapping[str, str], name: str, limit: float, errors: list[Msg]) -> float | None:
    raw = form.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.append(msg("open311.not_number", name=name, raw=repr(raw)))
        return None
    if not math.isfinite(value) or not -limit <= value <= limit:
        errors.append(msg("open311.out_of_range", name=name, raw=repr(raw), limit=f"{limit:g}"))
        return None
    return value


def parse_new_report(form: Mapping[str, str], territory: Territory) -> NewReport:
    """Validate a POST requests body (form fields as strings); Open311Error lists every problem at once."""
    commune = jurisdiction(form.get("jurisdiction_id"), territory)
    errors: list[Msg] = []
    code = (form.get("service_code") or "").strip()
    service = SERVICES.get(code)
    if not code:
        errors.append(msg("open311.no_service_code"))
    elif service is None:
        errors.append(msg("open311.unknown_service", code=repr(code)))
    attributes: dict[str, str] = {}
    for key, value in form.items():
        if key.startswith("attribute[") and key.endswith("]"):
            attributes[key[10:-1]] = value.strip()
        elif key not in KNOWN_FIELDS:
            errors.append(msg("open311.unknown_field", key=repr(key)))
    if service is not None:
        known = {a.code for a in service.attributes}
        errors += [msg("open311.unknown_attribute", code=k, service=service.code)
                   for k in sorted(attributes.keys() - known)]
        errors += [msg("open311.attribute_required", code=a.code, service=service.code) for a in service.attributes
                   if a.required and not attributes.get(a.code)]
        errors += _attribute_errors(service, attributes)
    attributes = {k: v for k, v in attributes.items() if v}  # empty: not answered (the spec's optional argument)
    lat, lon, address, address_id = _location(form, territory, errors)
    lamp_id = attributes.get(LAMP_ID) or None
    if lamp_id is not None and not LAMP_ID_RE.match(lamp_id):
        errors.append(msg("open311.lamp_id_format", code=LAMP_ID, raw=repr(lamp_id)))
    email = _text(form, "email", 254, errors)
    if email is not None and not _EMAIL.match(email):
        errors.append(msg("open311.bad_email"))
    phone = _text(form, "phone", 30, errors)
    if phone is not None and not _PHONE.match(phone):
        errors.append(msg("open311.bad_phone"))
    media_url = _text(form, "media_url", 2000, errors)
    if media_url is not None and not media_url.startswith(("https://", "http://")):
        errors.append(msg("open311.bad_media_url"))
    contact = Contact(
        _text(form, "first_name", MAX_NAME, errors), _text(form, "last_name", MAX_NAME, errors), email, phone,
        _text(form, "device_id", MAX_FIELD, errors), _text(form, "account_id", MAX_FIELD, errors),
    )
    description = _text(form, "description", MAX_DESCRIPTION, errors)
    zipcode = _text(form, "zipcode", 10, errors)
    if errors or service is None:
        # the spec: 404 when service_code names no service (every problem is still listed), else 400
        raise Open311Error(404 if code and service is None else 400, *errors)
    return NewReport(commune, service, lat, lon, address, address_id, zipcode, description, media_url,
                     lamp_id if service.lamp else None, contact, attributes)


def _location(form: Mapping[str, str], territory: Territory,
              errors: list[Msg]) -> tuple[float | None, float | None, str | None, str | None]:
    """lat, long, address_string and address_id: one of the two forms at least, a point in the territory."""
    lat = _coordinate(form, "lat", 90, errors)
    lon = _coordinate(form, "long", 180, errors)
    address = _text(form, "address_string", MAX_FIELD, errors)
    address_id = _text(form, "address_id", MAX_FIELD, errors)
    coordinate_error = any(e.values.get("name") in ("lat", "long") for e in errors)
    if (lat is None) != (lon is None) and not coordinate_error:
        errors.append(msg("open311.lat_long_together"))
    if lat is None and lon is None and address is None and address_id is None and not coordinate_error:
        errors.append(msg("open311.no_location"))
    if lat is not None and lon is not None:
        nearest = min(distance_m(lat, lon, c.lat, c.lon) for c in territory.communes.values())
        if nearest > MAX_DISTANCE_M:
            errors.append(msg("open311.outside", lat=lat, lon=lon, territory=territory.name))
    return lat, lon, address, address_id


def _attribute_errors(service: Service, attributes: Mapping[str, str]) -> list[Msg]:
    """A list attribute's value must be one of its keys; any other is a text like the other fields."""
    errors = []
    for a in service.attributes:
        value = attributes.get(a.code)
        if not value:
            continue
        keys = [k for k, _ in a.values]
        if keys and value not in keys:
            errors.append(msg("open311.attribute_choice", code=a.code, raw=repr(value), keys=", ".join(keys)))
        elif len(value) > MAX_FIELD or not xml_safe(value):
            errors.append(msg("open311.attribute_text", code=a.code, limit=MAX_FIELD))
    return errors
