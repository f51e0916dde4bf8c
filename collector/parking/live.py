"""The projector of each open store, so that whoever reads parking data (the routes, NGSI-LD) first
applies what was stored up to now: what is served is live, not as of the projector's last tick."""

from __future__ import annotations

from collector.parking.projector import Projector
from collector.store import Store

_PROJECTORS: dict[int, Projector] = {}


def register(store: Store, projector: Projector) -> None:
    _PROJECTORS[id(store)] = projector


def unregister(store: Store) -> None:
    _PROJECTORS.pop(id(store), None)


async def refreshed(store: Store) -> None:
    """Apply the samples stored so far (nothing when the store has no projector: a CLI, a test)."""
    projector = _PROJECTORS.get(id(store))
    if projector is not None:
        await projector.catch_up()
