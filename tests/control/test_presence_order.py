"""A state that comes late never replaces a newer one (collector.presence), on both stores: the
broker sends a message again when the instance that had it died before acknowledging it, and with
several instances another one may have stored the gateway's next word meanwhile."""

from __future__ import annotations

import functools

from citygate_wire.mqtt import State, encode_state
from collector.presence import (
    CLOCK_SET_BACK_MS,
    PresenceWriter,
    StateMessage,
    presence_statements,
    write_presence,
)
from collector.store import Store
from collector.tokens import hash_token

T0 = 1_768_496_400_000
NAME = "gw-late"


def message(gid: int, online: bool, ts: int | None, received_ms: int) -> StateMessage:
    state = State(NAME, "21231", online, ts, interval_s=60) if online else \
        State(NAME, "21231", False, ts, reason="agent stopped" if ts is not None else "connection lost")
    return StateMessage(gid, online, "21231", encode_state(state), received_ms)


async def write(store: Store, *messages: StateMessage) -> tuple[bool | None, int | None, int | None]:
    """Each message in its own flush, as separate instances write them; the row's (online, ts_ms, since_ms) after."""
    for m in messages:
        await write_presence(store, presence_statements([m]))
    [row] = [p for p in await store.presence() if p.gateway == NAME]
    return row.online, row.state.get("ts_ms") if row.state else None, row.since_ms


async def test_an_older_state_does_not_replace_a_newer_one(store: Store) -> None:
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    # the newer word (offline at T0 + 20) stored first, then the older one (online at T0 + 10) redelivered
    assert await write(store, message(gid, False, T0 + 20, T0 + 21), message(gid, True, T0 + 10, T0 + 5_000)) \
        == (False, T0 + 20, T0 + 21)
    # the same message twice (a QoS 1 duplicate) changes nothing either, nor does since move
    assert await write(store, message(gid, False, T0 + 20, T0 + 6_000)) == (False, T0 + 20, T0 + 21)
    # a newer word is written
    assert await write(store, message(gid, True, T0 + 7_000, T0 + 7_001)) == (True, T0 + 7_000, T0 + 7_001)


async def test_a_will_ends_the_states_before_it_and_a_later_connection_s_state_ends_it(store: Store) -> None:
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    online = message(gid, True, T0, T0 + 1)
    will = message(gid, False, None, T0 + 1_000)  # received 1 s after the state, no time of its own
    # the Will is stored before the connection's last state, which another instance wrote late
    assert await write(store, will, online) == (False, None, T0 + 1_000)
    # a Will always replaces what is stored (it comes after every state of its connection)
    assert await write(store, online, will) == (False, None, T0 + 1_000)
    # the gateway's next connection: its state, timed after the Will came, is written
    assert await write(store, message(gid, True, T0 + 2_000, T0 + 2_001)) == (True, T0 + 2_000, T0 + 2_001)


async def test_a_gateway_clock_set_back_is_not_frozen_out(store: Store) -> None:
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    ahead = T0 + 3_600_000  # the gateway's clock an hour fast when it said this
    assert await write(store, message(gid, True, ahead, T0)) == (True, ahead, T0)
    # set right, its next state is older by its own clock but the stored one is an hour in the future
    later = T0 + CLOCK_SET_BACK_MS // 2
    assert await write(store, message(gid, False, later, later + 1)) == (False, later, later + 1)


async def test_the_writer_applies_it_within_a_flush_and_says_each_message_done(store: Store) -> None:
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    done: list[int] = []

    async def write_all(statements: object) -> None:
        await write_presence(store, statements)  # type: ignore[arg-type]

    async def write_one(m: StateMessage) -> None:
        await write_presence(store, presence_statements([m]))

    writer = PresenceWriter(write_all, write_one, lambda m, exc: None)
    await write(store, message(gid, True, T0 + 50, T0 + 51))
    for k, (online, ts) in enumerate([(False, T0 + 10), (True, T0 + 20)]):  # both older than what is stored
        m = message(gid, online, ts, T0 + 100 + k)
        writer.add(StateMessage(m.gateway_id, m.online, m.topic_commune, m.payload, m.received_ms,
                                functools.partial(done.append, k)))
    await writer.flush()
    assert done == [0, 1]
    [row] = [p for p in await store.presence() if p.gateway == NAME]
    assert (row.online, row.state["ts_ms"], row.since_ms) == (True, T0 + 50, T0 + 51)


async def test_a_state_received_after_a_late_will_follows_it(store: Store) -> None:
    """The collector restarts: its session's queue holds a gateway's Will and then the state of its
    next connection, both received now, the state timed before the Will's (late) receipt."""
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    back = message(gid, True, T0 + 1_000, T0 + 60_001)
    queued = [message(gid, True, T0, T0 + 60_000), message(gid, False, None, T0 + 60_000),
              StateMessage(back.gateway_id, True, "21231", back.payload, back.received_ms, after_will=True)]
    await write_presence(store, presence_statements(queued))  # one flush, as the link writes them
    [row] = [p for p in await store.presence() if p.gateway == NAME]
    assert (row.online, row.state["ts_ms"]) == (True, T0 + 1_000)
    # without the link's word that it follows the Will, the same state is taken for a late one
    late = message(gid, True, T0 + 1_000, T0 + 60_001)
    assert await write(store, message(gid, False, None, T0 + 60_000), late) == (False, None, T0 + 60_000)
