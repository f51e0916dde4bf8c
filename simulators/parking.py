"""`citygate-sim parking`: in-ground parking sensors as ChirpStack v4 publishes their uplinks.

Each space of the inventory (configs/parking/*.toml) gets a sensor of its model (drivers.lorawan
codecs encode the real payloads). Vehicles arrive and leave from a time-of-day model (a target
occupancy per local hour, weekday / Saturday / Sunday; stays of `mean_stay_s` on average), each
sensor sends a heartbeat every `heartbeat_s`, and the network server's device-status answers
(battery level) come with the heartbeats. Faults, each a share of the sensors or of the uplinks:

- silent: the sensor stops sending at a random moment of the first heartbeat period;
- flapping: a sensor that changes state twenty times as often as the others;
- low battery: Nwave heartbeats under 3000 mV, status events at 12 %;
- duplicate: an uplink delivered twice at once (same frame counter, same time);
- late: an uplink delivered again after the sensor's next one (an MQTT re-delivery);
- reset: a sensor restarts (its frame counter starts again at 0, a start-up frame).

Every uplink is `integration.UplinkEvent` in ChirpStack's JSON (all fields, camelCase) on
`application/{application_id}/device/{dev_eui}/event/up`; status events on `.../event/status`.
The ground truth (each state change as sent, each sensor gone silent, the low batteries) is
kept in `truth` and written with `--truth FILE`.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import click

from collector.parking.inventory import load_inventory
from drivers.lorawan import bosch, nwave
from drivers.lorawan.reading import Kind

PARIS_OFFSET_H = 1  # the profile's local hour: CET (a simulator; the hour shift of summer time does not matter)
#: target occupancy per local hour: weekday, Saturday, Sunday (two peaks: late morning and afternoon)
PROFILES = (
    (0.35, 0.3, 0.3, 0.3, 0.3, 0.35, 0.45, 0.6, 0.75, 0.85, 0.9, 0.9, 0.85, 0.85, 0.9, 0.9, 0.9, 0.85, 0.8, 0.7,
     0.6, 0.5, 0.45, 0.4),
    (0.4, 0.35, 0.35, 0.3, 0.3, 0.3, 0.35, 0.4, 0.55, 0.7, 0.85, 0.9, 0.9, 0.85, 0.85, 0.9, 0.9, 0.85, 0.75, 0.65,
     0.6, 0.55, 0.5, 0.45),
    (0.45, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.45, 0.5, 0.55, 0.6, 0.6, 0.55, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
     0.5, 0.5, 0.5, 0.45),
)
APPLICATION_ID = "6c2a3d37-33a7-4b0b-8a7e-7f2b5b0e0a01"
FLAP_FACTOR = 20.0


def dev_eui_of(space: str) -> str:
    """A stable EUI-64 per space (the IEEE OUI of a LoRaWAN vendor block, then a hash)."""
    return "70b3d5" + hashlib.sha256(space.encode()).hexdigest()[:10]


def target_occupancy(now_ms: int) -> float:
    local = datetime.fromtimestamp(now_ms / 1000 + PARIS_OFFSET_H * 3600, UTC)
    day = 2 if local.weekday() == 6 else 1 if local.weekday() == 5 else 0
    return PROFILES[day][local.hour]


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SpaceSpec:
    space: str
    street: str
    model: str


@dataclass(slots=True)
class Sensor:
    spec: SpaceSpec
    dev_eui: str
    occupied: bool
    fcnt: int = 0
    next_change_ms: int = 0
    next_heartbeat_ms: int = 0
    silent_from_ms: int | None = None
    flapping: bool = False
    low_battery: bool = False
    late: list[tuple[str, bytes]] = field(default_factory=list)  # uplinks to deliver again after the next one


@dataclass
class Truth:
    changes: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # space -> (time, state) as sent
    first: dict[str, tuple[int, str]] = field(default_factory=dict)  # space -> its first uplink's (time, state)
    silent: dict[str, int] = field(default_factory=dict)  # space -> time of its last uplink
    low_battery: set[str] = field(default_factory=set)
    resets: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    late: int = 0
    uplinks: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"changes": self.changes, "first": self.first, "silent": self.silent, "low_battery": sorted(self.low_battery),
                "resets": self.resets, "duplicates": self.duplicates, "late": self.late, "uplinks": self.uplinks}


@dataclass(frozen=True, slots=True)
class Faults:
    silent: float = 0.03
    flapping: float = 0.02
    low_battery: float = 0.02
    duplicate: float = 0.02
    late: float = 0.02
    reset: float = 0.0  # per heartbeat


class ParkingSim:
    """Pure generation: `step(now_ms)` returns the (topic, payload) messages due by then, in order."""

    def __init__(self, spaces: Sequence[SpaceSpec], start_ms: int, *, heartbeat_s: float = 4 * 3600,
                 mean_stay_s: float = 40 * 60, faults: Faults = Faults(), seed: int = 1,
                 application_id: str = APPLICATION_ID) -> None:
        self.rng = random.Random(seed)
        self.heartbeat_ms = int(heartbeat_s * 1000)
        self.mean_stay_ms = mean_stay_s * 1000
        self.faults = faults
        self.application_id = application_id
        self.truth = Truth()
        self.sensors: list[Sensor] = []
        for spec in spaces:
            occupied = self.rng.random() < target_occupancy(start_ms)
            s = Sensor(spec, dev_eui_of(spec.space), occupied)
            s.flapping = self.rng.random() < faults.flapping
            s.low_battery = self.rng.random() < faults.low_battery
            if self.rng.random() < faults.silent:
                s.silent_from_ms = start_ms + int(self.rng.random() * self.heartbeat_ms)
            s.next_heartbeat_ms = start_ms + int(self.rng.random() * self.heartbeat_ms)
            s.next_change_ms = start_ms + self._wait(s, start_ms)
            if s.low_battery:
                self.truth.low_battery.add(spec.space)
            self.sensors.append(s)
        self.started_ms = self.now_ms = start_ms

    def _wait(self, s: Sensor, now_ms: int) -> int:
        """Time to the sensor's next change: stays of mean_stay_s, arrivals keeping the target occupancy."""
        stay = self.mean_stay_ms / (FLAP_FACTOR if s.flapping else 1.0)
        p = min(0.95, max(0.05, target_occupancy(now_ms)))
        mean = stay if s.occupied else stay * (1 - p) / p
        return max(1, int(-math.log(1.0 - self.rng.random()) * mean))

    def step(self, now_ms: int) -> list[tuple[str, bytes]]:
        self.now_ms = now_ms
        out: list[tuple[str, bytes]] = []
        for s in self.sensors:
            while True:
                due = min(s.next_change_ms, s.next_heartbeat_ms)
                if due > now_ms:
                    break
                if s.silent_from_ms is not None and due >= s.silent_from_ms:
                    self.truth.silent.setdefault(s.spec.space, s.silent_from_ms)
                    s.next_change_ms = s.next_heartbeat_ms = 2**62
                    break
                if s.next_change_ms <= s.next_heartbeat_ms:
                    s.occupied = not s.occupied
                    s.next_change_ms = due + self._wait(s, due)
                    self.truth.changes.setdefault(s.spec.space, []).append((due, "occupied" if s.occupied else "free"))
                    out += self._send(s, Kind.STATUS, due)
                else:
                    s.next_heartbeat_ms = due + self.heartbeat_ms
                    if s.fcnt > 0 and self.rng.random() < self.faults.reset:  # a restart after it spoke
                        s.fcnt = 0
                        self.truth.resets[s.spec.space] = self.truth.resets.get(s.spec.space, 0) + 1
                        out += self._send(s, Kind.STARTUP, due)
                    else:
                        out += self._send(s, Kind.HEARTBEAT, due)
                    out.append(self._status(s, due))
        return out

    def _payload(self, s: Sensor, kind: Kind) -> tuple[int, bytes]:
        if s.spec.model == "nwave-nps4":
            return nwave.encode(kind, s.occupied, battery_mv=2900 if s.low_battery else 3600)
        return bosch.encode(kind, s.occupied)

    def _send(self, s: Sensor, kind: Kind, ts_ms: int) -> list[tuple[str, bytes]]:
        port, payload = self._payload(s, kind)
        msg = (f"application/{self.application_id}/device/{s.dev_eui}/event/up", self.uplink(s, port, payload, ts_ms))
        s.fcnt += 1
        self.truth.uplinks += 1
        self.truth.first.setdefault(s.spec.space, (ts_ms, "occupied" if s.occupied else "free"))
        out = [msg, *s.late]
        s.late = []
        if self.rng.random() < self.faults.duplicate:
            out.append(msg)
            self.truth.duplicates += 1
        if self.rng.random() < self.faults.late:
            s.late.append(msg)
            self.truth.late += 1
        return out

    def _device_info(self, s: Sensor) -> dict[str, Any]:
        return {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Dijon Métropole",
                "applicationId": self.application_id, "applicationName": "stationnement",
                "deviceProfileId": "8a1e4c2b-8b6f-4a49-9c0f-3d5f0b8e2c11", "deviceProfileName": s.spec.model,
                "deviceName": s.spec.space, "devEui": s.dev_eui, "deviceClassEnabled": "CLASS_A",
                "tags": {"street": s.spec.street}}

    def uplink(self, s: Sensor, port: int, payload: bytes, ts_ms: int) -> bytes:
        """integration.UplinkEvent as ChirpStack v4 serialises it (every field, camelCase)."""
        rssi = -85 - self.rng.randrange(35)
        doc = {
            "deduplicationId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "time": rfc3339(ts_ms), "deviceInfo": self._device_info(s), "devAddr": s.dev_eui[-8:], "adr": True,
            "dr": 5, "fCnt": s.fcnt, "fPort": port, "confirmed": False, "data": base64.b64encode(payload).decode(),
            "rxInfo": [{"gatewayId": "0016c001ff10a235", "uplinkId": self.rng.getrandbits(32), "nsTime": rfc3339(ts_ms),
                        "rssi": rssi, "snr": round(self.rng.uniform(-5, 10), 1), "channel": 2, "rfChain": 0,
                        "location": {}, "context": "AAAAAA==", "crcStatus": "CRC_OK"}],
            "txInfo": {"frequency": 868500000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7,
                                                                       "codeRate": "CR_4_5"}}},
            "regionConfigId": "eu868",
        }
        return json.dumps(doc, ensure_ascii=False).encode()

    def _status(self, s: Sensor, ts_ms: int) -> tuple[str, bytes]:
        doc = {"deduplicationId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "time": rfc3339(ts_ms),
               "deviceInfo": self._device_info(s), "margin": 12, "externalPowerSource": False,
               "batteryLevelUnavailable": False, "batteryLevel": 12.0 if s.low_battery else 87.5}
        return f"application/{self.application_id}/device/{s.dev_eui}/event/status", json.dumps(doc).encode()


def spaces_of(folder: Path | None = None) -> list[SpaceSpec]:
    inv = load_inventory(folder)
    return [SpaceSpec(p.id, p.street, p.model) for p in inv.spaces.values()]


def write_sensors_csv(spaces: Sequence[SpaceSpec], path: Path, heartbeat_s: float | None = None) -> None:
    """The agent bus's sensors_file for these spaces."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["dev_eui", "space", "model", *(["heartbeat_s"] if heartbeat_s else [])])
        for sp in spaces:
            w.writerow([dev_eui_of(sp.space), sp.space, sp.model, *([heartbeat_s] if heartbeat_s else [])])


async def publish(sim: ParkingSim, host: str, port: int, *, speed: float, duration_s: float | None,
                  tick_s: float = 0.1, username: str | None = None, password: str | None = None) -> int:
    """Run the simulation against a broker: sim time = start + elapsed wall time x speed. Messages sent."""
    sent = 0
    async with aiomqtt.Client(host, port, username=username, password=password,
                              identifier=f"citygate-sim-parking-{uuid.uuid4().hex[:8]}") as client:
        t0 = time.monotonic()
        while duration_s is None or time.monotonic() - t0 < duration_s:
            now = sim.started_ms + int((time.monotonic() - t0) * speed * 1000)
            for topic, payload in sim.step(now):
                await client.publish(topic, payload, qos=1)
                sent += 1
            await asyncio.sleep(tick_s)
    return sent


SHARE = click.FloatRange(0.0, 1.0)


@click.command("parking")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, help="MQTT broker HOST:PORT")
@click.option("--inventory", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="folder of parking inventories [configs/parking]")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="simulated seconds per second")
@click.option("--run", "run_s", default=None, type=click.FloatRange(min=0, min_open=True), help="stop after S s")
@click.option("--heartbeat", "heartbeat_s", default=4 * 3600.0, show_default=True, help="heartbeat period, s")
@click.option("--mean-stay", "mean_stay_s", default=2400.0, show_default=True, help="mean stay, s")
@click.option("--silent", default=0.03, show_default=True, type=SHARE, help="share of sensors going silent")
@click.option("--flapping", default=0.02, show_default=True, type=SHARE, help="share of flapping sensors")
@click.option("--low-battery", default=0.02, show_default=True, type=SHARE, help="share of sensors with a low battery")
@click.option("--duplicate", default=0.02, show_default=True, type=SHARE, help="share of uplinks delivered twice")
@click.option("--late", default=0.02, show_default=True, type=SHARE, help="share of uplinks delivered again late")
@click.option("--seed", default=1, show_default=True)
@click.option("--sensors-csv", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the agent bus's sensors_file here")
@click.option("--truth", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the ground truth (JSON) here at the end")
def parking(broker: str, inventory: Path | None, speed: float, run_s: float | None, heartbeat_s: float,
            mean_stay_s: float, silent: float, flapping: float, low_battery: float, duplicate: float, late: float,
            seed: int, sensors_csv: Path | None, truth: Path | None) -> None:
    """Parking sensors' uplinks, as ChirpStack v4 publishes them, to a real MQTT broker."""
    host, _, port = broker.rpartition(":")
    spaces = spaces_of(inventory)
    if not spaces:
        raise click.UsageError("the inventory has no space (configs/parking/*.toml)")
    if sensors_csv is not None:
        write_sensors_csv(spaces, sensors_csv, heartbeat_s)
    sim = ParkingSim(spaces, int(time.time() * 1000), heartbeat_s=heartbeat_s, mean_stay_s=mean_stay_s, seed=seed,
                     faults=Faults(silent, flapping, low_battery, duplicate, late))
    click.echo(f"{len(spaces)} spaces -> {broker}, x{speed:g}")
    try:
        sent = asyncio.run(publish(sim, host or "127.0.0.1", int(port), speed=speed, duration_s=run_s))
    except KeyboardInterrupt:
        sent = sim.truth.uplinks
    except aiomqtt.MqttError as exc:
        raise click.ClickException(f"broker {broker}: {exc}") from None
    finally:
        if truth is not None:
            truth.write_text(json.dumps(sim.truth.to_json()))
    click.echo(f"{sent} messages, {sum(map(len, sim.truth.changes.values()))} changes, "
               f"{len(sim.truth.silent)} silent, {sim.truth.duplicates} duplicated, {sim.truth.late} late")
