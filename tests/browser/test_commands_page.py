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
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from browser_kit import REPO, SIZES, errors, login, no_horizontal_scroll
from click.testing import CliRunner
from playwright.async_api import Page, expect

from collector.app import create_app, start
from collector.cli import main
from collector.control.link import LinkConfig
from collector.control.routes import attach_link
from collector.store import open_store
from collector.tokens import hash_token
from simulators.lamps import LampSimulator
from simulators.mosquitto import Mosquitto

sys.path.insert(0, str(REPO / "tests" / "control"))
from mqtt_testkit import LAMP_MAP, Fleet, lamp_street, running_agent, wait_for

LEVEL_CMD = 0  # level_cmd_pct in the LC100 map


@dataclass
class Street:
    url: str
    tokens: dict[str, str]  # rank -> operator token
    lamps: LampSimulator


def cli(*args: str) -> str:
    done = CliRunner().invoke(main, list(args))
    assert done.exit_code == 0, done.output
    return done.output


@pytest_asyncio.fixture(loop_scope="session")
async def street(tmp_path: Path) -> AsyncIterator[Street]:
    """A collector (`--operator-login`, its MQTT link) and gw-a's agent lighting lamps 7 and 8."""
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
        async with open_store(db) as store, LampSimulator([7, 8], LAMP_MAP) as lamps:
            tokens = {}
            for rank in ("viewer", "operator"):
                tokens[rank] = "cop_" + secrets.token_urlsafe(24)
                await store.add_operator(f"op-{rank}", hash_token(tokens[rank]), time.time_ns() // 1_000_000)
                await store.set_operator_roles(f"op-{rank}", frozenset({rank}), "test", time.time_ns() // 1_000_000)
            app = create_app(store, operator_login=True)
            link = attach_link(app, LinkConfig(broker.url, fleet.collector_password, resend_s=1.0, keepalive_s=5,
                                               command_key=fleet.command_key))
            runner, url = await start(app, "127.0.0.1", 0)
            try:
                await wait_for(lambda: link.connected, 30, "the collector's MQTT link")
                port = await lamps.serve_tcp()
                async with running_agent(tmp_path, fleet, broker, **lamp_street(port)):
                    yield Street(url, tokens, lamps)
            finally:
                await runner.cleanup()
    finally:
        broker.kill()


async def open_commands(page: Page, url: str) -> None:
    """#/commands, loaded as such (not reached from the overview the login lands on)."""
    await page.goto("about:blank")
    await page.goto(url + "/control/#/commands")


async def lighting_panel(page: Page, url: str) -> None:
    await open_commands(page, url)
    await page.fill("#cmd-gateway", "gw-a")
    await page.fill("#cmd-name", "lamp-7")


async def test_an_operator_dims_a_lamp_from_the_page_and_sees_it_acknowledged(street: Street, new_page, shot, axe_check) -> None:  # type: ignore[no-untyped-def]
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
    await wait_for(lambda: street.lamps.register_image(7)[LEVEL_CMD] == 30, 20, "lamp 7 at 30 %")
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


async def test_a_viewer_has_no_command_control(street: Street, new_page) -> None:  # type: ignore[no-untyped-def]
    page = await new_page(1366, 768)
    await login(page, street.url, street.tokens["viewer"])
    await open_commands(page, street.url)
    await expect(page.locator(".card").first).to_contain_text("lecture seule")
    await expect(page.locator("#cmd-gateway")).to_have_count(0)
    assert await page.evaluate("CG.commands.can('dim') || CG.commands.can('junctionMode')") is False
    assert not errors(page), errors(page)


@pytest.mark.parametrize(("width", "height"), SIZES)
async def test_the_commands_view_at_each_size(street: Street, new_page, shot, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
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
