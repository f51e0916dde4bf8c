"""The agent's control link over MQTT: presence, alarms, commands and their acknowledgements.

One service (`[mqtt]` section) keeps one connection to the broker with the gateway's own
credentials, and reconnects with jittered backoff for ever. Nothing else in the agent waits on
it: alarms are copied into a bounded buffer by a journal observer (the journal keeps them all
anyway), commands run in their own task, acks wait in SQLite (edge_agent.commands) until the
broker has them. So a broker outage never slows polling, programs or journalling.

With an mqtts:// URL the broker's certificate and host name are verified (system CAs or
`ca_file`); a failed or cut handshake is a connection error like any other, retried over TLS:
there is no clear-text fall-back that would show the gateway's password to whoever listens.

    [mqtt]
    url = "mqtts://broker.example.org"      # mqtt:// (port 1883) or mqtts:// (8883)
    username = "gw-dijon-0001"              # default: the gateway id
    password_file = "/etc/citygate/token"   # or password = "..."; the gateway's own token (mode 0600)
    ca_file = "/etc/citygate/ca.pem"        # mqtts only; default: the system CAs
    command_key = "base64..."               # the collector's public key (`citygate-collector command-key show`)
    clock_tolerance_s = 300                 # a command issued further in the future is refused
    allow_cleartext = false                 # mqtt:// to anything but loopback needs true
    keepalive_s = 60                        # the broker declares us offline 1.5 x this after a silent death
    client_id = "gw-dijon-0001"             # default: the gateway id
    state_interval_s = 300                  # retained state refreshed this often (and at every connection)
    alarm_buffer = 1000                     # alarms kept while disconnected (oldest dropped, counted)
    backoff_max_s = 60                      # reconnect attempts at most this far apart

Each connection has an epoch (`session`: edge_agent.commands.CommandStore.next_session, committed
before the connect), in the Will set at that connect and in every state published on it: the
collector orders a Will against states by it, whichever of its instances writes them.

Commands are run only if signed with the collector's Ed25519 key (citygate_wire.mqtt
authenticate_command): without `command_key` every command is refused, and check-config says so.

Keepalive: 60 s. A cabinet that loses power or its link sends nothing, so the broker learns
it only when 1.5 x keepalive passes without a packet (90 s; Mosquitto 2.0 sweeps keepalives
every 6 s or so, hence at most about 96 s) and then publishes our Last Will; a crashed process
is seen at once (the kernel closes its socket). On a cellular plan the link's quiet cost is its
pings and state refreshes: over TLS a ping and its answer are two TLS records and their TCP/IP
segments, about 170 bytes, so 20 s and a state every 60 s cost about 835 kB a cabinet-day
(bench/bench_uplink.py --control), 60 s and 300 s about a third of it: with the uploads, under
the 1 MB a day a cabinet's plan is sized for (docs/mqtt.md). A shorter keepalive mostly buys
false alarms on a flaky link; a longer one, a later offline alarm for a dead cabinet.

Bytes: the link adds what its TCP connection carried (the kernel's count, TLS included) to the
uploader's usage meter (edge_agent.uplink_usage) at every message it sends and every state
refresh, so `citygate-agent status` counts it in the day's and the month's uplink data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import importlib.metadata
import logging
import random
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from citygate_wire.aio import run_together
from citygate_wire.mqtt import (
    Ack,
    Alarm,
    CommandRefusal,
    State,
    WireError,
    authenticate_command,
    encode_ack,
    encode_alarm,
    encode_state,
    parse_public_key,
    parse_topic,
    subscription,
    topic,
)
from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.model import Event, Record, Severity
from edge_agent.clock import epoch_ms
from edge_agent.commands import CommandStore, Executor
from edge_agent.config import check_ca_file, check_url, read_secret, secret_file_warning
from edge_agent.service import AgentContext
from edge_agent.timesync import clock_quality
from edge_agent.uplink_usage import TcpCount, tcp_count

log = logging.getLogger("citygate.control")

DEFAULT_KEEPALIVE_S = 60
DEFAULT_STATE_INTERVAL_S = 300.0
#: Refusals of messages that were not authentic commands wait here for the broker, not in SQLite:
#: they must not use up a command id, and a flood of them must not fill the disk.
REFUSALS_KEPT = 100
ALARM_SEVERITIES = (Severity.MAJOR, Severity.CRITICAL)
#: How long a clean shutdown waits for the broker to take the "offline" state.
GOODBYE_TIMEOUT_S = 2.0
#: Nagle's algorithm holds a small packet until the previous one is acknowledged, and the peer
#: delays that ack up to 40 ms: each hop of a command or an ack would wait for it.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


@dataclass(frozen=True)
class MqttConfig:
    url: str
    host: str
    port: int
    tls: bool
    password: str
    username: str | None = None  # None: the gateway id
    ca_file: Path | None = None
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    client_id: str | None = None  # None: the gateway id
    state_interval_s: float = DEFAULT_STATE_INTERVAL_S
    alarm_buffer: int = 1000
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0
    #: the collector's public keys: a command signed by none of them is refused (none: all are)
    command_keys: tuple[Ed25519PublicKey, ...] = ()
    clock_tolerance_s: float = 300.0
    password_file: Path | None = None

    def config_warnings(self) -> list[str]:
        """For check-config and the start of `run` (edge_agent.config.HasWarnings)."""
        out = []
        if not self.command_keys:
            out.append("mqtt.command_key: missing: this gateway refuses every command "
                       "(the key is printed by `citygate-collector command-key show`)")
        if self.password_file is not None and (w := secret_file_warning(self.password_file, "mqtt.password_file")):
            out.append(w)
        return out

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        # verifies the chain and the host name; nothing here turns either check off
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def parse_section(raw: Any, key: str, config_dir: Path) -> MqttConfig:
    """The [mqtt] table (edge_agent.config.SECTIONS)."""
    t = ConfigTable(raw, key)
    url = t.text("url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"{key}.url", f"{url!r} is not an mqtt:// or mqtts:// URL with a host")
    check_url(parts, key, "mqtt", t.boolean("allow_cleartext", False))
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{key}.url", f"{url!r}: an MQTT broker URL has no path, query or fragment")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise ConfigError(f"{key}.url", f"{url!r}: bad port") from None
    password = t.text("password")
    password_file = t.text("password_file")
    if (password is None) == (password_file is None):
        raise ConfigError(f"{key}.password", "give exactly one of password or password_file")
    secret_path = _resolve(config_dir, password_file) if password_file is not None else None
    if secret_path is not None:
        password = read_secret(secret_path, f"{key}.password_file")
    assert password is not None  # exactly one of password, password_file: checked above
    ca = t.text("ca_file")
    ca_file = _resolve(config_dir, ca) if ca is not None else None
    if ca_file is not None:
        if parts.scheme != "mqtts":
            raise ConfigError(f"{key}.ca_file", "a CA file only makes sense with an mqtts:// URL")
        check_ca_file(ca_file, f"{key}.ca_file")
    keys: tuple[Ed25519PublicKey, ...] = ()
    if (key_text := t.text("command_key")) is not None:
        try:
            keys = (parse_public_key(key_text),)
        except WireError as exc:
            raise ConfigError(f"{key}.command_key", f"not an Ed25519 public key: {exc.reason}") from None
    cfg = MqttConfig(
        url=url, host=parts.hostname, port=port, tls=parts.scheme == "mqtts", password=password,
        username=t.text("username"), ca_file=ca_file,
        keepalive_s=t.integer("keepalive_s", DEFAULT_KEEPALIVE_S, lo=5, hi=600),
        client_id=t.text("client_id"),
        state_interval_s=t.number("state_interval_s", DEFAULT_STATE_INTERVAL_S, lo=1, hi=3600),
        alarm_buffer=t.integer("alarm_buffer", 1000, lo=1, hi=100_000),
        backoff_max_s=t.number("backoff_max_s", 60.0, lo=0.1, hi=3600),
        timeout_s=t.number("timeout_s", 10.0, lo=0.5, hi=120),
        command_keys=keys,
        clock_tolerance_s=t.number("clock_tolerance_s", 300.0, lo=0, hi=86_400),
        password_file=secret_path,
    )
    t.done()
    return cfg


def service(cfg: MqttConfig) -> ControlService:
    """The service factory (edge_agent.agent.SERVICES)."""
    return ControlService(cfg)


def software_version() -> str:
    try:
        return importlib.metadata.version("citygate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class ControlService:
    name = "control"  # the local API shows this service's status() as the gateway's broker link

    def __init__(self, cfg: MqttConfig) -> None:
        self.cfg = cfg
        self.connected = False
        self.connections = 0  # successful connections so far (tests and the state watch it)
        self.last_error: str | None = None
        self.alarms: collections.deque[Alarm] = collections.deque(maxlen=cfg.alarm_buffer)
        self.alarms_dropped = 0
        self.executor: Executor | None = None
        #: acks of messages refused before they were taken as commands (CommandRefusal.consumes_id False)
        self.refusals: collections.deque[Ack] = collections.deque(maxlen=REFUSALS_KEPT)
        self.refused = 0  # messages on our cmd topic that were not authentic commands
        self._wake = asyncio.Event()
        self._config_hash: str | None = None
        self._counted = TcpCount()  # the open connection's counts already added to the usage meter
        #: the epoch of the current (or last tried) connection: `session` in its Will and its states
        self.session: int | None = None

    def status(self) -> dict[str, Any]:
        """For the technician's `status` (edge_agent.localapi)."""
        return {
            "url": self.cfg.url, "connected": self.connected, "connections": self.connections,
            "last_error": self.last_error, "alarms_buffered": len(self.alarms), "alarms_dropped": self.alarms_dropped,
            "commands_run": self.executor.executed if self.executor else 0,
            "commands_refused_unauthenticated": self.refused,
            "keepalive_s": self.cfg.keepalive_s,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, ctx: AgentContext) -> None:
        self._config_hash = _file_hash(ctx.config_file)
        async with CommandStore(ctx.state_dir / "commands.db") as store:
            now = epoch_ms(ctx.clock.now())
            if cut := await store.interrupted(now):
                log.warning("%d command(s) were cut by the last stop: answered failed/interrupted, not rerun", cut)
            await store.prune(now)
            executor = Executor(ctx, store, self._wake.set)
            self.executor = executor
            ctx.subscribe(self._on_record)
            try:
                await run_together({"command executor": executor.run(),
                                    "MQTT link": self._connect_forever(ctx, store, executor)})
            finally:
                ctx.observers.remove(self._on_record)

    def _on_record(self, record: Record) -> None:
        if not isinstance(record, Event) or record.severity not in ALARM_SEVERITIES:
            return
        if len(self.alarms) == self.alarms.maxlen:
            self.alarms_dropped += 1  # the journal still has it; the state message says how many
        self.alarms.append(Alarm(secrets.token_hex(8), record.device, record.ts_ms, record.code,
                                 str(record.severity), dict(record.detail)))
        self._wake.set()

    async def _connect_forever(self, ctx: AgentContext, store: CommandStore, executor: Executor) -> None:
        failures = 0
        while True:
            # each connection its epoch, in its Will and its states: the collector orders them by it
            self.session = await store.next_session(epoch_ms(ctx.clock.now()))
            client = self._client(ctx)
            try:
                async with client:
                    failures = 0
                    await self._session(client, ctx, store, executor)
            except aiomqtt.MqttError as exc:
                self._failed(str(exc) or type(exc).__name__)
                close_socket(client)
            finally:
                self.connected = False
            failures += 1
            await asyncio.sleep(self._backoff(failures))

    def _failed(self, reason: str) -> None:
        if reason != self.last_error:
            log.warning("MQTT link to %s down: %s", self.cfg.url, reason)
        self.last_error = reason

    def _backoff(self, failures: int) -> float:
        # full jitter, so a fleet coming back after a broker outage does not reconnect in one burst
        ceiling = min(self.cfg.backoff_max_s, 0.5 * 2 ** min(failures, 20))
        return random.uniform(min(0.25, ceiling), ceiling)

    def _client(self, ctx: AgentContext) -> aiomqtt.Client:
        gateway = ctx.gateway_id
        will = aiomqtt.Will(topic(ctx.commune, gateway, "state"),
                            encode_state(State(gateway, ctx.commune, False, reason="connection lost",
                                               session=self.session)),
                            qos=1, retain=True)
        return aiomqtt.Client(
            self.cfg.host, self.cfg.port,
            username=self.cfg.username or gateway, password=self.cfg.password,
            identifier=self.cfg.client_id or gateway,
            protocol=aiomqtt.ProtocolVersion.V311,
            # a persistent session: commands sent during a short cut are delivered on return
            # (and refused if they expired meanwhile)
            clean_session=False,
            keepalive=self.cfg.keepalive_s,
            timeout=self.cfg.timeout_s,
            will=will,
            tls_context=self.cfg.tls_context(),
            socket_options=NO_DELAY,
        )

    # -- one connection ----------------------------------------------------------------------

    async def _session(self, client: aiomqtt.Client, ctx: AgentContext, store: CommandStore,
                       executor: Executor) -> None:
        state_topic = topic(ctx.commune, ctx.gateway_id, "state")
        self._counted = TcpCount()  # a new connection: the kernel counts from zero
        await client.publish(state_topic, await self._state(ctx), qos=1, retain=True)
        await client.subscribe(subscription("cmd", gateway=ctx.gateway_id), qos=1)
        self.connected = True
        self.connections += 1
        if self.last_error is not None:
            log.info("MQTT link to %s restored", self.cfg.url)
        self.last_error = None
        try:
            # the link breaking under one of the two loops raises its MqttError: the caller reconnects
            await run_together({"MQTT receive": self._receive(client, ctx, executor),
                                "MQTT send": self._send(client, ctx, store)})
        except asyncio.CancelledError:
            # a clean stop: say so at once instead of letting the broker wait for the keepalive
            offline = encode_state(State(ctx.gateway_id, ctx.commune, False, epoch_ms(ctx.clock.now()),
                                         reason="agent stopped", session=self.session))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.publish(state_topic, offline, qos=1, retain=True), GOODBYE_TIMEOUT_S)
            raise

    async def _receive(self, client: aiomqtt.Client, ctx: AgentContext, executor: Executor) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray) or not _ours(message.topic.value, ctx.gateway_id):
                # the broker's ACL should make this impossible: say so rather than obey
                log.warning("message on %s is not a command for %s: ignored", message.topic, ctx.gateway_id)
                continue
            try:
                cmd = authenticate_command(bytes(payload), self.cfg.command_keys, ctx.gateway_id, executor.now_ms(),
                                           int(self.cfg.clock_tolerance_s * 1000))
            except CommandRefusal as refusal:
                await self._refuse(refusal, executor)
                continue
            await executor.receive(cmd)

    async def _refuse(self, refusal: CommandRefusal, executor: Executor) -> None:
        if refusal.id is None:
            log.warning("unreadable command (no usable id, so no ack possible): %s", refusal.reason)
            return
        if refusal.consumes_id:
            # an authentic command the gateway cannot take: refused once, a repeat gets the same answer
            await executor.refuse(refusal.id, refusal.action, refusal.code, refusal.reason)
            return
        self.refused += 1
        log.warning("command %s (%s) refused (%s): %s", refusal.id, refusal.action, refusal.code, refusal.reason)
        self.refusals.append(Ack(refusal.id, "refused", executor.now_ms(), refusal.code, refusal.reason))
        self._wake.set()

    async def _send(self, client: aiomqtt.Client, ctx: AgentContext, store: CommandStore) -> None:
        ack_topic = topic(ctx.commune, ctx.gateway_id, "ack")
        alarm_topic = topic(ctx.commune, ctx.gateway_id, "alarm")
        state_topic = topic(ctx.commune, ctx.gateway_id, "state")
        loop = asyncio.get_running_loop()
        next_state = loop.time() + self.cfg.state_interval_s
        while True:
            self._wake.clear()
            while pending := await store.unpublished():
                for cmd_id, body in pending:
                    await client.publish(ack_topic, body, qos=1)
                    await store.mark_published(cmd_id, body)
            while self.refusals:
                await client.publish(ack_topic, encode_ack(self.refusals[0]), qos=1)
                self.refusals.popleft()
            while self.alarms:
                await client.publish(alarm_topic, encode_alarm(self.alarms[0]), qos=1)
                self.alarms.popleft()
            if loop.time() >= next_state:
                await client.publish(state_topic, await self._state(ctx), qos=1, retain=True)
                next_state = loop.time() + self.cfg.state_interval_s
            self._count(client, ctx)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_state - loop.time())):
                    await self._wake.wait()

    def _count(self, client: aiomqtt.Client, ctx: AgentContext) -> None:
        """Add what the connection carried since the last count (pings included) to the usage meter."""
        uploader = ctx.services.uploader
        sock = client._client.socket()  # paho's socket (an SSLSocket over TLS): the kernel counts it
        now = tcp_count(sock) if uploader is not None and isinstance(sock, socket.socket) else None
        if now is not None and uploader is not None:
            uploader.usage.add_uplink(*now.since(self._counted), control=True)
            self._counted = now

    async def _state(self, ctx: AgentContext) -> bytes:
        journal = ctx.services.journal
        uploader = ctx.services.uploader
        backlog = oldest = None
        if journal is not None:
            stats = await journal.stats()
            backlog, oldest = stats.records, stats.oldest_ts_ms
        quality = clock_quality()
        return encode_state(State(
            ctx.gateway_id, ctx.commune, True, epoch_ms(ctx.clock.now()),
            version=software_version(),
            config_hash=self._config_hash,
            journal_backlog=backlog,
            journal_oldest_ts_ms=oldest,
            clock_synced=quality.synchronised,
            clock_max_error_ms=None if quality.max_error_ms is None else round(quality.max_error_ms),
            uplink_connected=uploader.state.connected if uploader is not None else None,
            alarms_dropped=self.alarms_dropped,
            interval_s=self.cfg.state_interval_s,
            session=self.session,
        ))


def close_socket(client: aiomqtt.Client) -> None:
    """Close what a failed attempt left open.

    aiomqtt keeps the socket of a connection that got no CONNACK (a broker that accepts and
    never answers): one descriptor lost per attempt, which a long outage would turn into fd
    exhaustion. paho's own disconnect closes it (and is a no-op when nothing is open).
    """
    client._client.disconnect()


def _ours(topic_name: str, gateway: str) -> bool:
    try:
        where = parse_topic(topic_name)
    except WireError:
        return False
    return where.kind == "cmd" and where.gateway == gateway


def _file_hash(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
