"""The metropolis at the wire level: every street cabinet a lightweight simulated gateway.

Not a full agent: a cabinet here is a few objects in one asyncio process. It speaks the real
protocols with the real codecs (citygate_wire):

- uploads: batches of journal-like records (`seq` ascending for ever, from a per-run base of the
  wall clock in microseconds, so a second run against the same collector never reuses one), posted
  gzip-compressed to `POST /api/v1/batches` with the gateway's token; what the collector
  acknowledged (`ack_seq`) leaves the journal, anything else is sent again: with the
  `Retry-After` of a 503 or 429, else with jittered exponential backoff.
- the MQTT control plane: one connection a cabinet with its Last Will (retained offline state),
  each connection's epoch (`session`) in its Will and its states as a real agent sends it,
  its retained online state every `state_s`, an alarm for each fault, and an ack for each command
  (format checked, signature not: it is a simulation).

What a cabinet does follows a simulated clock running `accel` times faster than the wall clock
and ending at the wall clock's now (the collector refuses records dated in the future):

- lamps lit from dusk to dawn (sun below the horizon, from the day's declination at the
  cabinet's latitude), dimmed to 50 % from 23:00 to 05:00 Paris time; a sample a lamp every
  `sample_s` simulated seconds (`lamp_on`, `level_pct`, `power_w`, `energy_wh`), a sample of the
  cabinet's meter at the same rhythm;
- faults: a lamp fails at `lamp_failure_rate` a lamp-year (`lamp_failure` event, major, and an MQTT
  alarm; repaired 1 to 5 days later: `lamp_restored`); a cabinet loses its uplink
  `uplink_loss_rate` times a year for 5 to 120 simulated minutes (its MQTT connection is cut, so
  the broker fires its Will; uploads wait); a cabinet loses power at night `power_cut_rate` times
  a year for 10 to 60 minutes (nothing measured meanwhile; `power_restored` on return); a whole
  commune's uplink can be cut and restored (`City.cut_commune`).
- residents report a failed lamp (Open311 `lamp-out`) with probability `report_share`.

With `plan_city(..., assets=Assets())` the city has the metropolis's other assets too
(simulators.city_assets): 113 signalised junctions, 269 cameras and the parking sensors on its
cabinets, and 205 service vehicles, each a gateway of its own, in the record formats of the real
drivers; `Rates` holds their rhythms and fault rates.

simulators.city_run plans the city, provisions it through `citygate-collector gateway import`
(and the vehicles, their streets and the parking inventory: `provision_assets`), and runs it
(`citygate-sim city`), optionally with a few real agents (simulators.city_agents).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import random
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import aiomqtt

from citygate_wire.aio import stop_tasks
from citygate_wire.batch import encode_records
from citygate_wire.common import PATH
from citygate_wire.compression import Compressor
from citygate_wire.mqtt import (
    Ack,
    Alarm,
    State,
    WireError,
    decode_command,
    encode_ack,
    encode_alarm,
    encode_state,
    peek_command,
    subscription,
    topic,
)
from simulators.city_assets import (
    NONE,
    Assets,
    CameraSim,
    Junction,
    JunctionSim,
    ParkingSim,
    ParkingStreet,
    VehiclePlan,
    VehicleSim,
    grid_of,
    parking_streets,
    plan_junction,
    write_parking_inventory,
)

log = logging.getLogger("citygate.sim.city")

YEAR_S = 365.25 * 86400
PARIS = ZoneInfo("Europe/Paris")
LAMP_POWER_W = 70.0
MAX_BATCH = 5000
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


# -- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cabinet:
    """A street cabinet's gateway and what it drives; or, with `vehicle`, the gateway on board a vehicle."""

    gateway: str
    cabinet: str
    commune: str
    lat: float
    lon: float
    lamps: tuple[str, ...]
    junctions: tuple[Junction, ...] = ()
    cameras: tuple[str, ...] = ()
    parking: tuple[ParkingStreet, ...] = ()  # the streets whose sensors its LoRaWAN bus hears
    vehicle: VehiclePlan | None = None

    def inventory_row(self) -> dict[str, Any]:
        if self.vehicle is not None:  # no cabinet, no fixed place
            return {"gateway": self.gateway, "commune": self.commune}
        return {"gateway": self.gateway, "cabinet": self.cabinet, "commune": self.commune, "lat": self.lat,
                "lon": self.lon, "lamps": list(self.lamps)}


def _largest_remainder(total: int, weights: list[float], floor: int = 0) -> list[int]:
    """`total` split in proportion to `weights`, each at least `floor`, summing to `total` exactly."""
    n = len(weights)
    left = total - floor * n
    if left < 0:
        raise ValueError(f"{total} cannot give {floor} to each of {n}")
    s = sum(weights)
    exact = [left * w / s for w in weights]
    out = [floor + int(e) for e in exact]
    for i in sorted(range(n), key=lambda i: exact[i] - int(exact[i]), reverse=True)[:total - sum(out)]:
        out[i] += 1
    return out


def plan_city(territory_file: Path, cabinets: int = 1500, lamps: int = 34_000, seed: int = 18, *,
              assets: Assets | None = None) -> list[Cabinet]:
    """Cabinets and lamps over the territory's communes in proportion to their population (every commune
    at least one cabinet), each cabinet near its commune's centre, its lamps split unevenly. With
    `assets`, the junctions, cameras and parking spaces on cabinets and the vehicles' own gateways
    (after the cabinets) too: the cabinets and lamps are the same with or without them."""
    doc = json.loads(territory_file.read_text(encoding="utf-8"))
    communes = sorted(doc["communes"], key=lambda c: c["insee"])
    if cabinets < len(communes) or lamps < cabinets:
        raise ValueError(f"at least {len(communes)} cabinets (one a commune) and a lamp a cabinet")
    rng = random.Random(seed)
    weights = [float(c["population"]) for c in communes]
    per_commune = _largest_remainder(cabinets, weights, floor=1)
    lamps_per_commune = _largest_remainder(lamps, [float(n) for n in per_commune], floor=0)
    out: list[Cabinet] = []
    for c, n_cab, n_lamps in zip(communes, per_commune, lamps_per_commune, strict=True):
        split = _largest_remainder(n_lamps, [rng.uniform(0.4, 1.6) for _ in range(n_cab)], floor=1)
        spread = 0.004 + 0.00001 * math.sqrt(c["population"])  # a larger town spreads wider
        for k, n in enumerate(split, 1):
            cabinet = f"{c['insee']}-{k:04d}"
            out.append(Cabinet(
                f"gw-{cabinet}", cabinet, c["insee"],
                round(c["lat"] + rng.gauss(0, spread), 6), round(c["lon"] + rng.gauss(0, spread * 1.5), 6),
                tuple(f"lamp-{u:03d}" for u in range(1, n + 1)),
            ))
    if assets is None or assets == NONE:
        return out
    return plan_assets(communes, out, assets, seed)


def plan_assets(communes: list[dict[str, Any]], cabinets: list[Cabinet], assets: Assets, seed: int) -> list[Cabinet]:
    """The junctions, cameras and parking on the cabinets of each commune (in proportion to its
    population), then a gateway a service vehicle."""
    rng = random.Random(f"assets:{seed}")  # its own generator: the cabinets stay as they were planned
    weights = [float(c["population"]) for c in communes]
    by_commune: dict[str, list[int]] = {}
    for k, cab in enumerate(cabinets):
        by_commune.setdefault(cab.commune, []).append(k)
    junctions: dict[int, list[Junction]] = {}
    cameras: dict[int, list[str]] = {}
    parking: dict[int, list[ParkingStreet]] = {}
    shares = zip(communes, _largest_remainder(assets.junctions, weights), _largest_remainder(assets.cameras, weights),
                 _largest_remainder(assets.parking_spaces, weights), strict=True)
    for c, n_junctions, n_cameras, n_spaces in shares:
        mine = by_commune[c["insee"]]
        sites = rng.sample(mine, min(n_junctions, len(mine))) if n_junctions <= len(mine) else \
            [rng.choice(mine) for _ in range(n_junctions)]
        for k, site in enumerate(sites, 1):
            junctions.setdefault(site, []).append(plan_junction(f"j{c['insee']}-{k:03d}", rng))
        # cameras watch the junctions first, two to four a cabinet, then other cabinets
        order = list(dict.fromkeys([*sites, *rng.sample(mine, len(mine))]))
        left, i = n_cameras, 0
        while left > 0:
            site = order[i % len(order)]
            take = min(left, rng.randint(2, 4))
            base = len(cameras.get(site, []))
            cameras.setdefault(site, []).extend(
                f"cam-{cabinets[site].cabinet}-{base + m}" for m in range(1, take + 1))
            left -= take
            i += 1
        if n_spaces:  # one cabinet a commune hears its sensors (the commune's LoRaWAN gateway)
            parking[mine[0]] = parking_streets(c, n_spaces, rng)
    out = [dataclasses.replace(cab, junctions=tuple(junctions.get(k, ())), cameras=tuple(cameras.get(k, ())),
                               parking=tuple(parking.get(k, ())))
           for k, cab in enumerate(cabinets)]
    police = round(assets.vehicles * assets.police_share)
    services = ["police"] * police + ["waste"] * (assets.vehicles - police)
    rng.shuffle(services)
    n = 0
    for c, count in zip(communes, _largest_remainder(assets.vehicles, weights), strict=True):
        grid = grid_of(c)
        for k in range(1, count + 1):
            service = services[n]
            n += 1
            name = f"{service}-{c['insee']}-{k:02d}"
            depot = (rng.randrange(grid.n), rng.randrange(grid.n))
            lat, lon = grid.node(*depot)
            out.append(Cabinet(f"gw-{name}", name, c["insee"], lat, lon, (),
                               vehicle=VehiclePlan(name, service, grid, depot)))
    return out


def parking_inventory(plan: list[Cabinet], folder: Path) -> Path:
    """The plan's parking as the collector's inventory ($CITYGATE_PARKING names the folder)."""
    return write_parking_inventory({c.gateway: list(c.parking) for c in plan if c.parking}, folder)


def streets_geojson(plan: list[Cabinet]) -> dict[str, Any]:
    """The street grids the vehicles drive, as `citygate-collector vehicle streets` reads them."""
    grids = {c.vehicle.grid.commune: c.vehicle.grid for c in plan if c.vehicle is not None}
    return {"type": "FeatureCollection", "features": [f for g in grids.values() for f in g.streets()]}


def write_inventory(cabinets: list[Cabinet], path: Path) -> None:
    path.write_text(json.dumps({"gateways": [c.inventory_row() for c in cabinets]}, indent=0))


# -- time and light ---------------------------------------------------------------------------------


class SimClock:
    """Simulated epoch ms: `accel` times the wall clock's pace, reaching the wall clock at `end_wall`."""

    def __init__(self, accel: float, duration_s: float | None) -> None:
        self.accel = accel
        self.t0_wall = time.time()
        self.t0_mono = time.monotonic()
        # a run of `duration_s` seconds covers accel * duration_s simulated ones, ending now
        self.start_ms = int((self.t0_wall - (accel - 1) * (duration_s or 0)) * 1000)

    def now_ms(self) -> int:
        """Past its duration, the simulated clock follows the wall clock (5 s behind: a round's readings
        are dated a few ms apart after it, and the collector refuses a record from the future)."""
        sim = self.start_ms + int((time.monotonic() - self.t0_mono) * self.accel * 1000)
        return min(sim, int(time.time() * 1000) - 5000)

    def real_s(self, sim_s: float) -> float:
        return sim_s / self.accel


def sun_elevation_deg(ts_ms: int, lat: float, lon: float) -> float:
    """The sun's elevation (±1°, no equation of time: enough for street lights)."""
    t = datetime.fromtimestamp(ts_ms / 1000, UTC)
    doy = t.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    hour = t.hour + t.minute / 60 + t.second / 3600 + lon / 15
    ha = math.radians(15 * (hour - 12))
    phi = math.radians(lat)
    s = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return math.degrees(math.asin(max(-1.0, min(1.0, s))))


def lamp_level(ts_ms: int, lat: float, lon: float) -> int:
    """0 by day, 50 from 23:00 to 05:00 Paris time, 100 the rest of the night."""
    if sun_elevation_deg(ts_ms, lat, lon) > -0.8:
        return 0
    local = datetime.fromtimestamp(ts_ms / 1000, PARIS)
    return 50 if local.hour >= 23 or local.hour < 5 else 100


# -- one cabinet ------------------------------------------------------------------------------------


@dataclass
class Rates:
    """Fault rates (a year) and rhythms (simulated seconds, except `state_s`: wall seconds)."""

    sample_s: float = 300.0
    upload_s: float = 300.0
    state_s: float = 60.0
    lamp_failure_rate: float = 0.05  # a lamp-year
    uplink_loss_rate: float = 4.0  # a cabinet-year
    power_cut_rate: float = 2.0  # a cabinet-year, at night
    report_share: float = 0.3  # of failed lamps reported by a resident
    keepalive_s: int = 20
    # the other assets (simulators.city_assets)
    counts_interval_s: float = 60.0  # a junction controller's counting interval
    detector_fault_rate: float = 1.0  # a detector-year (stuck off or on for 1 hour to 5 days)
    signal_fault_rate: float = 2.0  # a junction-year (a signal lamp, or the controller flashing amber)
    camera_sample_s: float = 300.0
    camera_down_rate: float = 3.0  # a camera-year (unreachable for 30 min to 2 days)
    camera_dark_rate: float = 0.5  # a cabinet-year: all its cameras at once (its switch)
    parking_stay_s: float = 2400.0  # mean stay on a space
    parking_heartbeat_s: float = 14_400.0
    sensor_silent_rate: float = 0.5  # a sensor-year (silent for 6 hours to 3 days)
    police_hours: tuple[float, float] = (7.0, 21.0)  # local time on the road
    waste_hours: tuple[float, float] = (5.0, 12.0)  # Monday to Saturday


@dataclass
class Counters:
    records: int = 0
    acked: int = 0
    batches: int = 0
    retries: int = 0
    throttled: int = 0
    refused: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    alarms: int = 0
    commands: int = 0
    reports: int = 0
    reports_refused: int = 0
    mqtt_connects: int = 0
    closed_socket_callbacks: int = 0
    counts: int = 0  # detector intervals
    parking: int = 0  # sensor uplinks
    positions: int = 0
    trips: int = 0


class Gateway:
    """One simulated cabinet (see the module's doc)."""

    def __init__(self, city: City, cab: Cabinet, token: str, rng: random.Random, seq_base: int) -> None:
        self.city = city
        self.cab = cab
        self.token = token
        self.rng = rng
        self.journal: deque[dict[str, Any]] = deque()
        self._seq = itertools.count(seq_base)
        self.failed: dict[str, int] = {}  # lamp -> repair time (sim ms)
        self.energy_wh = {lamp: rng.uniform(0, 50_000) for lamp in cab.lamps}
        self.meter_wh = rng.uniform(1e6, 1e7)
        self.uplink_down_until = 0  # sim ms
        self.power_off_until = 0
        self.commune_down = False
        self.mqtt_online = False
        #: the epoch of the MQTT connection (`session` of its Will and states): increases connection by connection
        self.session = 0
        self._mqtt_cut = asyncio.Event()
        self._uplink_back = asyncio.Event()
        self._uplink_back.set()
        self.alarms: deque[Alarm] = deque()
        self._wake_mqtt = asyncio.Event()
        self.junctions = [JunctionSim(j, random.Random(rng.random())) for j in cab.junctions]
        self.cameras = CameraSim(cab.cameras, random.Random(rng.random())) if cab.cameras else None
        spaces = [s for street in cab.parking for s in street.spaces()]
        self.parking = ParkingSim.of(spaces, random.Random(rng.random())) if spaces else None
        self.vehicle = VehicleSim(cab.vehicle, random.Random(rng.random())) if cab.vehicle else None

    # -- state ------------------------------------------------------------------------------

    def uplink_up(self, now: int) -> bool:
        return not self.commune_down and now >= self.uplink_down_until and now >= self.power_off_until

    def powered(self, now: int) -> bool:
        return now >= self.power_off_until

    def last_seq(self) -> int | None:
        return self.journal[-1]["seq"] if self.journal else None

    def _record(self, rec: dict[str, Any]) -> None:
        rec["seq"] = next(self._seq)
        self.journal.append(rec)
        self.city.counters.records += 1

    def event(self, device: str, ts: int, code: str, severity: str = "info", **detail: Any) -> None:
        self._record({"kind": "event", "device": device, "ts_ms": ts, "code": code, "severity": severity,
                      "detail": detail})
        if severity in ("major", "critical"):
            self.alarms.append(Alarm(f"{device}.{code}.{ts}", device, ts, code, severity, detail))
            self._wake_mqtt.set()

    # -- what the cabinet measures ----------------------------------------------------------------

    def tick(self, now: int, dt_s: float) -> None:
        """One sampling round at simulated time `now`, `dt_s` simulated seconds after the previous."""
        if self.vehicle is not None:  # the gateway on board: powered by the vehicle, no lamp, no meter
            if self.rng.random() < self.city.rates.uplink_loss_rate * dt_s / YEAR_S:
                self.uplink_down_until = now + int(self.rng.uniform(300, 7200) * 1000)
                self._mqtt_cut.set()
            self.vehicle.tick(self, now, dt_s)
            return
        self._lamps(now, dt_s)
        if self.powered(now):  # the cabinet's other buses share its power
            for j in self.junctions:
                j.tick(self, now, dt_s)
            if self.cameras is not None:
                self.cameras.tick(self, now, dt_s)
            if self.parking is not None:
                self.parking.tick(self, now, dt_s)

    def _lamps(self, now: int, dt_s: float) -> None:
        r = self.city.rates
        if not self.powered(now):
            return
        if self.power_off_until and now >= self.power_off_until:
            self.event("cabinet", now, "power_restored")
            self.power_off_until = 0
        level = lamp_level(now, self.cab.lat, self.cab.lon)
        if level and self.rng.random() < r.power_cut_rate * dt_s / YEAR_S * 2:  # nights are half the time
            self.power_off_until = now + int(self.rng.uniform(600, 3600) * 1000)
            self._mqtt_cut.set()
            return
        if self.rng.random() < r.uplink_loss_rate * dt_s / YEAR_S:
            self.uplink_down_until = now + int(self.rng.uniform(300, 7200) * 1000)
            self._mqtt_cut.set()
        for k, lamp in enumerate(self.cab.lamps):
            ts = now + k  # a controller's readings a millisecond apart, as a poll would
            repair = self.failed.get(lamp)
            if repair is not None and now >= repair:
                del self.failed[lamp]
                self.event(lamp, ts, "lamp_restored", code_cleared="lamp_failure")
                repair = None
            if repair is None and self.rng.random() < r.lamp_failure_rate * dt_s / YEAR_S:
                self.failed[lamp] = now + int(self.rng.uniform(1, 5) * 86_400_000)
                self.event(lamp, ts, "lamp_failure", "major", level_pct=level)
                self.city.maybe_report(self, lamp)
                repair = self.failed[lamp]
            on = bool(level) and repair is None
            power = LAMP_POWER_W * level / 100 if on else 0.0
            self.energy_wh[lamp] += power * dt_s / 3600
            values: dict[str, Any] = {"lamp_on": on, "level_pct": level if on else 0, "power_w": round(power, 1),
                                      "energy_wh": round(self.energy_wh[lamp], 1)}
            if repair is not None and level:
                values["lamp_failure"] = True
            self._record({"kind": "sample", "device": lamp, "ts_ms": ts, "values": values})
        cabinet_w = sum(LAMP_POWER_W * level / 100 for lamp in self.cab.lamps if lamp not in self.failed) if level \
            else 0.0
        self.meter_wh += cabinet_w * dt_s / 3600 + 5 * dt_s / 3600  # and the controller's own 5 W
        self._record({"kind": "sample", "device": "meter", "ts_ms": now + len(self.cab.lamps),
                      "values": {"index_wh": int(self.meter_wh), "papp_va": round(cabinet_w * 1.05 + 5)}})

    # -- uploads ----------------------------------------------------------------------------------

    async def upload_loop(self) -> None:
        city, r = self.city, self.city.rates
        failures = 0
        # cabinets spread their uploads over the interval, as the agents' jitter does
        await asyncio.sleep(self.rng.uniform(0, city.clock.real_s(r.upload_s)))
        while True:
            wait = city.clock.real_s(r.upload_s)
            if self.journal and self.uplink_up(city.clock.now_ms()):
                outcome = await self.upload_once()
                if outcome is None:
                    failures = 0
                    if len(self.journal) >= MAX_BATCH:
                        wait = 0.0
                elif outcome > 0:  # the collector said when
                    city.counters.throttled += 1
                    wait = outcome
                else:
                    failures += 1
                    city.counters.retries += 1
                    wait = self.rng.uniform(0.25, min(30.0, 0.5 * 2 ** min(failures, 8)))
            await asyncio.sleep(wait)

    async def upload_once(self) -> float | None:
        """None: a batch was acknowledged (or nothing to send); > 0: the Retry-After to honour; -1: failed, back off."""
        city = self.city
        if not self.journal:
            return None
        records = list(itertools.islice(self.journal, 0, MAX_BATCH))
        body = Compressor("gzip").compress([encode_records(self.cab.gateway, self.cab.commune, records)])
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                   "Content-Encoding": "gzip"}
        t0 = time.perf_counter()
        try:
            async with city.http.post(city.collector_url + PATH, data=body, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=city.upload_timeout_s)) as resp:
                if resp.status == 200:
                    ack_seq = int((await resp.json())["ack_seq"])
                    city.counters.latencies_ms.append((time.perf_counter() - t0) * 1000)
                    city.counters.batches += 1
                    while self.journal and self.journal[0]["seq"] <= ack_seq:
                        self.journal.popleft()
                        city.counters.acked += 1
                    return None
                text = await resp.text()
                if resp.status in (429, 503):
                    return max(0.05, float(resp.headers.get("Retry-After", "1")))
                if 400 <= resp.status < 500:
                    # the collector will refuse these records again: a real agent quarantines them
                    city.counters.refused += len(records)
                    log.error("%s: batch refused (%d): %s", self.cab.gateway, resp.status, text[:300])
                    for _ in records:
                        self.journal.popleft()
                    return None
                return -1.0
        except (aiohttp.ClientError, TimeoutError, OSError):
            return -1.0

    # -- the MQTT control plane ----------------------------------------------------------------------

    async def mqtt_loop(self) -> None:
        city = self.city
        failures = 0
        await asyncio.sleep(self.rng.uniform(0, min(5.0, city.connect_spread_s)))
        while True:
            now = city.clock.now_ms()
            if not self.uplink_up(now):
                await asyncio.sleep(0.2)
                continue
            self._mqtt_cut.clear()
            # a real agent keeps the last one on disk; within one run memory does, and the wall clock across runs
            self.session = max(self.session + 1, int(time.time() * 1000))
            client = self._client()
            try:
                async with client:
                    failures = 0
                    city.counters.mqtt_connects += 1
                    await self._session(client)
            except aiomqtt.MqttError:
                failures += 1
            finally:
                self.mqtt_online = False
                disconnected = client._disconnected  # a cut we made, or the broker's: expected, not an error
                if disconnected.done() and not disconnected.cancelled():
                    disconnected.exception()
            await asyncio.sleep(self.rng.uniform(0.25, min(10.0, 0.5 * 2 ** min(failures, 6))))

    def _client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(topic(self.cab.commune, self.cab.gateway, "state"),
                            encode_state(State(self.cab.gateway, self.cab.commune, False, reason="connection lost",
                                               session=self.session)),
                            qos=1, retain=True)
        return aiomqtt.Client(self.city.mqtt_host, self.city.mqtt_port, username=self.cab.gateway,
                              password=self.token, identifier=self.cab.gateway,
                              protocol=aiomqtt.ProtocolVersion.V311, clean_session=False,
                              keepalive=self.city.rates.keepalive_s, timeout=20, will=will,
                              socket_options=NO_DELAY)

    def _state(self) -> bytes:
        oldest = self.journal[0]["ts_ms"] if self.journal else None
        return encode_state(State(self.cab.gateway, self.cab.commune, True, int(time.time() * 1000),
                                  version="city-sim", journal_backlog=len(self.journal),
                                  journal_oldest_ts_ms=oldest, clock_synced=True, uplink_connected=True,
                                  interval_s=self.city.rates.state_s, session=self.session))

    async def _session(self, client: aiomqtt.Client) -> None:
        state_topic = topic(self.cab.commune, self.cab.gateway, "state")
        await client.publish(state_topic, self._state(), qos=1, retain=True)
        await client.subscribe(subscription("cmd", gateway=self.cab.gateway), qos=1)
        self.mqtt_online = True
        receive = asyncio.ensure_future(self._commands(client))
        try:
            await self._publish(client, state_topic, receive)
        finally:
            receive.cancel()
            # wait for its end without taking this task's own cancellation for it: swallowed, a city
            # told to stop kept a cabinet reconnecting for ever (`make demo CITY=full` hung on Ctrl-C)
            await asyncio.wait([receive])
            if not receive.cancelled():
                with contextlib.suppress(aiomqtt.MqttError):
                    receive.result()

    async def _publish(self, client: aiomqtt.Client, state_topic: str, receive: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        next_state = loop.time() + self.rng.uniform(0.5, 1.0) * self.city.rates.state_s
        cut = asyncio.ensure_future(self._mqtt_cut.wait())
        try:
            while True:
                while self.alarms:
                    await client.publish(topic(self.cab.commune, self.cab.gateway, "alarm"),
                                         encode_alarm(self.alarms[0]), qos=1)
                    self.alarms.popleft()
                    self.city.counters.alarms += 1
                if loop.time() >= next_state:
                    await client.publish(state_topic, self._state(), qos=1, retain=True)
                    next_state = loop.time() + self.city.rates.state_s
                self._wake_mqtt.clear()
                wake = asyncio.ensure_future(self._wake_mqtt.wait())
                waiting: set[asyncio.Future[Any]] = {wake, cut, receive}
                done, _ = await asyncio.wait(waiting, timeout=max(0.0, next_state - loop.time()),
                                             return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                if receive in done:
                    receive.result()  # the connection broke under the receiving loop: its MqttError
                    raise aiomqtt.MqttError("the broker ended the session")
                if cut in done:
                    # the uplink is gone: the socket closes without DISCONNECT, so the broker fires the Will
                    sock = client._client.socket()
                    if isinstance(sock, socket.socket):
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                    raise aiomqtt.MqttError("uplink lost (simulated)")
        finally:
            cut.cancel()

    async def _commands(self, client: aiomqtt.Client) -> None:
        ack_topic = topic(self.cab.commune, self.cab.gateway, "ack")
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            now = int(time.time() * 1000)
            try:
                cmd = decode_command(bytes(payload))
                ack = Ack(cmd.id, "done", now, result={"simulated": True})
            except WireError as exc:
                peeked = peek_command(bytes(payload))
                if peeked is None:
                    continue
                ack = Ack(peeked[0], "refused", now, "invalid", str(exc)[:400])
            self.city.counters.commands += 1
            await client.publish(ack_topic, encode_ack(ack), qos=1)


# -- the city -------------------------------------------------------------------------------------------


class City:
    """Every cabinet of one process, with its clock, HTTP session and counters."""

    def __init__(self, cabinets: list[Cabinet], tokens: dict[str, str], *, collector_url: str, mqtt_url: str | None,
                 accel: float = 1.0, duration_s: float | None = None, rates: Rates | None = None, seed: int = 18,
                 upload_timeout_s: float = 60.0) -> None:
        self.rates = rates or Rates()
        self.clock = SimClock(accel, duration_s)
        self.collector_url = collector_url.rstrip("/")
        self.mqtt_host, self.mqtt_port = _host_port(mqtt_url) if mqtt_url else ("", 0)
        self.use_mqtt = mqtt_url is not None
        self.upload_timeout_s = upload_timeout_s
        self.connect_spread_s = 5.0
        self.counters = Counters()
        self.rng = random.Random(seed)
        seq_base = time.time_ns() // 1000
        self.gateways = [Gateway(self, c, tokens[c.gateway], random.Random(self.rng.random()), seq_base)
                         for c in cabinets]
        self.http: aiohttp.ClientSession
        self._reports: set[asyncio.Task[None]] = set()

    def by_commune(self, insee: str) -> list[Gateway]:
        return [g for g in self.gateways if g.cab.commune == insee]

    def cut_commune(self, insee: str) -> int:
        """A whole commune's uplink lost (its operator's cell, its fibre): uploads wait, Wills fire."""
        gws = self.by_commune(insee)
        for g in gws:
            g.commune_down = True
            g._mqtt_cut.set()
        return len(gws)

    def restore_commune(self, insee: str) -> None:
        for g in self.by_commune(insee):
            g.commune_down = False

    def backlog(self) -> int:
        return sum(len(g.journal) for g in self.gateways)

    def maybe_report(self, gw: Gateway, lamp: str) -> None:
        if self.rng.random() >= self.rates.report_share:
            return
        task = asyncio.get_running_loop().create_task(self._report(gw, lamp))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _report(self, gw: Gateway, lamp: str) -> None:
        # a resident notices it some (real) seconds later
        await asyncio.sleep(self.rng.uniform(1, 5))
        form = {"jurisdiction_id": gw.cab.commune, "service_code": "lamp-out", "lat": str(gw.cab.lat),
                "long": str(gw.cab.lon),
                "description": f"Le lampadaire près de l'armoire {gw.cab.cabinet} ne s'allume plus.",
                "email": f"habitant{self.rng.randrange(10**6)}@example.org",
                "attribute[lamp_id]": f"{gw.cab.gateway}/{lamp}"}
        try:
            async with self.http.post(self.collector_url + "/open311/v2/requests.json", data=form,
                                      timeout=aiohttp.ClientTimeout(total=30)) as resp:
                await resp.read()
                if resp.status == 201:
                    self.counters.reports += 1
                else:
                    self.counters.reports_refused += 1
                    log.warning("report on %s/%s refused (%d): %s", gw.cab.gateway, lamp, resp.status,
                                (await resp.text())[:300])
        except (aiohttp.ClientError, TimeoutError):
            self.counters.reports_refused += 1

    async def _ticks(self, gw: Gateway) -> None:
        r = self.rates
        await asyncio.sleep(self.rng.uniform(0, self.clock.real_s(r.sample_s)))
        last = self.clock.now_ms()
        while True:
            now = self.clock.now_ms()
            gw.tick(now, max(1.0, (now - last) / 1000))
            last = now
            await asyncio.sleep(self.clock.real_s(r.sample_s))

    async def run(self, until: asyncio.Event | None = None) -> None:
        """Every cabinet until `until` is set (or for ever)."""
        loop = asyncio.get_running_loop()
        default = loop.get_exception_handler()

        def quiet_closed_sockets(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            # paho asks the loop to watch a socket it has just closed when a connect times out (a
            # thousand cabinets connecting at once): nothing is lost, the cabinet connects again
            if isinstance(context.get("exception"), OSError) and "add_writer" in str(context.get("handle", "")):
                self.counters.closed_socket_callbacks += 1
                return
            if default is not None:
                default(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(quiet_closed_sockets)
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as self.http:
            async with asyncio.TaskGroup() as tg:
                tasks = []
                for gw in self.gateways:
                    tasks.append(tg.create_task(self._ticks(gw)))
                    tasks.append(tg.create_task(gw.upload_loop()))
                    if self.use_mqtt:
                        tasks.append(tg.create_task(gw.mqtt_loop()))
                await (until or asyncio.Event()).wait()
                # cancelled again until they end: on Python 3.11 a cancellation landing as paho's publish
                # or pymodbus' request completes is dropped (citygate_wire.aio), and a cabinet's MQTT loop
                # cancelled once then ran on, reconnecting, with the TaskGroup waiting for it for ever
                await stop_tasks(tasks)

    async def drain(self, timeout_s: float) -> bool:
        """Upload every journal now (uplinks permitting); True if all of it was acknowledged."""
        for _ in range(max(1, int(timeout_s * 10))):
            if not self.backlog():
                return True
            await asyncio.sleep(0.1)
        return not self.backlog()


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"{url!r}: the city speaks mqtt:// on a local broker")
    return parts.hostname, parts.port or 1883
