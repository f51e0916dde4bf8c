"""Presence written in batches leaves the table exactly as one commit a message did, on both stores."""

from __future__ import annotations

import random

import pytest

from citygate_wire.mqtt import State, encode_state
from collector.presence import PresenceWriter, StateMessage, presence_statements, write_presence
from collector.store import Store
from collector.tokens import hash_token

T0 = 1_768_496_400_000


def state(name: str, online: bool, ts: int) -> bytes:
    return encode_state(State(name, "21231", online, ts, version="1.0", interval_s=60) if online
                        else State(name, "21231", False, reason="connection lost"))


@pytest.mark.parametrize("seed", [1, 2])
async def test_batched_writes_equal_one_commit_a_message(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    n = 12
    ids = [(await store.add_gateway(f"gw-{i:02d}", "21231", hash_token(f"t-{i}"))).id for i in range(2 * n)]
    one, batched = ids[:n], ids[n:]
    # flips and repeats in any order, several to a gateway within one flush
    script = [(rng.randrange(n), rng.random() < 0.6) for _ in range(300)]
    pending: list[StateMessage] = []
    for k, (g, online) in enumerate(script):
        ts = T0 + k * 10
        body = state(f"gw-{g:02d}", online, ts)
        await store.record_state(one[g], online, "21231", body, ts)
        pending.append(StateMessage(batched[g], online, "21231", body, ts))
        if rng.random() < 0.05 or k == len(script) - 1:
            await write_presence(store, presence_statements(pending))
            pending = []
    rows = {p.gateway: p for p in await store.presence()}
    for g in range(n):
        a, b = rows[f"gw-{g:02d}"], rows[f"gw-{g + n:02d}"]
        assert (a.online, a.since_ms, a.updated_ms, a.state) == (b.online, b.since_ms, b.updated_ms, b.state)
    assert any(rows[f"gw-{g:02d}"].online is False for g in range(n))


async def test_wills_of_a_fleet_are_one_transaction_and_a_bad_message_only_refuses_itself(store: Store) -> None:
    ids = [(await store.add_gateway(f"gw-{i:04d}", "21231", hash_token(f"t-{i}"))).id for i in range(300)]
    written: list[int] = []
    refused: list[StateMessage] = []

    async def write(statements: object) -> None:
        written.append(1)
        await write_presence(store, statements)  # type: ignore[arg-type]

    async def write_one(m: StateMessage) -> None:
        await store.record_state(m.gateway_id, m.online, m.topic_commune, m.payload, m.received_ms)

    writer = PresenceWriter(write, write_one, lambda m, exc: refused.append(m))
    for i, gid in enumerate(ids):
        writer.add(StateMessage(gid, False, "21231", state(f"gw-{i:04d}", False, T0), T0 + i))
    await writer.flush()
    assert len(written) == 1 and writer.written == 300 and not refused
    assert all(p.online is False for p in await store.presence())
    # a message that cannot be stored (not UTF-8) is refused alone; the others of its flush are written
    writer.add(StateMessage(ids[0], True, "21231", state("gw-0000", True, T0 + 5000), T0 + 5000))
    writer.add(StateMessage(ids[1], True, "21231", b'{"x": "\xff"}', T0 + 5001))
    writer.add(StateMessage(ids[2], True, "21231", state("gw-0002", True, T0 + 5002), T0 + 5002))
    await writer.flush()
    rows = {p.gateway: p for p in await store.presence()}
    assert rows["gw-0000"].online and rows["gw-0002"].online
    assert [m.gateway_id for m in refused] == [ids[1]] and rows["gw-0001"].online is False
