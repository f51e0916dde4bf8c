"""The table of sensor models: a new model is one codec module and one line here."""

from __future__ import annotations

from drivers.lorawan import bosch, nwave
from drivers.lorawan.reading import SensorModel

MODELS: dict[str, SensorModel] = {m.name: m for m in (bosch.MODEL, nwave.MODEL)}
