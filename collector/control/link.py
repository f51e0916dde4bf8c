"""The collector's MQTT link: presence and alarms in, commands out, acknowledgements back.

One connection with the control centre's identity (`citygate-collector`, the only one the ACL
lets publish commands) and a persistent session, so what gateways publish while the collector
restarts waits at the broker. Commands are written to the store first (the audit), then sent;
a delivery without an answer is sent again every `resend_s` until its command expires (the
gateway runs a command id once and answers a repeat with its first ack), then marked
`unanswered`. Reconnects with jittered backoff for ever, like the agent.

Nothing but a cancellation ends the link. Each message is handled on its own: one that cannot be
read or stored is refused (counted in `refused`, logged with its gateway) and the next one is
read. A database that fails for a while (SQLite locked past its busy timeout, PostgreSQL
restarting) is waited for with backoff, message by message, so nothing received is dropped. Any
other failure of the session is logged, kept in `last_error`, and the link connects again.
State messages (presence) are written together, a transaction every 50 ms (collector.presence):
a whole fleet's retained states or Wills arrive at once.

A message is acknowledged to the broker (PUBACK) once what it says is committed: the presence
flush that wrote it, the alarm or ack stored, or its refusal (paho's manual_ack; paho would
acknowledge at receipt, and what an instance killed with -9 had received but not stored was
lost). The broker sends what was not acknowledged again when the session comes back (the same
client id: this instance restarted), and what it stores twice is harmless: alarms by (gateway,
alarm id), acks only against an open delivery, a state never over a newer one (collector.presence).
The acknowledgements go in the order the messages came (MQTT 3.1.1, 4.6.0).

With a shared subscription (`share_group`) the MQTT 5 rule is that no retained message is sent
to it (Mosquitto 2.0 sends them anyway; other brokers follow the rule), so each session also
subscribes to the states without `$share` until the retained ones have stopped coming: when
every instance restarts, the presence of gateways that said nothing meanwhile is still read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import sqlite3
import ssl
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiomqtt
import asyncpg
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citygate_wire.aio import run_together
from citygate_wire.common import now_ms, nul_pointer
from citygate_wire.mqtt import (
    COLLECTOR_IDENTITY,
    Command,
    WireError,
    answer_of,
    decode_ack,
    decode_alarm,
    decode_state,
    encode_command,
    parse_topic,
    subscription,
    topic,
)
from collector.errors import StoreError
from collector.model import Gateway
from collector.presence import PresenceWriter, Statements, StateMessage, presence_statements, write_presence
from collector.store import Store

log = logging.getLogger("citygate.collector.control")
T = TypeVar("T")

DEFAULT_KEEPALIVE_S = 20
SEND_BATCH = 500
#: the retained states (read without $share) have all come once none came for this long
RETAINED_QUIET_S = 2.0
#: and the subscription without $share ends this long after it began in any case
RETAINED_MAX_S = 120.0
#: Small packets leave at once instead of waiting for the previous one's ack (Nagle), up to 40 ms a hop.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


#: PostgreSQL classes of errors that come from the data itself (22 data exception, 23 integrity,
#: 42 syntax or access): the same message fails again, so it is refused rather than retried
_PG_DATA_CLASSES = ("22", "23", "42")


def store_unavailable(exc: BaseException) -> bool:
    """Whether `exc` is the database failing for now (locked, busy, restarting, unreachable), which
    a later attempt gets past, rather than something wrong with what was written."""
    if isinstance(exc, asyncpg.PostgresError):
        return not str(getattr(exc, "sqlstate", "") or "").startswith(_PG_DATA_CLASSES)
    return isinstance(exc, sqlite3.OperationalError | asyncpg.InterfaceError | OSError | StoreError)


def _no_nul(payload: bytes) -> None:
    """WireError if a string of the JSON message holds U+0000: PostgreSQL cannot store it, so both
    stores refuse it alike. JSON writes it escaped, so a message without that escape is spared the walk."""
    if b"\\u0000" not in payload:
        return
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return  # the decoder says what is wrong with it
    pointer = nul_pointer(doc)
    if pointer is not None:
        raise WireError(pointer, "holds the character U+0000, which the store cannot keep")


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _nothing() -> None:
    pass


class _Acks:
    """The PUBACKs of one session, each sent once its message's effect is committed and in the
    order the messages came: a message done before an older one waits for it. A closed session's
    acknowledgements are not sent (the broker sends those messages again to the next session)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._paho = client._client
        self._queue: deque[list[int]] = deque()  # [mid, done]
        self.open = True
        self.sent = 0

    def take(self, message: aiomqtt.Message) -> Callable[[], None]:
        """What to call once `message` is written or refused."""
        if message.qos == 0:
            return _nothing
        entry = [message.mid, 0]
        self._queue.append(entry)

        def done() -> None:
            entry[1] = 1
            while self._queue and self._queue[0][1]:
                mid = self._queue.popleft()[0]
                if self.open:
                    self._paho.ack(mid, 1)
                    self.sent += 1
        return done

    @property
    def waiting(self) -> int:
        return len(self._queue)


@dataclass(frozen=True)
class LinkConfig:
    url: str
    password: str
    username: str = COLLECTOR_IDENTITY
    client_id: str = COLLECTOR_IDENTITY
    ca_file: Path | None = None
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    resend_s: float = 10.0
    backoff_max_s: float = 30.0
    timeout_s: float = 10.0
    #: a delivery is marked unanswered this long after its command expired: an answer sent right
    #: at the expiry still has time to arrive
    expiry_grace_s: float = 30.0
    #: first wait before a message is written again after a database failure (doubles up to backoff_max_s)
    store_retry_s: float = 0.5
    #: signs every command (gateways run nothing else); None: the API refuses to send commands
    command_key: Ed25519PrivateKey | None = None
    #: several collector instances: each message goes to one of them (`$share/<group>/...`,
    #: collector.instances); None: this one instance gets every message
    share_group: str | None = None

    def endpoint(self) -> tuple[str, int, bool]:
        """(host, port, tls) of the URL; ValueError says what is wrong with it."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{self.url!r} is not an mqtt:// or mqtts:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("give the MQTT password in a file, not in the URL")
        if self.ca_file is not None and parts.scheme != "mqtts":
            raise ValueError("a CA file only makes sense with an mqtts:// URL")
        tls = parts.scheme == "mqtts"
        return parts.hostname, parts.port or (8883 if tls else 1883), tls


class ControlLink:
    def __init__(self, store: Store, cfg: LinkConfig) -> None:
        self.store = store
        self.cfg = cfg
        self.host, self.port, self.tls = cfg.endpoint()
        self.connected = False
        self.connections = 0
        #: the latest failure of the link, kept after it recovered (the log says when): an operator
        #: sees what went wrong last, not an empty field
        self.last_error: str | None = None
        #: sessions ended by a failure other than the broker's connection (each one logged)
        self.restarts = 0
        #: database failures waited out while a message was stored
        self.store_retries = 0
        #: (kind, why) -> messages refused: why is `invalid`, `unknown-gateway` or `unstorable`
        self.refused: Counter[tuple[str, str]] = Counter()
        self._down = False
        self._kick = asyncio.Event()
        self._change = asyncio.Event()
        self._gateways: dict[str, Gateway] = {}
        #: set while this instance sends the deliveries (collector.instances: one instance at a time)
        self.sending = asyncio.Event()
        self.sending.set()
        #: called at each kick: the instance that does not send tells the one that does
        self.on_kick: Callable[[], None] | None = None
        #: state messages are written together, one transaction a flush (collector.presence)
        self.presence = PresenceWriter(self._write_presence, self._write_state, self._state_refused)
        #: messages acknowledged to the broker after their commit (the current session's count in _acks)
        self.acked = 0
        self._acks: _Acks | None = None
        #: when the latest retained message came (loop time): the reading of the retained states ends when they stop
        self._retained_at = 0.0
        #: gateways whose latest message this link handled is their Will: the state that comes next follows it
        self._after_will: set[int] = set()

    # -- what the HTTP layer uses -----------------------------------------------------------------

    def kick(self) -> None:
        """New deliveries are in the store: send them now rather than at the next resend round."""
        self._kick.set()
        if self.on_kick is not None:
            self.on_kick()

    def next_change(self) -> asyncio.Event:
        """An event set when the next ack, alarm or expiry is recorded (a fresh one after that)."""
        return self._change

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    # -- the connection ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The link for ever: only a cancellation ends it."""
        async with asyncio.TaskGroup() as tasks:
            presence = tasks.create_task(self.presence.run())
            try:
                await self._connections()
            finally:
                presence.cancel()

    async def _connections(self) -> None:
        failures = 0
        while True:
            client: aiomqtt.Client | None = None
            try:
                client = self._client()
                async with client:
                    failures = 0
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                reason = str(exc) or type(exc).__name__
                if reason != self.last_error:
                    log.warning("MQTT link to %s down: %s", self.cfg.url, reason)
                self.last_error = reason
                # aiomqtt keeps the socket of a connect that got no CONNACK: paho's disconnect closes it
                if client is not None:
                    client._client.disconnect()
            except Exception as exc:
                # a bug, an unreadable CA file, a database failure outside a message's handling: a link
                # that ended here would leave alarms unread and commands pending, so it connects again
                self.restarts += 1
                reason = _why(exc)
                if reason != self.last_error:
                    log.exception("MQTT link to %s failed (%s): connecting again", self.cfg.url, reason)
                self.last_error = reason
            finally:
                self.connected = False
                self._down = True
            failures += 1
            ceiling = min(self.cfg.backoff_max_s, 0.5 * 2 ** min(failures, 20))
            await asyncio.sleep(random.uniform(min(0.25, ceiling), ceiling))

    def _client(self) -> aiomqtt.Client:
        tls = ssl.create_default_context(cafile=str(self.cfg.ca_file) if self.cfg.ca_file else None) if self.tls \
            else None
        client = aiomqtt.Client(
            self.host, self.port, username=self.cfg.username, password=self.cfg.password,
            identifier=self.cfg.client_id, protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,  # what gateways publish while we restart waits at the broker
            keepalive=self.cfg.keepalive_s, timeout=self.cfg.timeout_s, tls_context=tls,
            # a commune-wide command is many publishes at once
            max_inflight_messages=SEND_BATCH,
            socket_options=NO_DELAY,
        )
        client.pending_calls_threshold = SEND_BATCH + 10  # those publishes are meant to be in flight together
        # PUBACK once stored (_Acks), not at receipt; set before connecting: the messages the session
        # kept for us come right after the CONNACK, before `async with client` has returned
        client._client.manual_ack_set(True)
        return client

    async def _session(self, client: aiomqtt.Client) -> None:
        # the registry in one read, before the retained states of the whole fleet arrive at once
        for info in await self._stored("the gateway registry", self.store.gateways):
            self._gateways.setdefault(info.gateway.name, info.gateway)
        for kind in ("state", "alarm", "ack"):
            wanted = subscription(kind)
            await client.subscribe(wanted if self.cfg.share_group is None else f"$share/{self.cfg.share_group}/{wanted}",
                                   qos=1)
        self.connected = True
        self.connections += 1
        if self._down:
            log.info("MQTT link to %s restored", self.cfg.url)
        self._down = False
        acks = self._acks = _Acks(client)
        loops = {"MQTT receive": self._receive(client, acks), "MQTT send": self._send(client)}
        if self.cfg.share_group is not None:
            loops["MQTT retained states"] = self._retained_states(client)
        try:
            # the link breaking under one of the loops raises its MqttError: the caller reconnects
            await run_together(loops)
        finally:
            acks.open = False
            self.acked += acks.sent

    async def _retained_states(self, client: aiomqtt.Client) -> None:
        """Every gateway's retained state, which a shared subscription does not get (MQTT 5, 4.8.2):
        subscribed without $share until they stopped coming. What also comes live meanwhile is
        stored twice, harmlessly."""
        loop = asyncio.get_running_loop()
        wanted = subscription("state")
        began = self._retained_at = loop.time()
        await client.subscribe(wanted, qos=1)
        while loop.time() - began < RETAINED_MAX_S:
            quiet = loop.time() - self._retained_at
            if quiet >= RETAINED_QUIET_S:
                break
            await asyncio.sleep(RETAINED_QUIET_S - quiet)
        await client.unsubscribe(wanted)

    async def _receive(self, client: aiomqtt.Client, acks: _Acks) -> None:
        loop = asyncio.get_running_loop()
        async for message in client.messages:
            done = acks.take(message)
            if message.retain:
                self._retained_at = loop.time()
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                await self._take(message.topic.value, bytes(payload), done)
            else:
                done()

    async def _take(self, topic_name: str, payload: bytes, done: Callable[[], None] = _nothing) -> None:
        """Handle one message in isolation: whatever is wrong with it is refused, and only it. `done`
        is called once it is stored (by the presence flush for a state) or refused."""
        kind = topic_name.rsplit("/", 1)[-1][:16]
        try:
            _no_nul(payload)
            if await self._handle(topic_name, payload, done):
                return  # the presence flush calls done
        except WireError as exc:
            self.refused[(kind, "invalid")] += 1
            log.warning("message on %s refused (%d bytes): %s", topic_name[:200], len(payload), exc)
        except Exception as exc:
            # a message the store cannot take (too deep to write back as JSON, a character PostgreSQL
            # refuses): the same message would fail again, so it is refused, not retried
            self.refused[(kind, "unstorable")] += 1
            log.error("message on %s refused (%d bytes), it cannot be stored: %s", topic_name[:200], len(payload),
                      _why(exc))
        done()

    async def _stored(self, what: str, write: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`write(*args)`, again and again with backoff while the database is unavailable: a message that
        arrives while SQLite is locked or PostgreSQL restarts is stored late, not dropped (and the
        send loop waits too, rather than ending the session and the messages received with it)."""
        delay = self.cfg.store_retry_s
        while True:
            try:
                return await write(*args)
            except Exception as exc:
                if not store_unavailable(exc):
                    raise
                self.store_retries += 1
                reason = f"store: {_why(exc)}"
                if reason != self.last_error:
                    log.warning("%s not stored yet (%s): trying again, backing off up to %g s", what, reason,
                                self.cfg.backoff_max_s)
                self.last_error = reason
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.cfg.backoff_max_s)

    async def _gateway(self, name: str) -> Gateway | None:
        gateway = self._gateways.get(name)
        if gateway is None:
            gateway = await self._stored(f"the registry entry of {name}", self.store.gateway, name)
            if gateway is not None:
                self._gateways[name] = gateway
        return gateway

    async def _handle(self, topic_name: str, payload: bytes, done: Callable[[], None] = _nothing) -> bool:
        """Store one message; True if it went to the presence writer, which calls `done` once it is written."""
        where = parse_topic(topic_name)
        gateway = await self._gateway(where.gateway)
        if gateway is None:
            self.refused[(where.kind, "unknown-gateway")] += 1
            log.warning("message on %s from a gateway the registry does not know: ignored", topic_name)
            return False
        now = now_ms()
        gid, sender = gateway.id, gateway.name
        if where.kind != "state":
            await self.presence.flush()  # what arrived first is stored first
        if where.kind == "state":
            state = decode_state(payload)
            if state.gateway != gateway.name:
                raise WireError("/gateway", f"{state.gateway!r} in a message on {gateway.name}'s topic")
            after_will = gid in self._after_will
            if state.online or state.ts_ms is not None:
                self._after_will.discard(gid)
            else:
                self._after_will.add(gid)  # a Will: offline, and no time of its own
            self.presence.add(StateMessage(gid, state.online, where.commune, payload, now, done, after_will))
            if not state.online:
                log.info("gateway %s offline (%s)", gateway.name, state.reason or "no reason given")
            return True
        elif where.kind == "alarm":
            alarm = decode_alarm(payload)
            if await self._stored(f"alarm {alarm.id} of {sender}", self.store.record_alarm, gid, alarm, now):
                log.warning("alarm from %s: %s %s on %s", gateway.name, alarm.severity, alarm.code, alarm.device)
                self._changed()
        elif where.kind == "ack":
            # a refused repeat carries the gateway's first answer: that one is the command's outcome
            ack = answer_of(decode_ack(payload))
            if await self._stored(f"ack {ack.id} of {sender}", self.store.record_ack, gid, ack, now):
                self._changed()
            else:
                log.info("ack %s from %s for no open delivery (a repeat, or not ours): ignored", ack.id, gateway.name)
        return False

    async def _write_presence(self, statements: Statements) -> None:
        await self._stored("the state messages", write_presence, self.store, statements)

    async def _write_state(self, m: StateMessage) -> None:
        # the flush's own statements (a late state never replaces a newer one), for this message alone
        await self._stored("a state message", write_presence, self.store, presence_statements([m]))

    def _state_refused(self, m: StateMessage, exc: BaseException) -> None:
        self.refused[("state", "unstorable")] += 1
        log.error("state message of gateway id %d refused (%d bytes), it cannot be stored: %s", m.gateway_id,
                  len(m.payload), _why(exc))

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self.sending.wait()
            self._kick.clear()
            now = now_ms()
            due = await self._stored("the deliveries due", self.store.due_deliveries, now,
                                     now - int(self.cfg.resend_s * 1000), SEND_BATCH)
            if due:
                # QoS 1 publishes in parallel: a commune-wide command does not wait gateway by gateway
                await asyncio.gather(*(
                    client.publish(topic(d.commune, d.gateway, "cmd"),
                                   encode_command(Command(d.command_id, d.action, d.args, d.issued_at_ms,
                                                          d.expires_at_ms, d.issued_by, d.gateway),
                                                  self.cfg.command_key), qos=1)
                    for _, d in due
                ))
                await self._stored("the deliveries sent", self.store.mark_sent,
                                   [(d.command_id, gid) for gid, d in due], now_ms())
            if await self._stored("the expiries", self.store.expire_deliveries,
                                  now - int(self.cfg.expiry_grace_s * 1000)):
                self._changed()
            if len(due) == SEND_BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.resend_s):
                    await self._kick.wait()
