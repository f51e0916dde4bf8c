"""The control centre end to end: registry -> `mqtt-acl` -> a real Mosquitto -> collector link and
operator API <-> running agents. Presence, alarms handled by named operators, commands to one
gateway or a commune followed to their acks, every one audited; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mqtt_testkit import Fleet, bus, client, running_agent, wait_for

from citygate_wire.mqtt import Ack, encode_ack, public_key_text, replay_ack, topic
from collector.app import create_app, start
from collector.cli import main
from collector.control.keys import load_key
from collector.control.link import ControlLink, LinkConfig
from collector.control.routes import attach_link
from collector.store import Store, open_store
from drivers.model import Event, Severity
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(180)



async def cli(*args: str) -> str:
    """`citygate-collector ARGS` in-process (a thread: the commands run their own event loop)."""
    done = await asyncio.to_thread(CliRunner().invoke, main, list(args))
    assert done.exit_code == 0, done.output
    return done.output


@dataclass
class Centre:
    url: str
    http: aiohttp.ClientSession
    operator_token: str
    fleet: Fleet
    broker: Mosquitto
    store: Store
    link: ControlLink

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.operator_token}"}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def centre(tmp_path: Path, db_url: str) -> AsyncIterator[Centre]:
    fleet = Fleet(tmp_path / "acl")
    for name, commune in (("gw-a", "21231"), ("gw-b", "21231"), ("gw-q", "21515")):
        token_file = tmp_path / f"{name}.token"
        await cli("gateway", "add", name, "--commune", commune, "--db", db_url, "--token-file", str(token_file))
        fleet.gateways[name] = token_file.read_text().strip()
    await cli("operator", "add", "alice", "--db", db_url, "--token-file", str(tmp_path / "alice"))
    out = await cli("mqtt-acl", "--out", str(tmp_path / "acl"), "--collector-password-file", str(tmp_path / "collector-pw"),
              "--db", db_url)
    assert "4 identities" in out and "3 gateways" in out
    fleet.collector_password = (tmp_path / "collector-pw").read_text().strip()
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "acl" / "passwd", acl_file=tmp_path / "acl" / "acl")
    broker.start()
    try:
        async with open_store(db_url) as store:
            app = create_app(store)
            link = attach_link(app, LinkConfig(broker.url, fleet.collector_password, resend_s=1.0, keepalive_s=5,
                                               expiry_grace_s=0.5, command_key=fleet.command_key))
            runner, url = await start(app, "127.0.0.1", 0)
            try:
                await wait_for(lambda: link.connected, 30, "the collector's MQTT link")
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as http:
                    yield Centre(url, http, (tmp_path / "alice").read_text().strip(), fleet, broker, store, link)
            finally:
                await runner.cleanup()
    finally:
        broker.kill()


async def presence(c: Centre) -> dict[str, Any]:
    status, doc = await c.call("GET", "/api/v1/control/presence")
    assert status == 200, doc
    return {g["gateway"]: g for g in doc["gateways"]}


async def wait_presence(c: Centre, gateway: str, online: bool | None) -> dict[str, Any]:
    for _ in range(300):
        row = (await presence(c))[gateway]
        if row["online"] is online:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"{gateway} never became online={online}: {row}")


async def test_presence_commands_to_a_gateway_and_a_commune_with_their_acks_and_the_audit(
    tmp_path: Path, centre: Centre
) -> None:
    c = centre
    assert (await presence(c))["gw-a"]["online"] is None  # registered, never heard of
    async with running_agent(tmp_path, c.fleet, c.broker, "gw-a"), running_agent(tmp_path, c.fleet, c.broker, "gw-b"):
        row = await wait_presence(c, "gw-a", True)
        assert row["commune"] == "21231" and row["state"]["version"] and not row["stale"]

        status, sent = await c.call("POST", "/api/v1/control/commands",
                                    {"gateway": "gw-a", "action": "device.read", "args": {"device": "meter-1"}})
        assert status == 202 and sent["issued_by"] == "alice" and sent["target"] == "gateway:gw-a"
        status, done = await c.call("GET", f"/api/v1/control/commands/{sent['id']}?wait_s=20")
        assert status == 200 and done["final"], done
        [delivery] = done["deliveries"]
        assert delivery["status"] == "done" and delivery["result"]["values"] == {"temperature_c": 21.5}

        status, wide = await c.call("POST", "/api/v1/control/commands",
                                    {"commune": "21231", "action": "agent.set_log_level",
                                     "args": {"level": "debug", "logger": "citygate.test-commune"}, "valid_s": 30})
        assert status == 202 and wide["target"] == "commune:21231"
        status, wide_done = await c.call("GET", f"/api/v1/control/commands/{wide['id']}?wait_s=20")
        assert {d["gateway"]: d["status"] for d in wide_done["deliveries"]} == {"gw-a": "done", "gw-b": "done"}

    row = await wait_presence(c, "gw-a", False)
    assert row["state"]["reason"] == "agent stopped"
    status, audit = await c.call("GET", "/api/v1/control/commands")
    assert [(a["action"], a["issued_by"], a["counts"]) for a in audit["commands"]] == [
        ("agent.set_log_level", "alice", {"done": 2}), ("device.read", "alice", {"done": 1})]


async def test_a_gateway_that_does_not_hold_the_collectors_key_refuses_and_the_audit_says_why(
    tmp_path: Path, centre: Centre
) -> None:
    c = centre
    stranger = public_key_text(Ed25519PrivateKey.generate().public_key())
    async with running_agent(tmp_path, c.fleet, c.broker, "gw-a", mqtt={"command_key": stranger}) as agent:
        status, sent = await c.call("POST", "/api/v1/control/commands",
                                    {"gateway": "gw-a", "action": "device.read", "args": {"device": "meter-1"}})
        assert status == 202
        status, done = await c.call("GET", f"/api/v1/control/commands/{sent['id']}?wait_s=20")
    [delivery] = done["deliveries"]
    assert (delivery["status"], delivery["code"]) == ("refused", "forged"), delivery
    assert "signature does not match" in delivery["reason"]
    assert bus(agent).reads == []


async def test_a_replay_answer_gives_the_audit_the_gateways_first_answer_it_had_lost(centre: Centre) -> None:
    c = centre
    status, sent = await c.call("POST", "/api/v1/control/commands",
                                {"gateway": "gw-a", "action": "device.read", "args": {"device": "meter-1"}})
    assert status == 202
    # gw-a ran it, but its first ack never reached the collector; the resent copy is refused as a replay
    first = Ack(sent["id"], "done", sent["issued_at_ms"] + 5, result={"values": {"temperature_c": 21.5}})
    async with client(c.broker, "gw-a", c.fleet.gateways["gw-a"]) as gw:
        await gw.publish(topic("21231", "gw-a", "ack"), encode_ack(replay_ack(first, first.ts_ms, first.ts_ms + 9)),
                         qos=1)
    status, doc = await c.call("GET", f"/api/v1/control/commands/{sent['id']}?wait_s=20")
    [delivery] = doc["deliveries"]
    assert (delivery["status"], delivery["result"]) == ("done", {"values": {"temperature_c": 21.5}}), delivery


async def test_a_collector_without_a_signing_key_sends_no_command(tmp_path: Path, centre: Centre) -> None:
    app = create_app(centre.store)
    attach_link(app, LinkConfig(centre.broker.url, centre.fleet.collector_password, client_id="citygate-collector-nokey"))
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with centre.http.post(url + "/api/v1/control/commands",
                                    headers={"Authorization": f"Bearer {centre.operator_token}"},
                                    json={"gateway": "gw-a", "action": "device.read", "args": {"device": "x"}}) as r:
            status, doc = r.status, await r.json()
    finally:
        await runner.cleanup()
    assert status == 503 and "signing key" in doc["detail"], doc


async def open_alarms(c: Centre) -> dict[str, Any]:
    """The open alarms once there are some (up to 20 s)."""
    for _ in range(200):
        status, doc = await c.call("GET", "/api/v1/control/alarms?status=open")
        assert status == 200, doc
        if doc["alarms"]:
            return dict(doc)
        await asyncio.sleep(0.1)
    raise AssertionError("no open alarm within 20 s")


async def test_alarms_are_logged_and_handled_by_named_operators(tmp_path: Path, centre: Centre) -> None:
    c = centre
    async with running_agent(tmp_path, c.fleet, c.broker, "gw-a") as agent:
        agent.emit(Event("tl-1", 1_768_496_400_000, "conflict", Severity.CRITICAL, {"groups": [1, 3]}))
        doc = await open_alarms(c)
    [alarm] = doc["alarms"]
    assert (alarm["gateway"], alarm["device"], alarm["code"], alarm["severity"]) == ("gw-a", "tl-1", "conflict",
                                                                                     "critical")
    status, acked = await c.call("POST", f"/api/v1/control/alarms/{alarm['id']}/acknowledge", {"note": "crew sent"})
    assert status == 200 and acked["status"] == "acknowledged" and acked["acknowledged_by"] == "alice"
    status, again = await c.call("POST", f"/api/v1/control/alarms/{alarm['id']}/acknowledge")
    assert status == 409 and again["status_now"] == "acknowledged"
    status, cleared = await c.call("POST", f"/api/v1/control/alarms/{alarm['id']}/clear")
    assert status == 200 and cleared["cleared_by"] == "alice" and cleared["note"] == "crew sent"
    status, open_now = await c.call("GET", "/api/v1/control/alarms?status=open")
    assert open_now["alarms"] == []


async def test_a_command_for_a_gateway_that_is_down_reaches_it_when_it_comes_back_before_expiry(
    tmp_path: Path, centre: Centre
) -> None:
    c = centre
    status, sent = await c.call("POST", "/api/v1/control/commands",
                                {"gateway": "gw-b", "action": "device.read", "args": {"device": "lamp-1"},
                                 "valid_s": 60})
    assert status == 202
    await asyncio.sleep(2.5)  # resent every second meanwhile, to nobody
    async with running_agent(tmp_path, c.fleet, c.broker, "gw-b"):
        status, done = await c.call("GET", f"/api/v1/control/commands/{sent['id']}?wait_s=20")
    [delivery] = done["deliveries"]
    assert delivery["status"] == "done" and delivery["sends"] >= 3


async def test_an_expired_command_nobody_answered_is_marked_unanswered(tmp_path: Path, centre: Centre) -> None:
    c = centre
    status, sent = await c.call("POST", "/api/v1/control/commands",
                                {"gateway": "gw-q", "action": "agent.set_log_level", "args": {"level": "info"},
                                 "valid_s": 1})
    assert status == 202
    status, doc = await c.call("GET", f"/api/v1/control/commands/{sent['id']}?wait_s=20")
    assert doc["final"] and doc["deliveries"][0]["status"] == "unanswered"


@pytest.mark.parametrize(("body", "status", "kind", "pointer"), [
    ({"gateway": "gw-zz", "action": "device.read", "args": {"device": "x"}}, 404, "unknown-gateway", "/gateway"),
    ({"commune": "99999", "action": "device.read", "args": {"device": "x"}}, 404, "unknown-commune", "/commune"),
    ({"commune": "21166", "action": "device.read", "args": {"device": "x"}}, 404, "no-gateway", "/commune"),
    ({"gateway": "gw-a", "action": "lighting.override", "args": {"lamp": "l1", "level_pct": 101,
                                                                  "until_ms": 4_000_000_000_000}},
     400, "invalid-command", "/args/level_pct"),
    ({"gateway": "gw-a", "action": "reboot", "args": {}}, 400, "invalid-command", "/action"),
    ({"gateway": "gw-a", "commune": "21231", "action": "device.read", "args": {"device": "x"}}, 400,
     "invalid-command", ""),
    ({"gateway": "gw-a", "action": "device.read", "args": {"device": "x"}, "valid_s": 10**9}, 400,
     "invalid-command", "/valid_s"),
])
async def test_bad_commands_are_refused_with_the_problem_and_its_pointer(
    centre: Centre, body: dict[str, Any], status: int, kind: str, pointer: str
) -> None:
    got, doc = await centre.call("POST", "/api/v1/control/commands", body)
    assert got == status and doc["type"].endswith(kind) and doc.get("pointer") == pointer, doc
    _, audit = await centre.call("GET", "/api/v1/control/commands")
    assert audit["commands"] == []  # nothing refused was audited as sent


async def test_the_control_api_wants_an_operator_token(centre: Centre) -> None:
    for token in ("nope", centre.fleet.gateways["gw-a"]):
        status, doc = await centre.call("GET", "/api/v1/control/presence", token=token)
        assert status == 401 and doc["type"].endswith("unauthorized")
    async with centre.http.get(centre.url + "/api/v1/control/alarms") as resp:
        assert resp.status == 401 and "Bearer" in resp.headers["WWW-Authenticate"]


async def test_without_a_broker_configured_commands_are_refused_503(tmp_path: Path, db_url: str) -> None:
    await cli("operator", "add", "bob", "--db", db_url, "--token-file", str(tmp_path / "bob"))
    await cli("gateway", "add", "gw-a", "--commune", "21231", "--db", db_url, "--token-file", str(tmp_path / "gw-a.token"))
    async with open_store(db_url) as store:
        runner, url = await start(create_app(store), "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as http:
                headers = {"Authorization": f"Bearer {(tmp_path / 'bob').read_text().strip()}"}
                async with http.post(url + "/api/v1/control/commands", headers=headers,
                                     json={"gateway": "gw-a", "action": "device.read",
                                           "args": {"device": "x"}}) as resp:
                    doc = await resp.json(content_type=None)
                    assert resp.status == 503 and doc["type"].endswith("control-unavailable")
        finally:
            await runner.cleanup()


async def test_serve_with_mqtt_options_runs_the_link_in_the_collector_process(tmp_path: Path) -> None:
    from simulators.procs import start_collector

    db = str(tmp_path / "collector.db")
    await cli("gateway", "add", "gw-a", "--commune", "21231", "--db", db, "--token-file", str(tmp_path / "gw-a.token"))
    await cli("operator", "add", "alice", "--db", db, "--token-file", str(tmp_path / "alice"))
    await cli("mqtt-acl", "--out", str(tmp_path / "acl"), "--collector-password-file", str(tmp_path / "pw"), "--db", db)
    fleet = Fleet(tmp_path / "acl", {"gw-a": (tmp_path / "gw-a.token").read_text().strip()},
                  (tmp_path / "pw").read_text().strip())
    # the key as an operator makes it: the collector's CLI writes it, the gateway's config gets the public half
    printed = await cli("command-key", "init", "--key-file", str(tmp_path / "command.key"))
    fleet.command_key = load_key(tmp_path / "command.key")
    assert f'command_key = "{fleet.public_key}"' in printed
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "acl" / "passwd", acl_file=tmp_path / "acl" / "acl")
    broker.start()
    proc = None
    try:
        proc, url = await asyncio.to_thread(
            start_collector, db, extra=["--mqtt-url", broker.url, "--mqtt-password-file", str(tmp_path / "pw"),
                                        "--mqtt-client-id", "citygate-collector-1",
                                        "--command-key-file", str(tmp_path / "command.key")])
        headers = {"Authorization": f"Bearer {(tmp_path / 'alice').read_text().strip()}"}
        async with running_agent(tmp_path, fleet, broker, "gw-a"), aiohttp.ClientSession(headers=headers) as http:
            async with http.post(url + "/api/v1/control/commands",
                                 json={"gateway": "gw-a", "action": "device.read", "args": {"device": "meter-1"}}) as r:
                sent = await r.json()
            async with http.get(url + f"/api/v1/control/commands/{sent['id']}?wait_s=20") as r:
                done = await r.json()
            async with http.get(url + "/api/v1/control/presence") as r:
                seen = await r.json()
    finally:
        if proc is not None:
            proc.stop()
        broker.kill()
    assert done["deliveries"][0]["status"] == "done"
    assert seen["link"]["connected"] and seen["gateways"][0]["online"]


async def test_a_gateway_added_while_the_broker_runs_logs_in_after_mqtt_acl_reloads_it(tmp_path: Path) -> None:
    db = str(tmp_path / "collector.db")
    acl = ["mqtt-acl", "--out", str(tmp_path / "acl"), "--collector-password-file", str(tmp_path / "pw"), "--db", db]
    await cli(*acl)  # an empty registry: only the collector may log in
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "acl" / "passwd", acl_file=tmp_path / "acl" / "acl")
    broker.start()
    try:
        assert broker.popen is not None
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{broker.popen.pid}\n")
        await cli("gateway", "add", "gw-new", "--commune", "21231", "--db", db, "--token-file", str(tmp_path / "t"))
        token = (tmp_path / "t").read_text().strip()
        with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user"):
            async with client(broker, "gw-new", token):
                pass
        out = await cli(*acl, "--reload-pid-file", str(pid_file))
        assert f"Mosquitto (pid {broker.popen.pid}) reloads them" in out

        async def logs_in() -> None:
            for _ in range(100):
                try:
                    async with client(broker, "gw-new", token) as c:
                        await c.publish(topic("21231", "gw-new", "state"), b"{}", qos=1)
                        return
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.05)
            raise AssertionError("gw-new still cannot log in after the reload")

        await logs_in()
        # a stale pid file is a clear error, the files being written all the same
        ended = subprocess.Popen(["true"])  # a process that has ended and been reaped: its pid is free
        ended.wait()
        pid_file.write_text(f"{ended.pid}\n")
        done = await asyncio.to_thread(CliRunner().invoke, main, [*acl, "--reload-pid-file", str(pid_file)])
        assert done.exit_code == 1
        assert "Mosquitto was not told to reload them" in done.output and "no process" in done.output
    finally:
        broker.kill()


async def test_two_collector_instances_with_their_own_client_ids_share_one_broker(
    tmp_path: Path, centre: Centre
) -> None:
    c = centre
    # a second instance on the same registry, as a second server behind the load balancer would run
    app = create_app(c.store)
    second = attach_link(app, LinkConfig(c.broker.url, c.fleet.collector_password, client_id="citygate-collector-b",
                                         resend_s=1.0, keepalive_s=5, expiry_grace_s=0.5,
                                         command_key=c.fleet.command_key))
    runner, _ = await start(app, "127.0.0.1", 0)
    try:
        await wait_for(lambda: second.connected, 30, "the second instance's MQTT link")
        await asyncio.sleep(1.0)
        # the broker keeps both sessions: neither took the other's over
        assert c.link.connected and second.connected and (c.link.connections, second.connections) == (1, 1)
        async with running_agent(tmp_path, c.fleet, c.broker, "gw-a") as agent:
            await wait_presence(c, "gw-a", True)
            status, sent = await c.call("POST", "/api/v1/control/commands",
                                        {"gateway": "gw-a", "action": "device.read", "args": {"device": "meter-1"}})
            assert status == 202
            status, done = await c.call("GET", f"/api/v1/control/commands/{sent['id']}?wait_s=20")
            assert status == 200 and done["final"], done
            assert [d["status"] for d in done["deliveries"]] == ["done"]  # one delivery, answered once
            agent.emit(Event("tl-1", 1_768_496_400_000, "conflict", Severity.CRITICAL, {"groups": [1, 3]}))
            await open_alarms(c)
            await asyncio.sleep(0.5)  # both instances have had the alarm by now
        _, doc = await c.call("GET", "/api/v1/control/alarms?status=open")
        assert [a["code"] for a in doc["alarms"]] == ["conflict"]  # received twice, logged once
        assert (c.link.connections, second.connections) == (1, 1)
    finally:
        await runner.cleanup()
