"""The control plane's tables behave the same on SQLite and PostgreSQL: presence, alarm log, command audit."""

from __future__ import annotations

import orjson
import pytest

from citygate_wire.mqtt import Ack, Alarm, Command, State, encode_state
from collector.control.store import OperatorExists
from collector.store import Store
from collector.tokens import hash_token

T0 = 1_768_496_400_000


async def gateways(store: Store, *names: str, commune: str = "21231") -> list[int]:
    return [(await store.add_gateway(n, commune, hash_token(f"token-{n}"))).id for n in names]


async def test_presence_lists_every_gateway_and_since_moves_only_on_a_change(store: Store) -> None:
    a, _ = await gateways(store, "gw-a", "gw-b")
    online = encode_state(State("gw-a", "21231", True, T0, version="1.0", interval_s=60))
    await store.record_state(a, True, "21231", online, T0)
    await store.record_state(a, True, "21231", online, T0 + 60_000)
    first = {p.gateway: p for p in await store.presence()}
    await store.record_state(a, False, "21231", encode_state(State("gw-a", "21231", False)), T0 + 90_000)
    after = {p.gateway: p for p in await store.presence()}
    assert first["gw-a"].online is True and first["gw-a"].since_ms == T0 and first["gw-a"].updated_ms == T0 + 60_000
    assert first["gw-a"].state["version"] == "1.0"
    assert first["gw-b"].online is None and first["gw-b"].since_ms is None
    assert after["gw-a"].online is False and after["gw-a"].since_ms == T0 + 90_000
    assert not first["gw-a"].stale(T0 + 60_000 + 179_000) and first["gw-a"].stale(T0 + 60_000 + 181_000)


async def test_an_alarm_is_logged_once_then_acknowledged_then_cleared_by_named_operators(store: Store) -> None:
    (a,) = await gateways(store, "gw-a")
    alarm = Alarm("5f2a", "tl-1", T0, "conflict", "critical", {"groups": [1, 3]})
    assert await store.record_alarm(a, alarm, T0 + 5)
    assert not await store.record_alarm(a, alarm, T0 + 9)  # a QoS 1 duplicate
    [row] = await store.alarms(status="open")
    assert (row.gateway, row.device, row.detail, row.received_ms) == ("gw-a", "tl-1", {"groups": [1, 3]}, T0 + 5)
    assert await store.update_alarm(row.id, "clear", "bob", None, T0 + 10) is not None
    assert await store.update_alarm(row.id, "acknowledge", "alice", "crew sent", T0 + 20) is None  # already cleared
    [done] = await store.alarms()
    assert (done.status, done.cleared_by, done.cleared_ms, done.acked_by) == ("cleared", "bob", T0 + 10, None)
    assert await store.alarms(status="open") == [] and await store.alarms(gateway="gw-b") == []


async def test_acknowledge_then_clear_keeps_both_names(store: Store) -> None:
    (a,) = await gateways(store, "gw-a")
    await store.record_alarm(a, Alarm("1", "lamp-1", T0, "lamp_failure", "major"), T0)
    [row] = await store.alarms()
    acked = await store.update_alarm(row.id, "acknowledge", "alice", "crew sent", T0 + 1)
    cleared = await store.update_alarm(row.id, "clear", "bob", None, T0 + 2)
    assert acked is not None and acked.status == "acknowledged" and acked.note == "crew sent"
    assert cleared is not None and (cleared.acked_by, cleared.cleared_by, cleared.note) == ("alice", "bob", "crew sent")


async def test_a_command_is_audited_delivered_resent_answered_once_and_expired(store: Store) -> None:
    a, b, c = await gateways(store, "gw-a", "gw-b", "gw-c")
    cmd = Command("c1", "traffic.set_position", {"controller": "tl-1", "position": "yellow_flash", "timeout_s": 1800},
                  T0, T0 + 60_000, "alice")
    await store.add_command(cmd, "commune:21231", [a, b, c])
    due = await store.due_deliveries(T0, T0)
    assert sorted(d.gateway for _, d in due) == ["gw-a", "gw-b", "gw-c"]
    assert due[0][1].args["position"] == "yellow_flash" and due[0][1].commune == "21231"
    await store.mark_sent([(d.command_id, gid) for gid, d in due], T0 + 1)
    assert await store.due_deliveries(T0 + 2, T0) == []  # sent, not yet due again
    assert len(await store.due_deliveries(T0 + 10_000, T0 + 5_000)) == 3  # due for a resend
    assert await store.record_ack(a, Ack("c1", "done", T0 + 3, result={"position": "yellow_flash"}), T0 + 4)
    assert not await store.record_ack(a, Ack("c1", "refused", T0 + 5, "expired", "late copy"), T0 + 6)
    assert await store.record_ack(b, Ack("c1", "refused", T0 + 3, "unavailable", "no controller tl-1"), T0 + 4)
    assert not await store.record_ack(a, Ack("other", "done", T0 + 3), T0 + 4)
    assert await store.expire_deliveries(T0 + 60_000) == 1
    row = await store.command("c1")
    assert row is not None and row.final and row.issued_by == "alice" and row.target == "commune:21231"
    got = {d.gateway: (d.status, d.sends, d.code, dict(d.result)) for d in row.deliveries}
    assert got == {"gw-a": ("done", 1, None, {"position": "yellow_flash"}),
                   "gw-b": ("refused", 1, "unavailable", {}),
                   "gw-c": ("unanswered", 1, None, {})}
    # a late answer still tells the truth
    assert await store.record_ack(c, Ack("c1", "done", T0 + 61_000), T0 + 61_500)
    assert orjson.loads(orjson.dumps((await store.commands())[0].as_json()))["counts"] == {"done": 2, "refused": 1}


async def test_operators_and_mqtt_passwords(store: Store) -> None:
    (a,) = await gateways(store, "gw-a")
    await store.add_operator("alice", hash_token("op-token"), T0)
    with pytest.raises(OperatorExists):
        await store.add_operator("alice", hash_token("other"), T0)
    assert await store.operator_for_token(hash_token("op-token")) == "alice"
    assert await store.operator_for_token(hash_token("nope")) is None
    await store.set_mqtt_password(a, "$7$101$old$old", T0)
    await store.set_mqtt_password(a, "$7$101$new$new", T0 + 1)
    assert await store.mqtt_passwords() == [("gw-a", "$7$101$new$new")]
