"""Operators' alarms from raw alarms and events, on both stores: one per cause, cleared by the restore."""

from __future__ import annotations

from typing import Any

from citygate_wire.common import now_ms
from collector.alarms.model import ACTIVE, CLEARED, STATES, AlarmError, Filters
from collector.store import Store
from tests.alarms.alarms_testkit import COMMUNE, OTHER_COMMUNE, Feed, bus_back, bus_lost

LAMPS = [f"lamp-{i:02d}" for i in range(1, 13)]


async def test_a_cabinet_whose_bus_is_lost_is_one_alarm_listing_its_devices(store: Store) -> None:
    feed = Feed(store)
    await feed.upload("gw-a", *bus_lost(LAMPS, 100))
    assert await feed.folded()
    alarms, total, counts = await store.list_alarms(Filters(), now_ms())
    assert total == 1 and len(alarms) == 1
    alarm = alarms[0]
    assert (alarm.gateway, alarm.code) == ("gw-a", "communication_failure")
    assert (alarm.devices_total, alarm.devices_active, alarm.state, alarm.commune) == (12, 12, "open", COMMUNE)
    detail = await store.get_alarm(alarm.id)
    assert detail is not None and [d.device for d in detail.devices] == LAMPS
    assert counts.state["open"] == 1 and counts.commune == {COMMUNE: 1} and counts.severity == {"major": 1}


async def test_the_restore_clears_it_and_history_keeps_it_with_its_duration(store: Store) -> None:
    feed = Feed(store)
    await feed.upload("gw-a", *bus_lost(LAMPS[:4], 100))
    await feed.folded()
    await feed.upload("gw-a", *bus_back(LAMPS[:3], 700))
    await feed.folded()
    alarm = (await store.list_alarms(Filters(), now_ms()))[0][0]
    assert (alarm.state, alarm.devices_active) == ("open", 1)  # one lamp still silent
    await feed.upload("gw-a", *bus_back(LAMPS[3:4], 900))
    assert await feed.folded()
    assert (await store.list_alarms(Filters(), now_ms()))[1] == 0  # no active alarm left
    cleared, total, counts = await store.list_alarms(Filters(states=(CLEARED,)), now_ms())
    assert total == 1 and counts.state == {"open": 0, "acknowledged": 0, "cleared": 1}
    alarm = cleared[0]
    assert (alarm.cleared_how, alarm.cleared_by) == ("restored", None)
    assert alarm.duration_ms == 900_000 - 100_000
    history = await store.alarm_history(alarm.id)
    assert [h.kind for h in history].count("raise") == 4 and [h.kind for h in history].count("clear") == 4


async def test_the_same_alarm_twice_from_mqtt_and_from_the_upload_is_one_occurrence(store: Store) -> None:
    feed = Feed(store)
    first = await feed.mqtt("gw-a", "lamp-01", "communication_failure", 100)
    await feed.store.record_alarm(feed.gateways["gw-a"].id, first, now_ms())  # a QoS 1 duplicate
    await feed.folded()
    # the upload carries the same journalled event, later; the batch itself is sent twice
    events: list[tuple[str, str, float, str, dict[str, Any]]] = [("lamp-01", "communication_failure", 100, "major", {})]
    await feed.upload("gw-a", *events)
    await feed.replay("gw-a", range(1, 2), *events)
    await feed.folded()
    alarms, total, _ = await store.list_alarms(Filters(), now_ms())
    assert total == 1 and alarms[0].devices_total == 1
    assert [h.source for h in await store.alarm_history(alarms[0].id)] == ["mqtt"]
    # folding again from scratch (a restarted collector, another instance) changes nothing
    again = Feed(store)
    again.gateways = feed.gateways
    assert not await again.folded()
    assert (await store.list_alarms(Filters(), now_ms()))[1] == 1


async def test_a_stale_restore_does_not_clear_a_newer_failure(store: Store) -> None:
    feed = Feed(store)
    await feed.mqtt("gw-a", "lamp-01", "lamp_failure", 100)
    await feed.mqtt("gw-a", "lamp-01", "lamp_failure", 250)  # it failed again (its restore still to upload)
    await feed.folded()
    await feed.upload("gw-a", ("lamp-01", "lamp_failure", 100, "major", {}),
                      ("lamp-01", "lamp_restored", 200, "info", {"cleared": "lamp_failure"}))
    await feed.folded()
    alarms, total, _ = await store.list_alarms(Filters(), now_ms())
    assert total == 1 and alarms[0].devices_active == 1


async def test_far_apart_or_other_causes_are_other_alarms(store: Store) -> None:
    feed = Feed(store)
    await feed.upload("gw-a", ("lamp-01", "lamp_failure", 0, "major", {}),
                      ("lamp-02", "lamp_failure", 30, "major", {}),  # within the window: the same alarm
                      ("lamp-03", "lamp_failure", 3000, "major", {}),  # 50 min later: another
                      ("cabinet", "door_open", 40, "critical", {}))
    await feed.gateway("gw-b", OTHER_COMMUNE)
    await feed.upload("gw-b", ("lamp-01", "lamp_failure", 10, "major", {}))
    await feed.folded()
    alarms, total, counts = await store.list_alarms(Filters(), now_ms())
    assert total == 4
    assert sorted((a.gateway, a.code, a.devices_total) for a in alarms) == [
        ("gw-a", "door_open", 1), ("gw-a", "lamp_failure", 1), ("gw-a", "lamp_failure", 2), ("gw-b", "lamp_failure", 1)]
    assert alarms[0].severity == "critical"  # the most severe first
    assert counts.commune == {COMMUNE: 3, OTHER_COMMUNE: 1} and counts.kind == {"door_open": 1, "lamp_failure": 3}
    assert await store.active_alarms_by_commune() == {COMMUNE: 3, OTHER_COMMUNE: 1}
    # each dimension is counted over the other filters
    only_b, total_b, counts_b = await store.list_alarms(Filters(commune=OTHER_COMMUNE), now_ms())
    assert total_b == 1 and only_b[0].gateway == "gw-b"
    assert counts_b.commune == {COMMUNE: 3, OTHER_COMMUNE: 1} and counts_b.kind == {"lamp_failure": 1}
    crit, total_c, _ = await store.list_alarms(Filters(severity="critical"), now_ms())
    assert total_c == 1 and crit[0].code == "door_open"
    page, total_p, _ = await store.list_alarms(Filters(kind="lamp_failure", limit=2, offset=2), now_ms())
    assert total_p == 3 and len(page) == 1
    by_gw = (await store.list_alarms(Filters(gateway="gw-b"), now_ms()))[1]
    assert by_gw == 1


async def test_acknowledge_assign_comment_and_clear_are_audited(store: Store) -> None:
    feed = Feed(store)
    await store.add_operator("alice", "h-alice", now_ms())
    await feed.upload("gw-a", *bus_lost(LAMPS[:3], 100))
    await feed.folded()
    alarm_id = (await store.list_alarms(Filters(), now_ms()))[0][0].id
    acked = await store.act_on_alarm(alarm_id, "acknowledge", "operator:alice", "on it", now_ms())
    assert (acked.state, acked.acked_by) == ("acknowledged", "alice")
    try:
        await store.act_on_alarm(alarm_id, "acknowledge", "operator:bob", None, now_ms())
        raise AssertionError("acknowledged twice")
    except AlarmError as exc:
        assert (exc.status, exc.state) == (409, "acknowledged")
    assert (await store.act_on_alarm(alarm_id, "assign", "operator:alice", "alice", now_ms())).assignee == "alice"
    await store.act_on_alarm(alarm_id, "comment", "cli:root", "crew sent", now_ms())
    cleared = await store.act_on_alarm(alarm_id, "clear", "operator:alice", "bus replaced", now_ms())
    assert (cleared.state, cleared.cleared_how, cleared.cleared_by) == ("cleared", "manual", "alice")
    assert cleared.duration_ms is not None
    audit = await store.alarm_audit(alarm_id)
    assert [(a.actor, a.action, a.detail) for a in audit] == [
        ("operator:alice", "alarm.acknowledge", "on it"), ("operator:alice", "alarm.assign", "alice"),
        ("cli:root", "alarm.comment", "crew sent"), ("operator:alice", "alarm.clear", "bus replaced")]
    assert {r.target for r in await store.audit_log(10)} == {f"alarm:{alarm_id}"}
    # a cleared alarm takes comments, nothing else; its late restores change nothing
    await store.act_on_alarm(alarm_id, "comment", "operator:alice", "closed", now_ms())
    for action in ("acknowledge", "assign", "clear"):
        try:
            await store.act_on_alarm(alarm_id, action, "operator:alice", "x", now_ms())
            raise AssertionError(f"{action} on a cleared alarm")
        except AlarmError as exc:
            assert exc.status == 409
    await feed.upload("gw-a", *bus_back(LAMPS[:3], 600))
    await feed.folded()
    after = await store.get_alarm(alarm_id)
    assert after is not None and after.cleared_how == "manual"
    try:
        await store.act_on_alarm(424242, "acknowledge", "operator:alice", None, now_ms())
        raise AssertionError("unknown alarm")
    except AlarmError as exc:
        assert exc.status == 404


async def test_a_device_back_then_lost_again_is_active_again_in_the_same_alarm(store: Store) -> None:
    feed = Feed(store)
    await feed.upload("gw-a", *bus_lost(LAMPS[:2], 100), ("lamp-01", "communication_restored", 150, "info", {}),
                      ("lamp-01", "communication_failure", 200, "major", {}))
    await feed.folded()
    alarm = (await store.list_alarms(Filters(), now_ms()))[0][0]
    assert (alarm.devices_total, alarm.devices_active) == (2, 2)


async def test_states_listed_and_counted(store: Store) -> None:
    feed = Feed(store)
    await feed.upload("gw-a", ("a", "lamp_failure", 0, "major", {}), ("b", "door_open", 0, "critical", {}),
                      ("c", "water_leak", 0, "major", {}))
    await feed.folded()
    ids = {a.code: a.id for a in (await store.list_alarms(Filters(), now_ms()))[0]}
    await store.act_on_alarm(ids["door_open"], "acknowledge", "operator:x", None, now_ms())
    await feed.upload("gw-a", ("c", "water_leak_cleared", 60, "info", {}))
    await feed.folded()
    _, _, counts = await store.list_alarms(Filters(), now_ms())
    assert counts.state == {"open": 1, "acknowledged": 1, "cleared": 1}
    assert (await store.list_alarms(Filters(states=STATES), now_ms()))[1] == 3
    assert (await store.list_alarms(Filters(states=ACTIVE), now_ms()))[1] == 2
    acked = (await store.list_alarms(Filters(states=("acknowledged",)), now_ms()))[0]
    assert [a.code for a in acked] == ["door_open"]


async def test_the_overview_lists_one_row_an_alarm_and_counts_as_the_list(store: Store) -> None:
    from collector.alarms.overview import overview_alarms

    feed = Feed(store)
    await feed.upload("gw-a", *bus_lost(LAMPS, 100), ("cabinet", "door_open", 50, "critical", {}))
    await feed.gateway("gw-b", OTHER_COMMUNE)
    await feed.mqtt("gw-b", "lamp-07", "lamp_failure", 10)
    await feed.folded()
    rows = await overview_alarms(store)
    assert [(r["gateway"], r["code"], r["device"], r["devices_total"]) for r in rows] == [
        ("gw-a", "door_open", "cabinet", 1), ("gw-a", "communication_failure", "lamp-01", 12),
        ("gw-b", "lamp_failure", "lamp-07", 1)]
    per_commune: dict[str, int] = {}
    for r in rows:
        per_commune[r["commune"]] = per_commune.get(r["commune"], 0) + 1
    assert per_commune == await store.active_alarms_by_commune() == (await store.list_alarms(Filters(), now_ms()))[2].commune
