"""Two collector instances on one store project the same samples once: the second one's step fails
on the claim and it takes the first one's result; an overstay is raised once whoever checks."""

from __future__ import annotations

import asyncio

from citygate_wire.batch import decode_batch, encode_records
from collector.parking.inventory import load_inventory
from collector.parking.projector import Projector
from collector.store import Store
from collector.tokens import hash_token, new_token

GATEWAY = "gw-dijon-lora"
T0 = 1_796_320_500_000


async def test_two_projectors_apply_each_sample_once_and_raise_each_overstay_once(store: Store) -> None:
    inventory = load_inventory()
    gateway = await store.add_gateway(GATEWAY, "21231", hash_token(new_token()))
    spaces = list(inventory.spaces)
    records = []
    for i in range(600):
        space = spaces[i % len(spaces)]
        state = "occupied" if (i // len(spaces)) % 2 == 0 else "free"
        records.append({"seq": i + 1, "kind": "sample", "device": space, "ts_ms": T0 + i * 1000,
                        "values": {"parking_state": state}})
    for chunk in range(0, 600, 100):
        batch = decode_batch(encode_records(GATEWAY, "21231", records[chunk:chunk + 100]))
        await store.ingest(gateway, batch.records)
    end = T0 + 600_000
    a, b = (Projector(store, inventory, clock=lambda: end) for _ in range(2))
    await a.start()
    await b.start()
    await asyncio.gather(a.catch_up(), b.catch_up(), a.catch_up(), b.catch_up())
    assert a.applied + b.applied == 600  # each sample once, by one or the other
    hours = await store.parking_hours(T0 - 3_600_000, T0 + 3_600_000)
    changes = sum(h.changes for h in hours)
    # each space's first sample is no change; each later round changes every space it reaches
    assert changes == len(spaces) * (600 // len(spaces) - 1) + 600 % len(spaces)
    spaces_after = {s.space: s for s in await store.parking_spaces()}
    assert {s.space: s.state for s in a.spaces.values()} == {k: s.state for k, s in spaces_after.items()}
    a.clock = b.clock = lambda: end + 3 * 3_600_000
    await b.catch_up()  # b takes what a stored
    raised = await asyncio.gather(a.check_overstays(), b.check_overstays())
    blue_occupied = [s for s in spaces_after.values() if s.zone == "dijon-zb-centre" and s.state == "occupied"]
    assert sum(raised) == len(blue_occupied) > 0

