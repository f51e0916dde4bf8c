"""citygate_wire.mqtt: topics and messages round-trip, bad ones fail with the pointer of the bad field,
and no bytes from outside make a decoder raise anything but WireError."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from citygate_wire.mqtt import (
    MAX_COMMAND_BYTES,
    MAX_SESSION,
    Ack,
    Alarm,
    Command,
    CommandRefusal,
    State,
    WireError,
    answer_of,
    authenticate_command,
    decode_ack,
    decode_alarm,
    decode_command,
    decode_state,
    encode_ack,
    encode_alarm,
    encode_command,
    encode_state,
    parse_public_key,
    parse_topic,
    peek_command,
    public_key_text,
    replay_ack,
    subscription,
    topic,
)
from collector.control.acl import AclError, acl_file, mosquitto_hash, password_file, verify_mosquitto_hash

T0 = 1_768_496_400_000
NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
INSEE = st.from_regex(r"\A(\d{5}|2[AB]\d{3})\Z")

EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("lighting.override", {"group": "rue-de-la-liberte", "level_pct": 100, "until_ms": T0 + 7_200_000}),
    ("lighting.override", {"lamp": "lamp-7", "level_pct": 0, "start_ms": T0, "until_ms": T0 + 60_000}),
    ("lighting.clear_override", {"lamp": "lamp-7"}),
    ("lighting.push_programs", {"program": [{"name": "p"}], "calendar": []}),
    ("traffic.select_plan", {"controller": "tl-3", "plan": 2, "timeout_s": 3600}),
    ("traffic.set_position", {"controller": "tl-3", "position": "yellow_flash", "timeout_s": 1800}),
    ("device.read", {"device": "meter-1"}),
    ("agent.set_log_level", {"level": "debug"}),
]


def command_doc(**over: Any) -> dict[str, Any]:
    doc = {"v": 1, "id": "c-1", "action": "device.read", "args": {"device": "m"}, "issued_at_ms": T0,
           "expires_at_ms": T0 + 60_000, "issued_by": "alice"}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not ...}


@given(INSEE, NAMES, st.sampled_from(["state", "alarm", "cmd", "ack"]))
def test_topics_round_trip(commune: str, gateway: str, kind: Any) -> None:
    t = parse_topic(topic(commune, gateway, kind))
    assert (t.commune, t.gateway, t.kind) == (commune, gateway, kind)


@pytest.mark.parametrize("name", ["city/21231/gw-a", "city/21231/gw-a/cmd/x", "town/21231/gw-a/cmd",
                                  "city/2123/gw-a/cmd", "city/21231/gw a/cmd", "city/21231/+/cmd",
                                  "city/21231/gw-a/reboot", "city/21231//cmd"])
def test_bad_topics_are_refused(name: str) -> None:
    with pytest.raises(WireError):
        parse_topic(name)


def test_subscriptions() -> None:
    assert subscription("state") == "city/+/+/state"
    assert subscription("cmd", gateway="gw-a") == "city/+/gw-a/cmd"
    with pytest.raises(WireError):
        subscription("cmd", gateway="gw/a")


@pytest.mark.parametrize(("action", "args"), EXAMPLES)
def test_every_action_round_trips(action: str, args: dict[str, Any]) -> None:
    cmd = Command("c-9", action, args, T0, T0 + 1000, "alice")
    assert decode_command(encode_command(cmd)) == cmd


@pytest.mark.parametrize(("doc", "pointer", "words"), [
    (command_doc(v=2), "/v", "unsupported"),
    (command_doc(id="has space"), "/id", "letters"),
    (command_doc(action="reboot"), "/action", "expected one of"),
    (command_doc(expires_at_ms=T0), "/expires_at_ms", "after issued_at_ms"),
    (command_doc(expires_at_ms=T0 + 25 * 3600 * 1000), "/expires_at_ms", "24 h"),
    (command_doc(issued_by=...), "/issued_by", "missing"),
    (command_doc(args={"device": "m", "extra": 1}), "/args", "unknown member"),
    (command_doc(action="lighting.override", args={"lamp": "a", "group": "b", "level_pct": 5, "until_ms": T0}),
     "/args", "exactly one of lamp or group"),
    (command_doc(action="lighting.override", args={"lamp": "a", "level_pct": 5.5, "until_ms": T0}),
     "/args/level_pct", "integer"),
    (command_doc(action="lighting.override", args={"lamp": "a", "level_pct": 5, "start_ms": T0, "until_ms": T0}),
     "/args/until_ms", "after start_ms"),
    (command_doc(action="traffic.set_position", args={"controller": "t", "position": "green", "timeout_s": 5}),
     "/args/position", "expected one of"),
    (command_doc(action="traffic.select_plan", args={"controller": "t", "plan": True, "timeout_s": 5}),
     "/args/plan", "plan number"),
    (command_doc(action="lighting.push_programs", args={"program": []}), "/args/program", "at least one"),
    (command_doc(unknown=1), "", "unknown member"),
])
def test_bad_commands_name_the_field(doc: dict[str, Any], pointer: str, words: str) -> None:
    with pytest.raises(WireError) as err:
        decode_command(orjson.dumps(doc))
    assert err.value.pointer == pointer and words in err.value.reason, err.value


def test_an_oversized_command_is_refused_before_parsing() -> None:
    with pytest.raises(WireError, match="at most"):
        decode_command(b" " * (MAX_COMMAND_BYTES + 1))


def test_peek_finds_the_id_of_an_invalid_command_only_if_usable() -> None:
    assert peek_command(orjson.dumps(command_doc(action="reboot"))) == ("c-1", "reboot")
    assert peek_command(orjson.dumps(command_doc(id="bad id"))) is None
    assert peek_command(b"[1]") is None and peek_command(b"{") is None


def test_acks_states_alarms_round_trip() -> None:
    for ack in (Ack("c-1", "done", T0, result={"values": {"power_w": 61.5}}),
                Ack("c-1", "refused", T0, "expired", "expired at ..."), Ack("c-1", "accepted", T0)):
        assert decode_ack(encode_ack(ack)) == ack
    online = State("gw-a", "21231", True, T0, version="0.1.0", config_hash="sha256:00", journal_backlog=3,
                   journal_oldest_ts_ms=T0 - 5, clock_synced=False, clock_max_error_ms=16000, uplink_connected=True,
                   alarms_dropped=2, interval_s=60.0)
    will = State("gw-a", "21231", False, reason="connection lost")
    assert decode_state(encode_state(online)) == online and decode_state(encode_state(will)) == will
    alarm = Alarm("ab12", "tl-1", T0, "conflict", "critical", {"groups": [1, 3]})
    assert decode_alarm(encode_alarm(alarm)) == alarm


def test_a_state_and_a_will_carry_their_connection_s_session() -> None:
    online = State("gw-a", "21231", True, T0, interval_s=60.0, session=T0 + 3)
    will = State("gw-a", "21231", False, reason="connection lost", session=T0 + 3)
    for state in (online, will, State("gw-a", "21231", False, session=0), State("gw-a", "21231", False,
                                                                                  session=MAX_SESSION)):
        assert decode_state(encode_state(state)) == state
    assert orjson.loads(encode_state(will)) == {"v": 1, "gateway": "gw-a", "commune": "21231", "online": False,
                                                "session": T0 + 3, "reason": "connection lost"}
    # an older gateway's messages have none
    assert b"session" not in encode_state(State("gw-a", "21231", False, reason="connection lost"))
    assert decode_state(b'{"v":1,"gateway":"gw-a","commune":"21231","online":false}').session is None


@pytest.mark.parametrize(("session", "why"), [
    (-1, "out of range"), (MAX_SESSION + 1, "out of range"), (2**63, "out of range"), (1.5, "got float"),
    ("17", "got str"), (True, "got bool"), ([1], "got list"),
])
def test_a_bad_session_is_refused(session: Any, why: str) -> None:
    for online in (True, False):
        doc = {"v": 1, "gateway": "gw-a", "commune": "21231", "online": online, "ts_ms": T0, "session": session,
               "journal": {}, "clock": {}, "uplink": {}}
        with pytest.raises(WireError, match=why) as err:
            decode_state(orjson.dumps(doc))
        assert err.value.pointer == "/session"


def test_a_refusal_without_a_reason_is_refused() -> None:
    with pytest.raises(WireError, match="code and a reason"):
        decode_ack(b'{"v":1,"id":"c","status":"refused","ts_ms":%d}' % T0)


def test_a_minor_event_is_no_alarm() -> None:
    with pytest.raises(WireError) as err:
        decode_alarm(encode_alarm(Alarm("a", "door-1", T0, "door_open", "minor")))
    assert err.value.pointer == "/severity"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)
FIELDS = ["v", "id", "action", "args", "issued_at_ms", "expires_at_ms", "issued_by", "status", "ts_ms", "code",
          "reason", "result", "gateway", "commune", "online", "journal", "clock", "uplink", "device", "severity",
          "detail", "level_pct", "lamp", "group", "until_ms", "interval_s", "alarms_dropped", "session"]
DOCS = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=10).map(lambda d: {"v": 1, **d})


HUGE = st.just(b'{"v":1,"id":"c","ts_ms":123456789012345678901234567890,"online":true}')


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=300), DOCS.map(orjson.dumps), HUGE))
def test_decoders_raise_only_wire_error(payload: bytes) -> None:
    for decode in (decode_command, decode_ack, decode_state, decode_alarm):
        try:
            decode(payload)
        except WireError:
            pass
    peek_command(payload)
    try:
        authenticate_command(payload, (KEY.public_key(),), "gw-a", T0, 300_000)
    except CommandRefusal:
        pass


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_topic_parser_raises_only_wire_error(name: str) -> None:
    try:
        parse_topic(name)
    except WireError:
        pass


# -- signed commands ----------------------------------------------------------------------------

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = (KEY.public_key(),)
SIGNED = Command("c-7", "lighting.override", {"group": "quai", "level_pct": 40, "until_ms": T0 + 60_000}, T0,
                 T0 + 60_000, "alice", "gw-a")


def authenticate(payload: bytes, keys: tuple[Any, ...] = PUBLIC, gateway: str = "gw-a", now: int = T0) -> Command:
    return authenticate_command(payload, keys, gateway, now, 300_000)


def refusal(payload: bytes, **kw: Any) -> CommandRefusal:
    with pytest.raises(CommandRefusal) as err:
        authenticate(payload, **kw)
    return err.value


def test_a_signed_command_authenticates_whatever_the_order_of_its_members() -> None:
    payload = encode_command(SIGNED, KEY)
    assert authenticate(payload) == SIGNED
    shuffled = dict(reversed(list(orjson.loads(payload).items())))
    assert authenticate(orjson.dumps(shuffled)) == SIGNED
    assert parse_public_key(public_key_text(KEY.public_key())).public_bytes_raw() == KEY.public_key().public_bytes_raw()


@settings(max_examples=200)
@given(st.sampled_from(["id", "action", "args", "issued_at_ms", "expires_at_ms", "issued_by", "gateway"]), JSON)
def test_changing_any_signed_member_makes_the_command_forged(member: str, value: Any) -> None:
    doc = orjson.loads(encode_command(SIGNED, KEY))
    if doc[member] == value:
        return
    doc[member] = value
    # the signature is checked before anything else is read: a change never gets further
    assert refusal(orjson.dumps(doc)).code == "forged"


@pytest.mark.parametrize(("change", "code"), [
    (lambda d: d.pop("sig"), "unsigned"),
    (lambda d: d.update(sig="not base64!"), "forged"),
    (lambda d: d.update(sig=7), "forged"),
    (lambda d: d.update(issued_by="mallory"), "forged"),
    (lambda d: d.update(sig=orjson.loads(encode_command(SIGNED, Ed25519PrivateKey.generate()))["sig"]), "forged"),
])
def test_unsigned_and_forged_commands_are_refused_without_using_up_their_id(change: Any, code: str) -> None:
    doc = orjson.loads(encode_command(SIGNED, KEY))
    change(doc)
    got = refusal(orjson.dumps(doc))
    assert (got.id, got.code, got.consumes_id) == ("c-7", code, False)


def test_misaddressed_future_and_unkeyed_commands_are_refused() -> None:
    payload = encode_command(SIGNED, KEY)
    assert refusal(payload, gateway="gw-b").code == "misaddressed"
    assert refusal(payload, now=T0 - 301_000).code == "future"
    assert authenticate(payload, now=T0 - 299_000) == SIGNED  # within the clock tolerance
    assert refusal(payload, keys=()).code == "unverifiable"
    unaddressed = encode_command(Command("c-8", "device.read", {"device": "m"}, T0, T0 + 1000, "alice"), KEY)
    assert refusal(unaddressed).code == "misaddressed"


@pytest.mark.parametrize("payload", [
    b'{"v": 2, "id": "c-7", "action": "device.read"}',
    b'{"v": 1, "id": "c-7", "action": "device.read", "args": [',
    b'{"v": 1, "id": "c-7", "action": "device.read", "sig": "AAAA"}',
])
def test_an_unreadable_or_unauthenticated_message_does_not_use_up_the_id_it_names(payload: bytes) -> None:
    got = refusal(payload)
    assert got.consumes_id is False


def test_a_signed_but_invalid_command_is_refused_as_invalid_and_uses_up_its_id() -> None:
    bad = Command("c-9", "lighting.override", {"lamp": "l", "level_pct": 140, "until_ms": T0 + 1}, T0, T0 + 1000,
                  "alice", "gw-a")
    got = refusal(encode_command(bad, KEY))
    assert (got.code, got.consumes_id) == ("invalid", True) and "/args/level_pct" in got.reason


def test_a_replay_ack_carries_the_first_answer_and_only_that() -> None:
    first = Ack("c-7", "done", T0, result={"values": {"power_w": 61.5}})
    replay = decode_ack(encode_ack(replay_ack(first, T0, T0 + 5000)))
    assert (replay.status, replay.code) == ("refused", "replayed") and answer_of(replay) == first
    assert answer_of(first) == first
    nested = Ack("c-7", "refused", T0, "replayed", "x", {"first": orjson.loads(encode_ack(replay))})
    with pytest.raises(WireError):
        answer_of(nested)


def test_mosquitto_hash_verifies_and_files_refuse_what_mosquitto_would_misread() -> None:
    hashed = mosquitto_hash("cgw_secret")
    assert hashed.startswith("$7$101$") and verify_mosquitto_hash("cgw_secret", hashed)
    assert not verify_mosquitto_hash("cgw_other", hashed) and not verify_mosquitto_hash("x", "garbage")
    assert password_file([("gw-b", hashed), ("gw-a", hashed)]).splitlines()[0].startswith("gw-a:$7$")
    with pytest.raises(AclError):
        password_file([("gw:a", hashed)])
    with pytest.raises(AclError):
        password_file([("gw-a", hashed), ("gw-a", hashed)])
    with pytest.raises(AclError):
        acl_file(["citygate-collector"])
    acl = acl_file(["gw-b", "gw-a"])
    assert "user gw-a\ntopic write city/+/gw-a/state" in acl and "topic read city/+/gw-a/cmd" in acl
    assert acl.count("topic write city/+/+/cmd") == 1  # the collector alone
