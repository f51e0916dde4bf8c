"""The `lorawan-chirpstack` bus: parking sensors heard through ChirpStack v4's MQTT integration.

drivers/lorawan/README.md is the operator's page (config keys, samples, events, the models).
The bus subscribes (aiomqtt, QoS 1, a persistent session so a short cut loses nothing the broker
kept) to `application/{application_id}/device/+/event/up` and `.../event/status`; each uplink
is parsed (drivers.lorawan.uplink), decoded by its sensor's model codec (drivers.lorawan.models)
and judged by drivers.lorawan.tracker, which hands Samples and Events to the sink.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import logging
import random
import re
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from citygate_wire.aio import run_together
from citygate_wire.common import now_ms
from drivers.base import BusContext, DeviceState
from drivers.conf import ConfigTable
from drivers.errors import ConfigError, DecodeError, DeviceError
from drivers.lorawan.models import MODELS
from drivers.lorawan.tracker import Sensor, SensorState, Tracker
from drivers.lorawan.uplink import parse_status, parse_up, topic_parts
from drivers.model import Event, RecordSink, Sample, Severity
from drivers.registry import Driver

log = logging.getLogger("citygate.lorawan")

_EUI = re.compile(r"[0-9a-fA-F]{16}")
_APP = re.compile(r"[0-9A-Za-z_.:-]{1,64}|\+")
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class LorawanConfig:
    name: str
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    client_id: str
    application_id: str  # "+": every application the credentials may read
    silence_grace_s: float
    battery_low_pct: float
    tick_s: float
    sensors: tuple[Sensor, ...]


def _sensor(raw: Any, key: str, seen: dict[str, str]) -> Sensor:
    t = ConfigTable(raw, key)
    eui = t.text("dev_eui", required=True)
    if not _EUI.fullmatch(eui):
        raise ConfigError(f"{key}.dev_eui", f"expected 16 hex digits, got {eui!r}")
    space = t.text("space", required=True).strip()
    if not space:
        raise ConfigError(f"{key}.space", "must not be empty")
    model_name = t.text("model", required=True)
    model = MODELS.get(model_name)
    if model is None:
        raise ConfigError(f"{key}.model", f"unknown model {model_name!r}; known: {', '.join(sorted(MODELS))}")
    heartbeat_s = t.number("heartbeat_s", model.heartbeat_s, lo=0.1, hi=7 * 86_400)
    t.done()
    for other, what in ((eui.lower(), "dev_eui"), ("space:" + space, "space")):
        if other in seen:
            raise ConfigError(f"{key}.{what}", f"already used by {seen[other]}")
        seen[other] = key
    return Sensor(eui.lower(), space, model, heartbeat_s)


def _file_rows(path: Path, key: str) -> list[tuple[str, dict[str, Any]]]:
    """Rows of a sensors CSV (header dev_eui,space,model[,heartbeat_s]) as tables with their line's key."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(key, f"cannot read {path}: {exc}") from None
    out = []
    for line, row in enumerate(rows, start=2):
        table: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
        if "heartbeat_s" in table:
            try:
                table["heartbeat_s"] = float(table["heartbeat_s"])
            except ValueError:
                raise ConfigError(f"{key}:{line}.heartbeat_s", f"not a number: {table['heartbeat_s']!r}") from None
        out.append((f"{key}:{line}", table))
    return out


def parse(raw: Mapping[str, Any], ctx: BusContext) -> LorawanConfig:
    t = ConfigTable(dict(raw), ctx.key)
    t.text("type")
    name = t.text("name", required=True)
    app = t.text("application_id", "+")
    if not _APP.fullmatch(app):
        raise ConfigError(f"{ctx.key}.application_id", f"not an application id: {app!r}")
    tables: list[tuple[str, Any]] = []
    t.used.add("sensor")
    listed = raw.get("sensor", [])
    if not isinstance(listed, list):
        raise ConfigError(f"{ctx.key}.sensor", "expected an array of tables ([[bus.sensor]])")
    tables += [(f"{ctx.key}.sensor[{i}]", s) for i, s in enumerate(listed)]
    file = t.text("sensors_file")
    if file is not None:
        tables += _file_rows(ctx.config_dir / file, f"{ctx.key}.sensors_file")
    seen: dict[str, str] = {}
    sensors = tuple(_sensor(s, k, seen) for k, s in tables)
    if not sensors:
        raise ConfigError(f"{ctx.key}.sensor", "no sensor: list [[bus.sensor]] tables or a sensors_file")
    cfg = LorawanConfig(
        name=name,
        host=t.text("host", "127.0.0.1"),
        port=t.integer("port", 1883, lo=1, hi=65535),
        username=t.text("username"),
        password=t.text("password"),
        tls=t.boolean("tls", False),
        client_id=t.text("client_id", f"citygate-{name}"),
        application_id=app,
        silence_grace_s=t.number("silence_grace_s", 300.0, lo=0, hi=86_400),
        battery_low_pct=t.number("battery_low_pct", 20.0, lo=0, hi=100),
        tick_s=t.number("tick_s", 30.0, lo=0.01, hi=3600),
        sensors=sensors,
    )
    t.done()
    return cfg


class LorawanBus:
    def __init__(self, cfg: LorawanConfig) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.tracker = Tracker({s.dev_eui: s for s in cfg.sensors}, silence_grace_s=cfg.silence_grace_s,
                               battery_low_pct=cfg.battery_low_pct, started_s=time.monotonic())
        self._by_space = {s.space: s.dev_eui for s in cfg.sensors}
        self.connected = False
        self.received = 0
        self.refused = 0  # events that did not parse

    def states(self) -> list[DeviceState]:
        return [self._state(st) for st in self.tracker.states.values()]

    def _state(self, st: SensorState) -> DeviceState:
        values = {"parking_state": st.state, "since_ms": st.since_ms, "fcnt": st.last_fcnt,
                  "battery_pct": st.battery_pct, "battery_v": st.battery_v, "rssi_dbm": st.rssi_dbm,
                  "snr_db": st.snr_db}
        health = "failing" if st.silent else "unknown" if st.last_time_ms is None else "ok"
        return DeviceState(st.sensor.space, self.name, st.sensor.dev_eui, health, st.last_time_ms,
                           {k: v for k, v in values.items() if v is not None}, errors=dict(st.counts),
                           last_error="silent" if st.silent else None)

    async def read(self, device: str) -> Sample:
        """A LoRaWAN class A sensor cannot be asked: the last state the bus knows."""
        eui = self._by_space.get(device)
        if eui is None:
            raise DeviceError(device, f"not on bus {self.name!r}")
        st = self.tracker.states[eui]
        if st.last_time_ms is None:
            raise DeviceError(device, "not heard of since the bus started (a sensor speaks only when it has news)")
        return Sample(device, st.last_time_ms, {"parking_state": st.state})

    def handle(self, topic: str, payload: bytes, sink: RecordSink) -> None:
        """One MQTT message of the integration (also what tests and the benchmark feed directly)."""
        parts = topic_parts(topic)
        if parts is None or parts[2] not in ("up", "status"):
            return
        now_s = time.monotonic()
        try:
            if parts[2] == "up":
                records = self.tracker.uplink(parse_up(payload), now_s)
            else:
                records = self.tracker.status(parse_status(payload), now_s)
        except DecodeError as exc:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("bus %s: unreadable event on %s (%d so far): %s", self.name, topic, self.refused, exc)
            return
        self.received += 1
        for r in records:
            sink(r)

    async def run(self, sink: RecordSink) -> None:
        await run_together({f"{self.name}-listen": self._listen(sink), f"{self.name}-tick": self._tick(sink)})

    async def _tick(self, sink: RecordSink) -> None:
        while True:
            await asyncio.sleep(self.cfg.tick_s)
            for r in self.tracker.tick(time.monotonic(), now_ms()):
                sink(r)

    def _client(self) -> aiomqtt.Client:
        c = self.cfg
        return aiomqtt.Client(c.host, c.port, username=c.username, password=c.password, identifier=c.client_id,
                              protocol=aiomqtt.ProtocolVersion.V311, clean_session=False, keepalive=30, timeout=10,
                              tls_context=ssl.create_default_context() if c.tls else None, socket_options=NO_DELAY)

    async def _listen(self, sink: RecordSink) -> None:
        failures = 0
        down: str | None = None
        base = f"application/{self.cfg.application_id}/device/+/event/"
        while True:
            try:
                async with self._client() as client:
                    await client.subscribe([(base + "up", 1), (base + "status", 1)])
                    self.connected, failures = True, 0
                    if down is not None:
                        sink(Event(self.name, now_ms(), "mqtt_available", Severity.INFO))
                        down = None
                    async for message in client.messages:
                        if isinstance(message.payload, bytes | bytearray):
                            self.handle(message.topic.value, bytes(message.payload), sink)
            except aiomqtt.MqttError as exc:
                reason = str(exc) or type(exc).__name__
                if down is None:
                    sink(Event(self.name, now_ms(), "mqtt_unavailable", Severity.MAJOR,
                               {"broker": f"{self.cfg.host}:{self.cfg.port}", "reason": reason}))
                    log.warning("bus %s: MQTT broker %s:%d unreachable: %s", self.name, self.cfg.host,
                                self.cfg.port, reason)
                down = reason
            finally:
                self.connected = False
            failures += 1
            await asyncio.sleep(random.uniform(0.1, min(BACKOFF_MAX_S, 0.5 * 2 ** min(failures, 10))))

    async def aclose(self) -> None:
        return None


def build(cfg: LorawanConfig) -> LorawanBus:
    return LorawanBus(dataclasses.replace(cfg))


DRIVER = Driver(parse=parse, build=build)
