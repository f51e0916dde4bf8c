"""Mosquitto run with the generated password and ACL files: a gateway can neither command another
gateway, nor read its commands, nor fake its state; only the collector's identity commands."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
import pytest
from click.testing import CliRunner, Result
from mqtt_testkit import COMMUNE, Fleet, Operator, client, wait_for

from citygate_wire.mqtt import COLLECTOR_IDENTITY, State, decode_command, decode_state, encode_state, topic
from collector.cli import main
from collector.control.acl import AclError, acl_file, gateway_name_problem, mosquitto_hash
from collector.store import open_store
from collector.tokens import hash_token, new_token
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)

REFUSED = r"[Nn]ot authori[sz]ed|[Bb]ad user"


class Listener:
    """A client that records every message it gets."""

    def __init__(self, c: aiomqtt.Client) -> None:
        self.client = c
        self.got: list[tuple[str, bytes, bool]] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listener:
        await self.client.__aenter__()
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for m in self.client.messages:
            assert isinstance(m.payload, bytes)
            self.got.append((m.topic.value, m.payload, m.retain))


def gw(broker: Mosquitto, fleet: Fleet, name: str, password: str | None = None) -> aiomqtt.Client:
    return client(broker, name, password or fleet.gateways[name], identifier=f"{name}-{uuid.uuid4().hex[:6]}")


async def test_a_gateway_cannot_command_another_gateway_nor_itself(broker: Mosquitto, fleet: Fleet) -> None:
    async with Listener(gw(broker, fleet, "gw-a")) as a, gw(broker, fleet, "gw-b") as b, \
            Operator(broker, fleet) as op:
        await a.client.subscribe("city/+/gw-a/cmd", qos=1)
        forged = b'{"v":1,"id":"forged-by-b","action":"device.read","args":{"device":"x"},' \
                 b'"issued_at_ms":1764547200000,"expires_at_ms":1764547260000,"issued_by":"gw-b"}'
        await b.publish(topic(COMMUNE, "gw-a", "cmd"), forged, qos=1)
        await a.client.publish(topic(COMMUNE, "gw-a", "cmd"), forged.replace(b"gw-b", b"gw-a"), qos=1)
        # the control centre's command, sent after both forgeries were taken by the broker, arrives alone
        real = await op.send("gw-a", "device.read", {"device": "x"})
        await wait_for(lambda: len(a.got) >= 1, 20, "the collector's command")
        await asyncio.sleep(0.3)
    assert [decode_command(p).id for _, p, _ in a.got] == [real]


async def test_a_gateway_cannot_read_another_gateways_commands(broker: Mosquitto, fleet: Fleet) -> None:
    async with Listener(gw(broker, fleet, "gw-a")) as a, Listener(gw(broker, fleet, "gw-b")) as b, \
            Operator(broker, fleet) as op:
        await a.client.subscribe("city/+/gw-a/cmd", qos=1)
        for pattern in ("city/+/gw-a/cmd", f"city/{COMMUNE}/+/cmd", "city/#", "#"):
            await b.client.subscribe(pattern, qos=1)
        cmd = await op.send("gw-a", "device.read", {"device": "x"})
        await wait_for(lambda: len(a.got) == 1, 20, "gw-a's own command")
        await asyncio.sleep(0.3)
    assert decode_command(a.got[0][1]).id == cmd
    assert b.got == []


async def test_a_gateway_cannot_fake_another_gateways_state_live_or_retained(broker: Mosquitto, fleet: Fleet) -> None:
    async with Operator(broker, fleet) as op, gw(broker, fleet, "gw-a") as a, gw(broker, fleet, "gw-b") as b:
        real = encode_state(State("gw-a", COMMUNE, True, 1_764_547_200_000, version="real"))
        fake = encode_state(State("gw-a", COMMUNE, False, 1_764_547_201_000, reason="faked by gw-b"))
        await a.publish(topic(COMMUNE, "gw-a", "state"), real, qos=1, retain=True)
        await wait_for(lambda: op.last_state("gw-a") is not None, 20, "gw-a's real state")
        await b.publish(topic(COMMUNE, "gw-a", "state"), fake, qos=1, retain=True)
        await b.publish(topic("21452", "gw-a", "state"), fake, qos=1, retain=True)
        await b.publish(topic(COMMUNE, "gw-b", "state"), encode_state(State("gw-b", COMMUNE, True, version="b")),
                        qos=1, retain=True)
        await wait_for(lambda: op.last_state("gw-b") is not None, 20, "gw-b's own state")
    assert [s.version for g, s, _ in op.states if g == "gw-a"] == ["real"]
    # and a late subscriber finds only gw-a's own retained state
    async with Listener(client(broker, COLLECTOR_IDENTITY, fleet.collector_password)) as late:
        await late.client.subscribe("city/+/gw-a/state", qos=1)
        await wait_for(lambda: len(late.got) == 1, 20, "the retained state")
        await asyncio.sleep(0.3)
    assert [decode_state(p).version for _, p, _ in late.got] == ["real"]


async def test_only_the_own_token_opens_a_gateways_identity(broker: Mosquitto, fleet: Fleet) -> None:
    with pytest.raises(aiomqtt.MqttCodeError, match=REFUSED):
        async with gw(broker, fleet, "gw-a", password=fleet.gateways["gw-b"]):
            pass
    with pytest.raises(aiomqtt.MqttCodeError, match=REFUSED):
        async with aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V311):
            pass
    with pytest.raises(aiomqtt.MqttCodeError, match=REFUSED):
        async with client(broker, COLLECTOR_IDENTITY, fleet.gateways["gw-a"]):
            pass
    async with gw(broker, fleet, "gw-a"):
        pass


async def test_a_gateway_reads_its_commands_whatever_the_commune_level(broker: Mosquitto, fleet: Fleet) -> None:
    # a gateway installed before the Neuilly-Crimolois merger may still say 21213: its name is what counts
    async with Listener(gw(broker, fleet, "gw-a")) as a, Operator(broker, fleet) as op:
        await a.client.subscribe("city/+/gw-a/cmd", qos=1)
        await op.send("gw-a", "device.read", {"device": "x"}, commune="21213")
        await wait_for(lambda: len(a.got) == 1, 20, "the command")


# -- the registry's files: revocation, names, folders (citygate-collector mqtt-acl) ---------------


async def cli(*args: str, ok: bool = True) -> Result:
    """`citygate-collector ARGS` in-process (a thread: the commands run their own event loop)."""
    done = await asyncio.to_thread(CliRunner().invoke, main, list(args))
    assert (done.exit_code == 0) == ok, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    return done


async def logs_in(broker: Mosquitto, name: str, token: str) -> bool:
    try:
        async with client(broker, name, token, identifier=f"{name}-{uuid.uuid4().hex[:6]}"):
            return True
    except aiomqtt.MqttCodeError:
        return False


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_removed_or_rotated_gateway_token_no_longer_opens_the_broker_after_mqtt_acl(
        tmp_path: Path, db_url: str) -> None:
    tokens = {}
    for name in ("gw-a", "gw-b"):
        await cli("gateway", "add", name, "--commune", COMMUNE, "--db", db_url, "--token-file", str(tmp_path / name))
        tokens[name] = (tmp_path / name).read_text().strip()
    acl = ["mqtt-acl", "--out", str(tmp_path / "acl"), "--collector-password-file", str(tmp_path / "pw"),
           "--db", db_url]
    await cli(*acl)
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "acl" / "passwd",
                       acl_file=tmp_path / "acl" / "acl")
    broker.start()
    try:
        assert broker.popen is not None
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{broker.popen.pid}\n")
        assert await logs_in(broker, "gw-a", tokens["gw-a"]) and await logs_in(broker, "gw-b", tokens["gw-b"])
        async with client(broker, "gw-a", tokens["gw-a"], identifier="gw-a-connected") as connected:
            await cli("gateway", "remove", "gw-a", "--db", db_url)
            await cli("gateway", "rotate", "gw-b", "--db", db_url, "--token-file", str(tmp_path / "gw-b.new"))
            out = (await cli(*acl, "--reload-pid-file", str(pid_file))).output
            assert "3 identities" not in out and "(1 gateways)" in out, out

            async def revoked() -> bool:
                return not await logs_in(broker, "gw-a", tokens["gw-a"])

            await until(revoked, "the broker to refuse gw-a's token")
            # the broker also drops the connection it already had, whose password is no longer valid
            with pytest.raises(aiomqtt.MqttError):
                for _ in range(100):
                    await connected.publish(topic(COMMUNE, "gw-a", "state"), b"{}", qos=1, timeout=2)
                    await asyncio.sleep(0.1)
        assert not await logs_in(broker, "gw-b", tokens["gw-b"])
        assert await logs_in(broker, "gw-b", (tmp_path / "gw-b.new").read_text().strip())
    finally:
        broker.kill()


async def test_mqtt_acl_leaves_out_a_bad_legacy_name_with_a_warning_and_writes_the_rest(
        tmp_path: Path, db_url: str) -> None:
    async with open_store(db_url) as store:  # registered before `gateway add` checked names
        for name in ("gw-a", "gw b/legacy", "citygate-collector"):
            token = new_token()
            added = await store.add_gateway(name, COMMUNE, hash_token(token))
            await store.set_mqtt_password(added.id, mosquitto_hash(token), 0)
    done = await cli("mqtt-acl", "--out", str(tmp_path / "acl"), "--collector-password-file", str(tmp_path / "pw"),
                     "--db", db_url)
    assert "'gw b/legacy' left out" in done.output and "'citygate-collector' left out" in done.output
    assert "(2 identities)" in done.output and "(1 gateways)" in done.output
    passwd = (tmp_path / "acl" / "passwd").read_text()
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["citygate-collector", "gw-a"]
    assert "user gw-a" in (tmp_path / "acl" / "acl").read_text()


async def test_mqtt_acl_creates_the_folders_it_writes_to(tmp_path: Path, db_url: str) -> None:
    pw = tmp_path / "secrets" / "mqtt" / "collector-pw"
    out = tmp_path / "broker" / "acl"
    await cli("mqtt-acl", "--out", str(out), "--collector-password-file", str(pw), "--db", db_url)
    assert pw.stat().st_mode & 0o777 == 0o600 and len(pw.read_text().strip()) >= 32
    assert (out / "passwd").read_text().startswith("citygate-collector:$7$")
    # a folder it may not create is a clear error, not a traceback
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = await cli("mqtt-acl", "--out", str(tmp_path / "o2"), "--collector-password-file",
                     str(blocker / "pw"), "--db", db_url, ok=False)
    assert done.exit_code == 1 and "cannot write" in done.output


@pytest.mark.parametrize("name", ["", "gw/a", "gw+", "gw#", "gw a", "gw\ta", "gw-a\n", "gw\x00", "g" * 65,
                                  "citygate-collector", ".gw"])
def test_one_name_rule_refuses_every_kind_of_bad_name(name: str) -> None:
    problem = gateway_name_problem(name)
    assert problem is not None
    with pytest.raises(AclError, match="gateway"):
        acl_file([name])


def test_the_name_rule_takes_good_names() -> None:
    for name in ("gw-a", "GW_01.dijon", "g" * 64, "0gw"):
        assert gateway_name_problem(name) is None
    assert "user gw-a" in acl_file(["gw-a"])
