"""MQTT control-plane format, version 1: topics and the JSON of state, alarm, command and ack.

MQTT carries control only (presence, alarms, commands, acknowledgements); readings travel in
upload batches (citygate_wire.batch). Everything here works on MQTT 3.1.1 (no v5 properties).

Topics, one subtree per gateway::

    city/{insee}/{gateway}/state   gateway -> all   retained, QoS 1; Last Will = offline state
    city/{insee}/{gateway}/alarm   gateway -> all   QoS 1 (major and critical journal events)
    city/{insee}/{gateway}/cmd     collector -> gw  QoS 1 (only the collector's identity may publish)
    city/{insee}/{gateway}/ack     gateway -> all   QoS 1 (one per command id)

Gateway names are unique across the territory, so the broker's ACL grants each gateway
`city/+/{gateway}/...`: a gateway still tagged with a former commune code keeps working. The
collector attributes a message by the gateway name of its topic, never by the commune level.

Pure functions: bytes in, typed values or WireError (with the JSON pointer of the bad field) out.
The full description is docs/mqtt.md.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from citygate_wire.common import WireError

__all__ = [
    "ACK_CODES",
    "ACK_STATUSES",
    "ACTIONS",
    "ALARM_SEVERITIES",
    "AUTH_CODES",
    "COLLECTOR_IDENTITY",
    "MAX_COMMAND_BYTES",
    "MAX_SESSION",
    "MAX_VALIDITY_MS",
    "POSITIONS",
    "ROOT",
    "VERSION",
    "Ack",
    "Alarm",
    "Command",
    "CommandRefusal",
    "State",
    "Topic",
    "WireError",
    "answer_of",
    "authenticate_command",
    "command_signed_bytes",
    "decode_ack",
    "decode_alarm",
    "decode_command",
    "decode_state",
    "encode_ack",
    "encode_alarm",
    "encode_command",
    "encode_state",
    "parse_public_key",
    "parse_topic",
    "peek_command",
    "public_key_text",
    "replay_ack",
    "subscription",
    "topic",
    "validate_args",
]

VERSION = 1
ROOT = "city"
#: The MQTT username of the control centre; the only identity the ACL lets publish commands.
COLLECTOR_IDENTITY = "citygate-collector"

Kind = Literal["state", "alarm", "cmd", "ack"]
KINDS: frozenset[str] = frozenset({"state", "alarm", "cmd", "ack"})

ACTIONS: frozenset[str] = frozenset({
    "lighting.override",
    "lighting.clear_override",
    "lighting.push_programs",
    "traffic.select_plan",
    "traffic.set_position",
    "device.read",
    "agent.set_log_level",
})
#: accepted: taken by a target that applies it at its own moment (a plan at the next cycle);
#: done: carried out now; refused: not carried out (reason says why); failed: tried, did not complete.
ACK_STATUSES: frozenset[str] = frozenset({"accepted", "done", "refused", "failed"})
POSITIONS: frozenset[str] = frozenset({"normal", "yellow_flash", "dark"})
LOG_LEVELS: frozenset[str] = frozenset({"debug", "info", "warning", "error"})
ALARM_SEVERITIES: frozenset[str] = frozenset({"major", "critical"})

MAX_COMMAND_BYTES = 512 * 1024  # a program/calendar set fits many times over
MAX_VALIDITY_MS = 24 * 3600 * 1000  # a command valid longer than a day is a mistake
MAX_ID_LEN = 64
MAX_NAME_LEN = 128
MAX_REASON_LEN = 500
#: a state's `session` (connection epoch) fits a signed 64-bit column and a JSON number read as a double
MAX_SESSION = 2**53 - 1

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_GATEWAY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
# 2000-01-01 .. 2100-01-01, as in the upload format
_TS_MIN, _TS_MAX = 946_684_800_000, 4_102_444_800_000


# -- topics ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    commune: str
    gateway: str
    kind: Kind


def _check_gateway(gateway: str) -> None:
    if not _GATEWAY.match(gateway):
        raise WireError("", f"gateway name {gateway!r}: letters, digits, '.', '_' and '-' only, 1-64 characters")


def _check_commune(commune: str) -> None:
    if not _INSEE.match(commune):
        raise WireError("", f"{commune!r} is not an INSEE commune code")


def topic(commune: str, gateway: str, kind: Kind) -> str:
    """The topic of one gateway's messages of one kind; WireError for a name unfit for a topic."""
    _check_commune(commune)
    _check_gateway(gateway)
    if kind not in KINDS:
        raise WireError("", f"unknown topic kind {kind!r}")
    return f"{ROOT}/{commune}/{gateway}/{kind}"


def subscription(kind: Kind, *, commune: str = "+", gateway: str = "+") -> str:
    """A subscription filter: every gateway's `kind` by default, or one commune's, or one gateway's."""
    if commune != "+":
        _check_commune(commune)
    if gateway != "+":
        _check_gateway(gateway)
    if kind not in KINDS:
        raise WireError("", f"unknown topic kind {kind!r}")
    return f"{ROOT}/{commune}/{gateway}/{kind}"


def parse_topic(name: str) -> Topic:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        raise WireError("", f"topic {name[:200]!r} is not {ROOT}/<insee>/<gateway>/<kind>")
    _, commune, gateway, kind = parts
    _check_commune(commune)
    _check_gateway(gateway)
    if kind not in KINDS:
        raise WireError("", f"topic {name[:200]!r}: unknown kind {kind!r}, expected one of {sorted(KINDS)}")
    return Topic(commune, gateway, kind)  # type: ignore[arg-type]  # checked just above


# -- field checks ------------------------------------------------------------------------------


def _load(payload: bytes, what: str, max_bytes: int) -> dict[str, Any]:
    if len(payload) > max_bytes:
        raise WireError("", f"{what} of {len(payload)} bytes, at most {max_bytes}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError("", f"{what} is not valid JSON: {exc}") from None
    if type(doc) is not dict:
        raise WireError("", f"{what}: expected a JSON object")
    if doc.get("v") != VERSION:
        raise WireError("/v", f"unsupported {what} version {doc.get('v')!r}, expected {VERSION}")
    return doc


def _int(doc: Mapping[str, Any], name: str, lo: int, hi: int, pointer: str = "") -> int:
    value = doc.get(name)
    p = f"{pointer}/{name}"
    if type(value) is not int:
        raise WireError(p, "missing" if value is None else f"expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise WireError(p, f"{value} is out of range [{lo}, {hi}]")
    return value


def _ts(doc: Mapping[str, Any], name: str, pointer: str = "") -> int:
    return _int(doc, name, _TS_MIN, _TS_MAX, pointer)


def _str(doc: Mapping[str, Any], name: str, max_len: int = MAX_NAME_LEN, pointer: str = "") -> str:
    value = doc.get(name)
    p = f"{pointer}/{name}"
    if type(value) is not str or not value:
        raise WireError(p, "missing" if value is None else "expected a non-empty string")
    if len(value) > max_len:
        raise WireError(p, f"longer than {max_len} characters")
    return value


def _opt_str(doc: Mapping[str, Any], name: str, max_len: int = MAX_NAME_LEN, pointer: str = "") -> str | None:
    return None if doc.get(name) is None else _str(doc, name, max_len, pointer)


def _choice(doc: Mapping[str, Any], name: str, choices: frozenset[str], pointer: str = "") -> str:
    value = doc.get(name)
    if value not in choices:
        raise WireError(f"{pointer}/{name}", f"{value!r}: expected one of {sorted(choices)}")
    return str(value)


def _obj(doc: Mapping[str, Any], name: str, pointer: str = "", *, required: bool = True) -> dict[str, Any]:
    value = doc.get(name)
    if value is None and not required:
        return {}
    if type(value) is not dict:
        raise WireError(f"{pointer}/{name}", "missing" if value is None else "expected an object")
    return value


def _only(doc: Mapping[str, Any], allowed: set[str], pointer: str = "") -> None:
    extra = doc.keys() - allowed
    if extra:
        raise WireError(pointer, f"unknown member(s) {sorted(extra)}")


def _id(doc: Mapping[str, Any], name: str = "id") -> str:
    value = _str(doc, name, MAX_ID_LEN)
    if not _ID.match(value):
        raise WireError(f"/{name}", "letters, digits, '.', '_', ':' and '-' only, 1-64 characters")
    return value


# -- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """An operator's order to one gateway. Valid only while issued_at_ms <= now < expires_at_ms.

    `gateway` is the addressee: one command sent to a commune is one Command per gateway, each
    signed for its gateway, so a copy replayed to another gateway is refused there.
    """

    id: str
    action: str
    args: Mapping[str, Any]
    issued_at_ms: int
    expires_at_ms: int
    issued_by: str
    gateway: str | None = None  # None only before the collector addresses it

def _target(args: Mapping[str, Any]) -> None:
    has_lamp, has_group = args.get("lamp") is not None, args.get("group") is not None
    if has_lamp == has_group:
        raise WireError("/args", "give exactly one of lamp or group")
    _str(args, "lamp" if has_lamp else "group", pointer="/args")


def validate_args(action: str, args: Mapping[str, Any]) -> None:
    """Check the arguments of an action; WireError names the bad member (`/args/...`)."""
    p = "/args"
    if action == "lighting.override":
        _target(args)
        _int(args, "level_pct", 0, 100, p)
        if args.get("start_ms") is not None:
            _ts(args, "start_ms", p)
        until = _ts(args, "until_ms", p)
        if until <= (args.get("start_ms") or _TS_MIN):
            raise WireError(f"{p}/until_ms", "must be after start_ms")
        _only(args, {"lamp", "group", "level_pct", "start_ms", "until_ms"}, p)
    elif action == "lighting.clear_override":
        _target(args)
        _only(args, {"lamp", "group"}, p)
    elif action == "lighting.push_programs":
        # the shape of edge_agent.lighting's programs document; its engine checks the rest and
        # refuses the whole set with its own reason, keeping the previous one
        for name in ("program", "calendar"):
            if type(args.get(name, [])) is not list:
                raise WireError(f"{p}/{name}", "expected an array")
        if not args.get("program"):
            raise WireError(f"{p}/program", "a program set holds at least one program")
        _only(args, {"program", "calendar"}, p)
    elif action == "traffic.select_plan":
        _str(args, "controller", pointer=p)
        plan = args.get("plan")
        if type(plan) is not int or not 0 <= plan <= 255:
            raise WireError(f"{p}/plan", "expected a plan number 0-255")
        _int(args, "timeout_s", 1, 65_535, p)  # the controller's register holds 16 bits
        _only(args, {"controller", "plan", "timeout_s"}, p)
    elif action == "traffic.set_position":
        _str(args, "controller", pointer=p)
        _choice(args, "position", POSITIONS, p)
        _int(args, "timeout_s", 1, 65_535, p)
        _only(args, {"controller", "position", "timeout_s"}, p)
    elif action == "device.read":
        _str(args, "device", pointer=p)
        _only(args, {"device"}, p)
    elif action == "agent.set_log_level":
        _choice(args, "level", LOG_LEVELS, p)
        _opt_str(args, "logger", pointer=p)
        _only(args, {"level", "logger"}, p)
    else:
        raise WireError("/action", f"{action!r}: expected one of {sorted(ACTIONS)}")


def _command_doc(cmd: Command) -> dict[str, Any]:
    doc = {"v": VERSION, "id": cmd.id, "action": cmd.action, "args": cmd.args, "issued_at_ms": cmd.issued_at_ms,
           "expires_at_ms": cmd.expires_at_ms, "issued_by": cmd.issued_by}
    if cmd.gateway is not None:
        doc["gateway"] = cmd.gateway
    return doc


def encode_command(cmd: Command, key: Ed25519PrivateKey | None = None) -> bytes:
    """The command's JSON; with `key`, signed (member `sig`): the only kind a gateway runs."""
    doc = _command_doc(cmd)
    if key is not None:
        doc["sig"] = base64.b64encode(key.sign(command_signed_bytes(doc))).decode()
    return orjson.dumps(doc)


def decode_command(payload: bytes) -> Command:
    """Parse and validate a command; WireError names the first bad field.

    Whether it is authentic and still valid *now* is the receiver's check (authenticate_command).
    """
    return _command(_load(payload, "command", MAX_COMMAND_BYTES))


def _command(doc: Mapping[str, Any]) -> Command:
    cid = _id(doc)
    action = _choice(doc, "action", ACTIONS)
    issued = _ts(doc, "issued_at_ms")
    expires = _ts(doc, "expires_at_ms")
    if expires <= issued:
        raise WireError("/expires_at_ms", "must be after issued_at_ms")
    if expires - issued > MAX_VALIDITY_MS:
        raise WireError("/expires_at_ms", f"a command is valid {MAX_VALIDITY_MS // 3_600_000} h at most")
    by = _str(doc, "issued_by")
    gateway = _opt_str(doc, "gateway", 64)
    if gateway is not None and not _GATEWAY.match(gateway):
        raise WireError("/gateway", "letters, digits, '.', '_' and '-' only, 1-64 characters")
    args = _obj(doc, "args")
    validate_args(action, args)
    if doc.get("sig") is not None and type(doc["sig"]) is not str:
        raise WireError("/sig", "expected a base64 string")
    _only(doc, {"v", "id", "action", "args", "issued_at_ms", "expires_at_ms", "issued_by", "gateway", "sig"})
    return Command(cid, action, args, issued, expires, by, gateway)


# -- command authentication ----------------------------------------------------------------------
#
# The collector signs each command with its Ed25519 private key; every gateway holds the public
# key only, so a gateway taken apart cannot forge commands for the others, and an identity that
# may publish on cmd topics without the key (a leaked broker password) cannot command anything.
# What is signed is everything the gateway acts on: the whole message but `sig`, in one canonical
# form (sorted keys, orjson's number and string forms) under a domain prefix.

_SIGNED_PREFIX = b"citygate command v1\n"
#: Ack codes of a message refused because it is not an authentic command for this gateway now.
AUTH_CODES: frozenset[str] = frozenset({"unsigned", "forged", "unverifiable", "misaddressed", "future"})


def command_signed_bytes(doc: Mapping[str, Any]) -> bytes:
    """The bytes a command's signature covers: the canonical JSON of every member but `sig`."""
    return _SIGNED_PREFIX + orjson.dumps({k: v for k, v in doc.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS)


def public_key_text(key: Ed25519PublicKey) -> str:
    """How a gateway config carries the collector's public key: base64 of its 32 raw bytes."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The inverse of public_key_text; WireError if it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WireError("", "not base64") from None
    if len(raw) != 32:
        raise WireError("", f"an Ed25519 public key is 32 bytes, this is {len(raw)}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise WireError("", f"OpenSSL refuses it ({exc})") from None


class CommandRefusal(Exception):
    """A command message not taken: `code` (ACK_CODES) and `reason` for its ack; `id` None if unreadable.

    `consumes_id` is True only for an authentic command (signed for this gateway, now): whatever
    was not authenticated must not use up the id of the genuine command, which may be on its way.
    """

    def __init__(self, cmd_id: str | None, action: str, code: str, reason: str, *, consumes_id: bool = False) -> None:
        super().__init__(reason)
        self.id = cmd_id
        self.action = action
        self.code = code
        self.reason = reason[:MAX_REASON_LEN]
        self.consumes_id = consumes_id


def authenticate_command(payload: bytes, keys: Sequence[Ed25519PublicKey], gateway: str, now_ms: int,
                         tolerance_ms: int) -> Command:
    """A command this gateway may run, or CommandRefusal saying why not.

    Checks, in order: readable, signed, signed by one of `keys`, well-formed, addressed to
    `gateway`, not issued in the future beyond `tolerance_ms` by the gateway's clock. Expiry and
    repeats are the receiver's (it keeps the ids).
    """
    try:
        doc = _load(payload, "command", MAX_COMMAND_BYTES)
    except WireError as exc:
        cid, action = peek_command(payload) or (None, "?")
        raise CommandRefusal(cid, action, "invalid", str(exc)) from None
    cid, action = peek_command(payload) or (None, "?")
    sig = doc.get("sig")
    if not keys:
        raise CommandRefusal(cid, action, "unverifiable",
                             "this gateway has no command key ([mqtt] command_key): it runs no command")
    if sig is None:
        raise CommandRefusal(cid, action, "unsigned", "the command carries no signature (sig)")
    try:
        signature = base64.b64decode(sig, validate=True) if type(sig) is str else b""
    except (binascii.Error, ValueError):
        signature = b""
    signed = command_signed_bytes(doc)
    if not any(_verifies(key, signature, signed) for key in keys):
        raise CommandRefusal(cid, action, "forged", "the signature does not match the command and the collector's key")
    try:
        cmd = _command(doc)
    except WireError as exc:
        # signed by the collector, so not an attacker's: refused once, a repeat gets the same answer;
        # unless addressed to another gateway (the id is that gateway's command too, not this one's)
        raise CommandRefusal(cid, action, "invalid", str(exc), consumes_id=doc.get("gateway") == gateway) from None
    if cmd.gateway != gateway:
        raise CommandRefusal(cmd.id, cmd.action, "misaddressed",
                             f"the command is addressed to {cmd.gateway!r}, this gateway is {gateway!r}")
    ahead = cmd.issued_at_ms - now_ms
    if ahead > tolerance_ms:
        raise CommandRefusal(cmd.id, cmd.action, "future",
                             f"issued {ahead / 1000:.1f} s in the future by the gateway's clock "
                             f"(tolerance {tolerance_ms / 1000:g} s)")
    return cmd


def _verifies(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        return False
    return True


def peek_command(payload: bytes) -> tuple[str, str] | None:
    """(id, action) of a command that failed validation, if its id is usable: it can still be refused by id."""
    try:
        doc = orjson.loads(payload) if len(payload) <= MAX_COMMAND_BYTES else None
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict:
        return None
    cid, action = doc.get("id"), doc.get("action")
    if type(cid) is not str or not _ID.match(cid):
        return None
    return cid, action if type(action) is str and len(action) <= MAX_ID_LEN else "?"


# -- acknowledgements --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """A gateway's one answer to a command id. `code` is machine-readable, `reason` is for people."""

    id: str
    status: str
    ts_ms: int
    code: str | None = None
    reason: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)


#: Why a command was refused or failed (`Ack.code`).
ACK_CODES: frozenset[str] = frozenset({
    "invalid", "expired", "unsupported", "unavailable", "rejected", "device", "interrupted", "error", "replayed",
    *AUTH_CODES,
})


def encode_ack(ack: Ack) -> bytes:
    doc: dict[str, Any] = {"v": VERSION, "id": ack.id, "status": ack.status, "ts_ms": ack.ts_ms}
    if ack.code is not None:
        doc["code"] = ack.code
    if ack.reason is not None:
        doc["reason"] = ack.reason
    if ack.result:
        doc["result"] = ack.result
    return orjson.dumps(doc, default=str)


def replay_ack(first: Ack, received_ms: int, now_ms: int) -> Ack:
    """The answer to a command id received again: refused, with the first answer inside.

    A copy of a command already received is not run again, whoever sent it. The collector resends
    a command whose answer it has not had, with the same bytes as an attacker's replay: it finds
    the first answer in `result.first` (answer_of).
    """
    when = datetime.fromtimestamp(received_ms / 1000, UTC).isoformat(timespec="seconds")
    return Ack(first.id, "refused", now_ms, "replayed",
               f"command {first.id} was received at {when} and answered {first.status}: not run again",
               {"first": orjson.loads(encode_ack(first))})


def answer_of(ack: Ack) -> Ack:
    """The gateway's answer to the command itself: inside a replay ack, the first answer."""
    first = ack.result.get("first") if ack.code == "replayed" else None
    if not isinstance(first, dict):
        return ack
    inner = decode_ack(orjson.dumps(first))
    if inner.id != ack.id or inner.code == "replayed":
        raise WireError("/result/first", "the first answer of a replay is an ack of the same id, not a replay")
    return inner


def decode_ack(payload: bytes) -> Ack:
    doc = _load(payload, "ack", 256 * 1024)
    cid = _id(doc)
    status = _choice(doc, "status", ACK_STATUSES)
    ts_ms = _ts(doc, "ts_ms")
    code = None if doc.get("code") is None else _choice(doc, "code", ACK_CODES)
    reason = _opt_str(doc, "reason", MAX_REASON_LEN)
    if status in ("refused", "failed") and (code is None or reason is None):
        raise WireError("/reason", f"a {status} ack needs a code and a reason")
    result = _obj(doc, "result", required=False)
    _only(doc, {"v", "id", "status", "ts_ms", "code", "reason", "result"})
    return Ack(cid, status, ts_ms, code, reason, result)


# -- state (presence) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class State:
    """A gateway's retained state. The Last Will is a State with online=False and no ts_ms.

    `session` is the epoch of the MQTT connection that carries it (the Will set at that connect
    too): it increases from one connection of the gateway to the next, across reboots and clock
    steps, so the collector orders a Will against states (collector.presence). None: an older
    gateway's message, ordered by ts_ms alone.
    """

    gateway: str
    commune: str
    online: bool
    ts_ms: int | None = None
    version: str | None = None
    config_hash: str | None = None
    journal_backlog: int | None = None
    journal_oldest_ts_ms: int | None = None
    clock_synced: bool | None = None
    clock_max_error_ms: int | None = None
    uplink_connected: bool | None = None
    alarms_dropped: int = 0
    interval_s: float | None = None  # the next state comes within this; the collector judges staleness by it
    reason: str | None = None
    session: int | None = None


def encode_state(state: State) -> bytes:
    doc: dict[str, Any] = {"v": VERSION, "gateway": state.gateway, "commune": state.commune, "online": state.online}
    if state.ts_ms is not None:
        doc["ts_ms"] = state.ts_ms
    if state.session is not None:
        doc["session"] = state.session
    if state.reason is not None:
        doc["reason"] = state.reason
    if state.online:
        doc["version"] = state.version
        doc["config_hash"] = state.config_hash
        doc["journal"] = {"backlog": state.journal_backlog, "oldest_ts_ms": state.journal_oldest_ts_ms}
        doc["clock"] = {"synced": state.clock_synced, "max_error_ms": state.clock_max_error_ms}
        doc["uplink"] = {"connected": state.uplink_connected}
        doc["alarms_dropped"] = state.alarms_dropped
        doc["interval_s"] = state.interval_s
    return orjson.dumps(doc)


def _opt_int(doc: Mapping[str, Any], name: str, pointer: str) -> int | None:
    return None if doc.get(name) is None else _int(doc, name, 0, 2**63 - 1, pointer)


def _opt_number(doc: Mapping[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = doc.get(name)
    if value is None:
        return None
    if type(value) not in (int, float) or not lo <= value <= hi:
        raise WireError(f"/{name}", f"expected a number in [{lo}, {hi}]")
    return float(value)


def _opt_bool(doc: Mapping[str, Any], name: str, pointer: str) -> bool | None:
    value = doc.get(name)
    if value is not None and type(value) is not bool:
        raise WireError(f"{pointer}/{name}", "expected a boolean or null")
    return value


def decode_state(payload: bytes) -> State:
    doc = _load(payload, "state", 16 * 1024)
    gateway = _str(doc, "gateway", 64)
    if not _GATEWAY.match(gateway):
        raise WireError("/gateway", "letters, digits, '.', '_' and '-' only, 1-64 characters")
    commune = _str(doc, "commune", 5)
    if not _INSEE.match(commune):
        raise WireError("/commune", f"{commune!r} is not an INSEE commune code")
    online = doc.get("online")
    if type(online) is not bool:
        raise WireError("/online", "expected a boolean")
    ts_ms = None if doc.get("ts_ms") is None else _ts(doc, "ts_ms")
    session = None if doc.get("session") is None else _int(doc, "session", 0, MAX_SESSION)
    reason = _opt_str(doc, "reason", MAX_REASON_LEN)
    _only(doc, {"v", "gateway", "commune", "online", "ts_ms", "session", "reason", "version", "config_hash",
                "journal", "clock", "uplink", "alarms_dropped", "interval_s"})
    if not online:
        return State(gateway, commune, False, ts_ms, reason=reason, session=session)
    journal = _obj(doc, "journal")
    clock = _obj(doc, "clock")
    uplink = _obj(doc, "uplink")
    return State(
        gateway, commune, True, ts_ms,
        version=_opt_str(doc, "version", 64),
        config_hash=_opt_str(doc, "config_hash", 128),
        journal_backlog=_opt_int(journal, "backlog", "/journal"),
        journal_oldest_ts_ms=_opt_int(journal, "oldest_ts_ms", "/journal"),
        clock_synced=_opt_bool(clock, "synced", "/clock"),
        clock_max_error_ms=_opt_int(clock, "max_error_ms", "/clock"),
        uplink_connected=_opt_bool(uplink, "connected", "/uplink"),
        alarms_dropped=_opt_int(doc, "alarms_dropped", "") or 0,
        interval_s=_opt_number(doc, "interval_s", 0.1, 86_400),
        reason=reason,
        session=session,
    )


# -- alarms ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alarm:
    """A major or critical journal event, forwarded at once (the journal upload carries it too)."""

    id: str
    device: str
    ts_ms: int
    code: str
    severity: str
    detail: Mapping[str, Any] = field(default_factory=dict)


def encode_alarm(alarm: Alarm) -> bytes:
    return orjson.dumps({
        "v": VERSION, "id": alarm.id, "device": alarm.device, "ts_ms": alarm.ts_ms, "code": alarm.code,
        "severity": alarm.severity, "detail": alarm.detail,
    }, default=str)


def decode_alarm(payload: bytes) -> Alarm:
    doc = _load(payload, "alarm", 64 * 1024)
    aid = _id(doc)
    device = _str(doc, "device")
    ts_ms = _ts(doc, "ts_ms")
    code = _str(doc, "code", 64)
    severity = _choice(doc, "severity", ALARM_SEVERITIES)
    detail = _obj(doc, "detail", required=False)
    _only(doc, {"v", "id", "device", "ts_ms", "code", "severity", "detail"})
    return Alarm(aid, device, ts_ms, code, severity, detail)
