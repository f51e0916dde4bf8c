"""Helpers of the control-plane tests: a fleet's credentials and broker files, an operator's MQTT
client (the collector's identity), agent configs, and a bus of devices that answer when told."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citygate_wire.aio import stop_tasks
from citygate_wire.mqtt import (
    COLLECTOR_IDENTITY,
    Ack,
    Command,
    State,
    decode_ack,
    decode_state,
    encode_command,
    parse_topic,
    public_key_text,
    subscription,
    topic,
)
from collector.control.acl import acl_file, mosquitto_hash, password_file
from drivers.base import BusContext, DeviceState
from drivers.model import RecordSink, Sample
from drivers.registry import Driver
from edge_agent.agent import Agent
from edge_agent.clock import Clock, SystemClock
from edge_agent.config import parse_config
from edge_agent.control import ControlService
from simulators.mosquitto import Mosquitto
from simulators.procs import Proc, bin_path, free_port, wait_tcp

COMMUNE = "21231"


@dataclass
class Fleet:
    """Gateways with their tokens, the collector's password, and the broker files made from them."""

    folder: Path
    gateways: dict[str, str] = field(default_factory=dict)  # name -> token
    collector_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: the collector's command signing key; agent_doc gives its public half to every gateway
    command_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public_key(self) -> str:
        return public_key_text(self.command_key.public_key())

    def add(self, name: str) -> str:
        self.gateways[name] = "cgw_" + secrets.token_urlsafe(32)
        return self.gateways[name]

    def write(self) -> tuple[Path, Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        pw, acl = self.folder / "passwd", self.folder / "acl"
        entries = [(COLLECTOR_IDENTITY, mosquitto_hash(self.collector_password))]
        entries += [(name, mosquitto_hash(token)) for name, token in self.gateways.items()]
        pw.write_text(password_file(entries))
        acl.write_text(acl_file(self.gateways))
        return pw, acl

    def broker(self, folder: Path) -> Mosquitto:
        pw, acl = self.write()
        return Mosquitto(folder, password_file=pw, acl_file=acl)


def client(broker: Mosquitto, username: str, password: str, **kw: Any) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", broker.port, username=username, password=password,
                          protocol=aiomqtt.ProtocolVersion.V311, timeout=10, **kw)


async def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


class Operator:
    """The control centre's side, as a bare MQTT client with the collector's identity."""

    def __init__(self, broker: Mosquitto, fleet: Fleet, *, identity: str = COLLECTOR_IDENTITY,
                 password: str | None = None, identifier: str | None = None) -> None:
        # a fixed identifier makes a persistent session: the broker queues what comes while we are away
        self.client = client(broker, identity, password or fleet.collector_password,
                             identifier=identifier or f"operator-{uuid.uuid4().hex[:8]}",
                             clean_session=identifier is None)
        self.fleet = fleet
        self.acks: list[tuple[str, Ack]] = []
        self.states: list[tuple[str, State, bool]] = []  # (gateway, state, retained)
        self.raw: list[tuple[str, bytes]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Operator:
        await self.client.__aenter__()
        for kind in ("state", "ack", "alarm"):
            await self.client.subscribe(subscription(kind), qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            await self.client.__aexit__(None, None, None)
        except aiomqtt.MqttError:
            pass

    async def _read(self) -> None:
        async for m in self.client.messages:
            assert isinstance(m.payload, bytes)
            self.raw.append((m.topic.value, m.payload))
            t = parse_topic(m.topic.value)
            if t.kind == "ack":
                self.acks.append((t.gateway, decode_ack(m.payload)))
            elif t.kind == "state":
                self.states.append((t.gateway, decode_state(m.payload), m.retain))

    async def send(self, gateway: str, action: str, args: Mapping[str, Any], *, valid_s: float = 60,
                   cmd_id: str | None = None, issued_ms: int | None = None, commune: str = COMMUNE,
                   key: Ed25519PrivateKey | bool | None = True, addressee: str | None = None,
                   issued_by: str = "test-operator") -> str:
        """Publish a command to `gateway`, signed with the fleet's key (key=True), another key, or none (None)."""
        now = int(time.time() * 1000) if issued_ms is None else issued_ms
        cmd = Command(cmd_id or uuid.uuid4().hex, action, dict(args), now, now + int(valid_s * 1000), issued_by,
                      addressee or gateway)
        signer = self.fleet.command_key if key is True else key or None
        await self.publish(gateway, encode_command(cmd, signer), commune=commune)
        return cmd.id

    async def publish(self, gateway: str, payload: bytes, *, commune: str = COMMUNE) -> None:
        await self.client.publish(topic(commune, gateway, "cmd"), payload, qos=1)

    def acks_for(self, cmd_id: str, gateway: str | None = None) -> list[Ack]:
        return [a for g, a in self.acks if a.id == cmd_id and (gateway is None or g == gateway)]

    async def ack(self, cmd_id: str, timeout: float = 45) -> Ack:
        await wait_for(lambda: bool(self.acks_for(cmd_id)), timeout, f"the ack of {cmd_id}")
        return self.acks_for(cmd_id)[0]

    def last_state(self, gateway: str) -> State | None:
        found = [s for g, s, _ in self.states if g == gateway]
        return found[-1] if found else None


class GatedBus:
    """Devices that answer a live read only once the test opens the gate: a slow field device."""

    def __init__(self, name: str, devices: list[str]) -> None:
        self.name = name
        self.devices = devices
        self.gate = asyncio.Event()
        self.gate.set()
        self.reads: list[str] = []

    def states(self) -> list[DeviceState]:
        return [DeviceState(d, self.name, str(i)) for i, d in enumerate(self.devices)]

    async def run(self, sink: RecordSink) -> None:
        await asyncio.Event().wait()

    async def read(self, device: str) -> Sample:
        self.reads.append(device)
        await self.gate.wait()
        return Sample(device, int(time.time() * 1000), {"temperature_c": 21.5})

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class GatedConfig:
    name: str
    devices: tuple[str, ...]


def _parse_gated(raw: Mapping[str, Any], ctx: BusContext) -> GatedConfig:
    return GatedConfig(str(raw["name"]), tuple(raw.get("devices", [])))


#: the `type = "gated"` driver (tests only), installed as a third-party entry point by conftest
GATED = Driver(parse=_parse_gated, build=lambda c: GatedBus(c.name, list(c.devices)))


def agent_doc(tmp: Path, gateway: str, token: str, broker: Mosquitto, **mqtt: Any) -> dict[str, Any]:
    """An agent config document with a [mqtt] section; the uplink points at a closed port."""
    return {
        "gateway": {"id": gateway, "commune": COMMUNE, "state_dir": str(tmp / gateway)},
        "uplink": {"url": "http://127.0.0.1:9", "token": token},
        "local_api": {"socket": str(tmp / f"{gateway}.sock")},
        "mqtt": {"url": broker.url, "password": token, "keepalive_s": 5, "backoff_max_s": 1.0, **mqtt},
    }


def toml_text(doc: Mapping[str, Any]) -> str:
    """Enough TOML for agent_doc's shape (tables of scalars and string lists)."""
    out = []
    for section, table in doc.items():
        out.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, str):
                out.append(f'{key} = "{value}"')
            elif isinstance(value, bool):
                out.append(f"{key} = {'true' if value else 'false'}")
            else:
                out.append(f"{key} = {value}")
        out.append("")
    return "\n".join(out)




@asynccontextmanager
async def running_agent(tmp_path: Path, fleet: Fleet, broker: Mosquitto, gateway: str = "gw-a", *,
                        clock: Clock | None = None, connected: bool = True, mqtt: Mapping[str, Any] | None = None,
                        **sections: Any) -> AsyncIterator[Agent]:
    """An in-process Agent with a `gated` bus (meter-1, lamp-1) and a [mqtt] section; waits for its link."""
    # the fleet's public key unless the test gives another, or None for no key
    keyed = {"command_key": fleet.public_key, **(mqtt or {})}
    doc = agent_doc(tmp_path, gateway, fleet.gateways[gateway], broker,
                    **{k: v for k, v in keyed.items() if v is not None})
    doc["bus"] = [{"name": "field", "type": "gated", "devices": ["meter-1", "lamp-1"]}]
    doc.update(sections)
    agent = Agent(parse_config(doc, tmp_path / f"{gateway}.toml"), clock or SystemClock())
    task = asyncio.create_task(agent.run())
    try:
        if connected:
            await wait_for(lambda: control(agent).connected or task.done(), 30, "the agent's MQTT link")
        if task.done():
            task.result()
        yield agent
    finally:
        await stop_tasks([task])  # cancelled again until it ends, as the agent does (citygate_wire.aio)


def control(agent: Agent) -> ControlService:
    svc = agent.context.services.features["control"]
    assert isinstance(svc, ControlService)
    return svc


def bus(agent: Agent) -> GatedBus:
    b = agent.context.buses["field"]
    assert isinstance(b, GatedBus)
    return b


LAMP_MAP = Path(__file__).resolve().parents[2] / "configs" / "registermaps" / "lamp-lc100.toml"
PROGRAMS = Path(__file__).resolve().parents[2] / "configs" / "lighting"


def lamp_street(port: int) -> dict[str, Any]:
    """Sections of an agent whose lamps 7 and 8 (the lamp simulator on `port`) light one street:
    `running_agent(..., **lamp_street(port))`."""
    bus = {"name": "lc100", "type": "modbus-tcp", "host": "127.0.0.1", "port": port, "interval_s": 0.2,
           "timeout_s": 0.5, "device": [{"id": "lamp-7", "unit": 7, "register_map": str(LAMP_MAP)},
                                        {"id": "lamp-8", "unit": 8, "register_map": str(LAMP_MAP)}]}
    lighting = {"programs": [str(PROGRAMS / "common.toml"), str(PROGRAMS / "dijon.toml")],
                "latitude": 47.322, "longitude": 5.041, "time_source": "none",
                "group": [{"name": "rue-de-la-liberte", "lamps": ["lamp-7", "lamp-8"], "calendar": "dijon"}]}
    return {"bus": [bus], "lighting": lighting}


SIGNALS_JUNCTION = Path(__file__).resolve().parents[2] / "configs" / "intersections" / "dijon-jaures-tram.toml"


@contextmanager
def signal_controller() -> Iterator[int]:
    """The signal controller simulator of the Dijon Jaurès junction on Modbus TCP: its port."""
    port = free_port()
    sim = Proc("signals", [bin_path("citygate-sim"), "signals", "--intersection", str(SIGNALS_JUNCTION),
                           "--tcp", f"127.0.0.1:{port}", "--speed", "10"])
    try:
        sim.wait_for("signals: controller dijon-jaures-tram on modbus-tcp", timeout=60)
        wait_tcp("127.0.0.1", port)
        yield port
    finally:
        sim.stop()


def signals_bus(port: int) -> dict[str, Any]:
    """The agent's `signals` bus driving that controller (as `signals-jaures`)."""
    return {"name": "signals-jaures", "type": "signals", "host": "127.0.0.1", "port": port,
            "intersection": str(SIGNALS_JUNCTION), "interval_s": 0.2, "backup_time_s": 3600, "refresh_s": 60}
