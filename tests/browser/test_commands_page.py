"""Commands from the control-centre page, in Chromium against a real collector with its MQTT link, a real
Mosquitto and a real agent whose lamps are the lamp simulator: an operator dims a lamp from the page,
confirms what will change, and sees the ack arrive live (pending -> acknowledged), the lamp at its level;
the recent commands list it. A viewer sees no command control. fr and en; no sideways scrolling on a
phone; axe-core finds nothing serious. Screenshots at the three sizes go to test-artifacts/."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
import pytest_asyncio
from browser_kit import REPO, SIZES, errors, login, no_horizontal_scroll
from click.testing import CliRunner
from playwright.async_api import Page, expect

from citygate_wire.batch import PATH
from collector.app import create_app, start
from collector.cli import main
from collector.control.link import LinkConfig
from collector.control.routes import attach_link
from collector.store import open_store
from collector.tokens import hash_token
from drivers.traffic.registers import Mode
from simulators.lamps import LampSimulator
from simulators.mosquitto import Mosquitto

sys.path.insert(0, str(REPO / "tests" / "control"))
from mqtt_testkit import LAMP_MAP, Fleet, lamp_street, running_agent, signal_controller, signals_bus, wait_for

LEVEL_CMD = 0  # level_cmd_pct in the LC100 map


@dataclass
class Street:
    url: str
    tokens: dict[str, str]  # rank -> operator token
    fleet: Fleet
    broker: Mosquitto


def cli(*args: str) -> str:
    done = CliRunner().invoke(main, list(args))
    assert done.exit_code == 0, done.output
    return done.output


@asynccontextmanager
async def centre(tmp_path: Path) -> AsyncIterator[Street]:
    """A collector (`--operator-login`, its MQTT link, gateway gw-a), a broker, an operator of each rank."""
    db = str(tmp_path / "collector.db")
    fleet = Fleet(tmp_path / "acl")
    await asyncio.to_thread(cli, "gateway", "add", "gw-a", "--commune", "21231", "--cabinet", "C-1", "--lat", "47.32",
                            "--lon", "5.04", "--db", db, "--token-file", str(tmp_path / "gw-a.token"))
    fleet.gateways["gw-a"] = (tmp_path / "gw-a.token").read_text().strip()
    await asyncio.to_thread(cli, "mqtt-acl", "--out", str(tmp_path / "acl"), "--collector-password-file",
                            str(tmp_path / "pw"), "--db", db)
    fleet.collector_password = (tmp_path / "pw").read_text().strip()
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "acl" / "passwd", acl_file=tmp_path / "acl" / "acl")
    broker.start()
    try:
        async with open_store(db) as store:
            tokens = {}
            for rank in ("viewer", "operator", "supervisor"):
                tokens[rank] = "cop_" + secrets.token_urlsafe(24)
                await store.add_operator(f"op-{rank}", hash_token(tokens[rank]), time.time_ns() // 1_000_000)
                await store.set_operator_roles(f"op-{rank}", frozenset({rank}), "test", time.time_ns() // 1_000_000)
            app = create_app(store, operator_login=True)
            link = attach_link(app, LinkConfig(broker.url, fleet.collector_password, resend_s=1.0, keepalive_s=5,
                                               command_key=fleet.command_key))
            runner, url = await start(app, "127.0.0.1", 0)
            try:
                await wait_for(lambda: link.connected, 30, "the collector's MQTT link")
                yield Street(url, tokens, fleet, broker)
            finally:
                await runner.cleanup()
    finally:
        broker.kill()


@pytest_asyncio.fixture(loop_scope="session")
async def street(tmp_path: Path) -> AsyncIterator[tuple[Street, LampSimulator]]:
    """The centre, and gw-a's agent lighting lamps 7 and 8 (the lamp simulator)."""
    async with centre(tmp_path) as desk, LampSimulator([7, 8], LAMP_MAP) as lamps:
        port = await lamps.serve_tcp()
        async with running_agent(tmp_path, desk.fleet, desk.broker, **lamp_street(port)):
            yield desk, lamps


async def open_commands(page: Page, url: str) -> None:
    """#/commands, loaded as such (not reached from the overview the login lands on)."""
    await page.goto("about:blank")
    await page.goto(url + "/control/#/commands")


async def lighting_panel(page: Page, url: str) -> None:
    await open_commands(page, url)
    await page.fill("#cmd-gateway", "gw-a")
    await page.fill("#cmd-name", "lamp-7")


async def test_an_operator_dims_a_lamp_from_the_page_and_sees_it_acknowledged(street, new_page, shot, axe_check) -> None:  # type: ignore[no-untyped-def]
    street, lamps = street
    page = await new_page(1366, 768)
    await login(page, street.url, street.tokens["operator"])
    await lighting_panel(page, street.url)
    await page.get_by_role("button", name="Graduer…").click()
    dialog = page.locator("dialog.cg-dialog")
    await dialog.locator("input[type=range]").fill("30")
    await expect(dialog.locator(".cmd-summary")).to_contain_text("Lampe lamp-7 (armoire gw-a) : niveau 30 %")
    await expect(dialog.locator(".cmd-summary")).to_contain_text("jusqu'au")
    await shot(page, "confirm")
    await axe_check(page)
    await dialog.locator("button[type=submit]").click()

    item = page.locator("#cmd-tray .cmd-item").first
    await expect(item).to_contain_text("lamp-7 à 30 %")
    await expect(item).to_have_attribute("data-state", "acked")  # pending, then the gateway's ack, live
    await expect(item.locator(".pill")).to_have_text("acquittée")
    await expect(item).not_to_contain_text("null")
    await wait_for(lambda: lamps.register_image(7)[LEVEL_CMD] == 30, 20, "lamp 7 at 30 %")
    row = page.locator("table.cmd-table tbody tr").first  # the recent commands, told by the stream
    await expect(row).to_contain_text("op-operator")
    await expect(row).to_contain_text("acquittée")
    await shot(page, "acknowledged")
    await axe_check(page)

    # the same in English; and back to the program
    await page.click("#lang button[data-lang=en]")
    await page.fill("#cmd-gateway", "gw-a")
    await page.fill("#cmd-name", "lamp-7")
    await page.get_by_role("button", name="Back to program").click()
    await expect(page.locator("dialog.cg-dialog")).to_contain_text("Lamp lamp-7 (cabinet gw-a): the override ends")
    await page.locator("dialog.cg-dialog button[type=submit]").click()
    await expect(page.locator("#cmd-tray .cmd-item").first).to_contain_text("back to program")
    await expect(page.locator("#cmd-tray .cmd-item").first).to_have_attribute("data-state", "acked")
    assert not errors(page), errors(page)


async def test_a_viewer_has_no_command_control(street, new_page) -> None:  # type: ignore[no-untyped-def]
    street, _ = street
    page = await new_page(1366, 768)
    await login(page, street.url, street.tokens["viewer"])
    await open_commands(page, street.url)
    await expect(page.locator(".card").first).to_contain_text("lecture seule")
    await expect(page.locator("#cmd-gateway")).to_have_count(0)
    assert await page.evaluate("CG.commands.can('dim') || CG.commands.can('junctionMode')") is False
    assert not errors(page), errors(page)


@pytest.mark.parametrize(("width", "height"), SIZES)
async def test_the_commands_view_at_each_size(street, new_page, shot, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    street, _ = street
    page = await new_page(width, height)
    await login(page, street.url, street.tokens["operator"])
    await lighting_panel(page, street.url)
    await expect(page.get_by_role("button", name="Graduer…")).to_be_visible()
    await expect(page.locator("table.cmd-table").first).to_be_visible()
    await no_horizontal_scroll(page)
    await shot(page, "commands")
    await page.get_by_role("button", name="Forcer…").click()
    await expect(page.locator("dialog.cg-dialog .cmd-summary")).to_contain_text("niveau 100 %")
    await no_horizontal_scroll(page)
    await shot(page, "override-dialog")
    await page.keyboard.press("Escape")
    await expect(page.locator("dialog.cg-dialog")).to_have_count(0)
    assert not errors(page), errors(page)


async def test_a_supervisor_puts_a_junction_to_flashing_amber_with_a_reason_and_two_confirmations(  # type: ignore[no-untyped-def]
        tmp_path: Path, new_page, shot, axe_check) -> None:
    with signal_controller() as port:
        async with centre(tmp_path) as desk:
            quarter = time.time_ns() // 1_000_000 // 900_000 * 900_000
            body = orjson.dumps({"v": 1, "gateway": "gw-a", "commune": "21231", "records": [
                {"seq": 1, "kind": "sample", "device": "signals-jaures.d1", "ts_ms": quarter,
                 "values": {"junction": "dijon-jaures-tram", "approach": "north", "lane": 1, "interval": 1,
                            "interval_s": 900, "count_veh": 42, "occupancy_pct": 12.5}},
                {"seq": 2, "kind": "sample", "device": "signals-jaures", "ts_ms": quarter + 1000,
                 "values": {"mode": "fixed_time", "plan": 1, "stage": 2, "central": True, "plan_target": 1,
                            "position_target": "normal", "alarms": 0}}]})
            async with aiohttp.ClientSession() as http, http.post(
                    desk.url + PATH, data=body, headers={"Content-Type": "application/json",
                                                         "Authorization": f"Bearer {desk.fleet.gateways['gw-a']}"}) as r:
                assert r.status == 200, await r.text()
            async with running_agent(tmp_path, desk.fleet, desk.broker, bus=[signals_bus(port)]) as agent:
                signals = agent.context.buses["signals-jaures"]
                await wait_for(lambda: getattr(signals, "_in_sync", False), 60, "the controller to hold our tables")
                operator = await new_page(1366, 768)  # an operator sees the junction, not the control
                await login(operator, desk.url, desk.tokens["operator"])
                await open_commands(operator, desk.url)
                await expect(operator.locator("table.cmd-table").nth(1)).to_contain_text("dijon-jaures-tram")
                await expect(operator.get_by_role("button", name="Changer le mode…")).to_have_count(0)

                page = await new_page(1366, 768)
                await login(page, desk.url, desk.tokens["supervisor"])
                await open_commands(page, desk.url)
                row = page.locator("table.cmd-table").nth(1).locator("tbody tr")
                await expect(row).to_contain_text("fixed_time")
                await row.get_by_role("button", name="Changer le mode…").click()
                dialog = page.locator("dialog.cg-dialog")
                await expect(dialog).to_contain_text("Aucune couleur ni phase")
                await expect(dialog.locator(".cmd-summary")).to_contain_text("jaune clignotant")
                await dialog.locator("button[type=submit]").click()  # no reason yet: the dialog stays
                await expect(dialog.locator("textarea")).to_be_focused()
                await dialog.locator("textarea").fill("accident sur le carrefour, police sur place")
                await shot(page, "junction-first")
                await axe_check(page)
                await dialog.locator("button[type=submit]").click()
                second = page.locator("dialog.cg-dialog")
                await expect(second).to_contain_text("Confirmez une seconde fois")
                await expect(second).to_contain_text("Motif : accident sur le carrefour")
                await shot(page, "junction-second")
                await second.get_by_role("button", name="Passer en « jaune clignotant »").click()
                item = page.locator("#cmd-tray .cmd-item").first
                await expect(item).to_have_attribute("data-state", "acked")
                await wait_for(lambda: (c := signals.controller) is not None and c.mode == Mode.YELLOW_FLASH,
                               30, "the controller in yellow flash")
                recent = page.locator("table.cmd-table").first.locator("tbody tr").first
                await expect(recent).to_contain_text("op-supervisor")
                await expect(recent).to_contain_text("accident sur le carrefour")
                await shot(page, "junction-acked")
                assert not errors(page) and not errors(operator), errors(page) + errors(operator)
