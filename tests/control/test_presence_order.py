"""A state that comes late never replaces a newer one (collector.presence), on both stores: the
broker sends a message again when the instance that had it died before acknowledging it, and with
several instances another one may have stored the gateway's next word meanwhile. With connection
epochs (`session`) the order is exact, whatever order the messages reach the table in."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# -- connection epochs (`session`): exact order across instances ---------------------------------------


def of_session(gid: int, session: int, online: bool, ts: int | None, received_ms: int, *,
               name: str = NAME, after_will: bool = False, done: Callable[[], None] | None = None) -> StateMessage:
    """A state (ts) or the Will (no ts) of the connection `session`."""
    state = State(name, "21231", online, ts, interval_s=60, session=session) if online else \
        State(name, "21231", False, ts, reason="agent stopped" if ts is not None else "connection lost",
              session=session)
    return StateMessage(gid, online, "21231", encode_state(state), received_ms, done, after_will)


async def test_a_will_that_waited_for_a_dead_instance_does_not_hide_the_gateway_s_return(store: Store) -> None:
    """Case 1: the Will of connection 1 was queued for a dead instance; the gateway came back
    (connection 2) through another one; the Will is written last, received last, yet it is older."""
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    s1, s2 = T0, T0 + 5_000
    assert await write(store, of_session(gid, s1, True, T0 + 1, T0 + 2),
                       of_session(gid, s2, True, T0 + 5_001, T0 + 5_002),
                       of_session(gid, s1, False, None, T0 + 70_000)) == (True, T0 + 5_001, T0 + 2)
    # the same with the gateway's clock set back between its connections: the session orders, not the time
    assert await write(store, of_session(gid, s2 + 1, True, T0 - 3_600_000, T0 + 80_000),
                       of_session(gid, s2, False, None, T0 + 90_000)) == (True, T0 - 3_600_000, T0 + 2)
    # without a session, the same Will is written: the rule by time alone cannot order it
    assert await write(store, message(gid, False, None, T0 + 95_000)) == (False, None, T0 + 95_000)


async def test_a_state_written_after_its_connection_s_will_leaves_the_gateway_offline(store: Store) -> None:
    """Case 2: a state of connection 1 written by another instance after that connection's Will,
    even timed after the Will's receipt by the gateway's clock."""
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    will = of_session(gid, T0, False, None, T0 + 1_000)
    late = of_session(gid, T0, True, T0 + 2_000, T0 + 3_000)  # the gateway's clock 1 s ahead of the collector's
    assert await write(store, will, late) == (False, None, T0 + 1_000)
    # also when the link took it for a state following the Will
    assert await write(store, of_session(gid, T0, True, T0 + 2_000, T0 + 3_000, after_will=True)) \
        == (False, None, T0 + 1_000)
    # and a clean stop of that connection is before its Will too
    assert await write(store, of_session(gid, T0, False, T0 + 2_500, T0 + 4_000)) == (False, None, T0 + 1_000)
    # the next connection's state ends it, whatever its time
    assert await write(store, of_session(gid, T0 + 1, True, T0 - 10_000, T0 + 5_000)) \
        == (True, T0 - 10_000, T0 + 5_000)


async def test_a_message_without_a_session_keeps_the_rule_by_time(store: Store) -> None:
    """An older gateway (or one moving to sessions): when either side has no session, time alone orders."""
    gid = (await store.add_gateway(NAME, "21231", hash_token("t"))).id
    # a stored session state, an older state without a session: refused by time
    assert await write(store, of_session(gid, T0, True, T0 + 20, T0 + 21), message(gid, False, T0 + 10, T0 + 30)) \
        == (True, T0 + 20, T0 + 21)
    # a Will without a session is always written; a state with a session over it goes by time
    assert await write(store, message(gid, False, None, T0 + 1_000), of_session(gid, T0 + 1, True, T0 + 500, T0 + 1_001)) \
        == (False, None, T0 + 1_000)
    assert await write(store, of_session(gid, T0 + 1, True, T0 + 1_500, T0 + 1_501)) == (True, T0 + 1_500, T0 + 1_501)


@dataclass(frozen=True)
class Connection:
    session: int
    times: list[int]  # its states' ts_ms, ascending
    end: str  # "will", "stopped" (an offline state timed after the last), or "none" (still connected)


@st.composite
def connections(draw: st.DrawFn) -> list[Connection]:
    """A gateway's connections, their epochs ascending, each its own clock (stepped either way between them)."""
    out: list[Connection] = []
    session = draw(st.integers(0, 2 * T0))
    for _ in range(draw(st.integers(1, 4))):
        session += draw(st.integers(1, 3_600_000))
        start = T0 + draw(st.integers(-3_600_000, 3_600_000))
        steps = draw(st.lists(st.integers(1, 10_000), max_size=3))
        times = [start + sum(steps[:i + 1]) for i in range(len(steps))]
        end = draw(st.sampled_from(["will", "stopped", "none"]) if times else st.sampled_from(["will", "stopped"]))
        out.append(Connection(session, times, end))
    return out


def words(gid: int, name: str, conns: list[Connection]) -> list[tuple[int, float, bool, int | None]]:
    """(session, rank, online, ts) of every message the connections sent."""
    out: list[tuple[int, float, bool, int | None]] = []
    for c in conns:
        out += [(c.session, ts, True, ts) for ts in c.times]
        if c.end == "stopped":
            ts = (c.times[-1] if c.times else T0) + 1
            out.append((c.session, ts, False, ts))
        elif c.end == "will":
            out.append((c.session, math.inf, False, None))
    return out


_examples = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conns=connections(), data=st.data())
async def test_any_arrival_order_leaves_the_latest_connection_s_latest_word(
        store: Store, conns: list[Connection], data: st.DataObject) -> None:
    """Messages of several connections reach the table in any order, some twice (a redelivery), in
    flushes of any size (instances writing their share): the row is the latest session's latest message."""
    name = f"gw-p{next(_examples)}"
    gid = (await store.add_gateway(name, "21231", hash_token(name))).id
    sent = words(gid, name, conns)
    arrivals = data.draw(st.permutations(sent + data.draw(st.lists(st.sampled_from(sent), max_size=3))),
                         label="arrivals")
    # received long after any of the gateway's times: no stored time looks like a clock set back
    received = T0 + 7_200_000
    writer = PresenceWriter(functools.partial(write_presence, store),
                            lambda m: write_presence(store, presence_statements([m])),
                            lambda m, exc: None)
    for k, (session, _, online, ts) in enumerate(arrivals):
        writer.add(of_session(gid, session, online, ts, received + k, name=name,
                              after_will=data.draw(st.booleans(), label="after a Will on its link")))
        if data.draw(st.booleans(), label="flush"):
            await writer.flush()
    await writer.flush()
    session, _, online, ts = max(sent, key=lambda w: (w[0], w[1]))
    [row] = [p for p in await store.presence() if p.gateway == name]
    assert row.state is not None
    assert (row.online, row.state.get("session"), row.state.get("ts_ms")) == (online, session, ts)
