"""Presence: an agent process killed with -9 turns offline at once (Last Will); one frozen like a
cabinet that lost power turns offline within 1.5 x its keepalive (plus Mosquitto's sweep period);
each connection's Will and states carry its session, later from one connection to the next."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from mqtt_testkit import Fleet, Operator, agent_doc, toml_text, wait_for

from edge_agent.commands import CommandStore
from simulators.mosquitto import Mosquitto
from simulators.procs import Proc, bin_path

pytestmark = pytest.mark.timeout(120)


def start_agent(tmp_path: Path, fleet: Fleet, broker: Mosquitto, keepalive_s: int) -> Proc:
    doc = agent_doc(tmp_path, "gw-a", fleet.gateways["gw-a"], broker, keepalive_s=keepalive_s)
    config = tmp_path / "agent.toml"
    config.write_text(toml_text(doc))
    return Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config)])


async def online_then(op: Operator, agent: Proc) -> None:
    try:
        await wait_for(lambda: (s := op.last_state("gw-a")) is not None and s.online, 30, "online")
    except AssertionError:
        raise AssertionError(f"agent never came online:\n{agent.output()}") from None


async def test_kill_9_turns_the_gateway_offline_through_its_last_will(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with Operator(broker, fleet) as op:
        agent = start_agent(tmp_path, fleet, broker, keepalive_s=20)
        try:
            await online_then(op, agent)
            killed = time.monotonic()
            agent.kill9()
            await wait_for(lambda: not op.last_state("gw-a").online, 10, "offline")
            took = time.monotonic() - killed
        finally:
            agent.kill9()
    state = op.last_state("gw-a")
    assert state is not None and state.reason == "connection lost"  # the Will, not a goodbye
    assert took < 5, f"offline seen after {took:.1f} s: the kernel closes a killed process's socket at once"


async def test_a_silent_gateway_turns_offline_within_one_and_a_half_keepalives(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    keepalive = 5
    async with Operator(broker, fleet) as op:
        agent = start_agent(tmp_path, fleet, broker, keepalive_s=keepalive)
        try:
            await online_then(op, agent)
            # SIGSTOP: the socket stays open and nothing more is sent, as when a cabinet loses power
            os.killpg(agent.popen.pid, signal.SIGSTOP)
            frozen = time.monotonic()
            await wait_for(lambda: not op.last_state("gw-a").online, 3 * keepalive, "offline")
            took = time.monotonic() - frozen
        finally:
            os.killpg(agent.popen.pid, signal.SIGCONT)
            agent.kill9()
    # the broker gives up 1.5 keepalives after the last packet it got, which was at most one keepalive
    # before the freeze; Mosquitto 2.0 sweeps its clients' keepalives every 6 s or so
    assert keepalive * 0.5 <= took <= keepalive * 1.5 + 6 + 1, f"offline after {took:.1f} s, keepalive {keepalive} s"


async def test_each_connection_has_a_later_session_across_a_kill_and_a_restart(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    """The Will set at a connect carries that connection's session, as its states do; the agent
    started again (same state directory) connects with a later one."""
    sessions: list[int | None] = []
    async with Operator(broker, fleet) as op:
        for _ in range(2):
            agent = start_agent(tmp_path, fleet, broker, keepalive_s=20)
            try:
                await online_then(op, agent)
                online = op.last_state("gw-a")
                agent.kill9()
                await wait_for(lambda: not op.last_state("gw-a").online, 10, "offline")
            finally:
                agent.kill9()
            will = op.last_state("gw-a")
            assert online is not None and will is not None and will.reason == "connection lost"
            assert will.session == online.session, "the Will and the states of one connection share its session"
            sessions.append(online.session)
    assert sessions[0] is not None and sessions[1] is not None and sessions[1] > sessions[0], sessions


async def test_the_session_increases_across_restarts_and_a_clock_set_back(tmp_path: Path) -> None:
    """The epoch is committed in the agent's commands.db before it is used: max(last + 1, now)."""
    path = tmp_path / "state" / "commands.db"
    now = int(time.time() * 1000)
    async with CommandStore(path) as store:
        first = await store.next_session(now)
        assert first == now and await store.next_session(now) == now + 1
    async with CommandStore(path) as store:  # a restart: the last epoch is read back from the file
        assert await store.next_session(now - 3_600_000) == now + 2  # the clock set back an hour
        assert await store.next_session(now + 60_000) == now + 60_000  # the wall clock ahead of the last one
    async with CommandStore(path) as store:
        assert await store.next_session(0) == now + 60_001
