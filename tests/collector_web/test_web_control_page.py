"""The control-centre page in headless Chromium against a real collector on both stores: communes
on the map, gateways online, an alarm, a faulty lamp, energy today against last week, drill-down
to a commune and a cabinet, and data posted after the page loaded showing up without a reload.
A screenshot goes to tests/artifacts/."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cdp import Chromium
from web_testkit import Web, event, now_ms, sample

from collector.rollup import PARIS
from collector.territory import load_territory

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def moments() -> tuple[int, int, int, int]:
    """Two instants just before now and the same two a week earlier (local wall clock), after midnight."""
    local = datetime.now(PARIS)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    a = max(local - timedelta(seconds=20), midnight + timedelta(seconds=1))
    b = max(local - timedelta(seconds=10), midnight + timedelta(seconds=2))
    ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731
    return ms(a - timedelta(days=7)), ms(b - timedelta(days=7)), ms(a), ms(b)


async def seed(web: Web) -> None:
    """Four cabinets in three communes, two of them uploading; 2.0 kWh last week, 2.5 kWh today."""
    lw1, lw2, t1, t2 = moments()
    await web.add_cabinet("gw-dijon-0001", "21231", 47.3221, 5.0415, cabinet="DIJ-001")
    await web.add_cabinet("gw-dijon-0002", "21231", 47.3180, 5.0350, cabinet="DIJ-002")
    await web.add_cabinet("gw-quetigny-0001", "21515", 47.3120, 5.1170)
    await web.add_cabinet("gw-chenove-0001", "21166", 47.2940, 5.0060)
    await web.upload("gw-dijon-0001", [
        # 2.0 kWh over two hours, 2.5 kWh over the week: what a lamp can draw (rollups refuse a 720 kW jump)
        sample(0, "lamp-1", lw1 - 2 * 3_600_000, energy_wh=10_000, lamp_on=True),
        sample(0, "lamp-1", lw2, energy_wh=12_000, lamp_on=True),
        sample(0, "lamp-1", t2, energy_wh=14_500, lamp_on=True),
        sample(0, "lamp-2", t1, lamp_on=True, power_w=0.4),
        event(0, "lamp-2", t2, "lamp_failure", "major", commanded_pct=100, power_w=0.4),
    ])
    await web.upload("gw-quetigny-0001", [
        sample(0, "meter-1", t1, volume_m3=1234.5),
        event(0, "cabinet", t2, "supply_loss", "critical"),
    ])


async def text(browser: Chromium, selector: str) -> str:
    return str(await browser.evaluate(f"document.querySelector({json.dumps(selector)}).textContent.trim()"))


@pytest.fixture
async def browser() -> Chromium:  # type: ignore[misc]
    async with Chromium() as b:
        yield b


async def test_control_page_shows_the_fleet_and_follows_it_live(web: Web, browser: Chromium, db_url: str) -> None:
    await seed(web)
    await browser.navigate(web.url + "/control/")
    await browser.wait_for("document.body.dataset.updates >= 1 && document.querySelector('#live').dataset.state === 'open'")

    names = await browser.evaluate("[...document.querySelectorAll('#map text.name')].map(t => t.textContent)")
    assert sorted(names) == sorted(c.name for c in load_territory().communes.values())
    assert {"Chenôve", "Neuilly-Crimolois", "Bretenière", "Fénay", "Marsannay-la-Côte"} <= set(names)
    assert (await text(browser, "#online-count"), await text(browser, "#gateway-count")) == ("2", "4")
    assert "envois de données" in await text(browser, "#presence-source")
    # the lamp failure (major) and the supply loss: the operators' alarms, folded from the uploads a
    # moment after they are stored, and sent to the page by its stream when they are
    await browser.wait_for("document.querySelector('#alarm-count').textContent === '2'", timeout=30)
    assert await text(browser, "#fault-count") == "1"
    # the overview's alarm widget (alarms.js) loads its own list
    await browser.wait_for("document.querySelector('#alarm-widget').textContent.includes('Coupure d\\'alimentation')")
    alarms = await text(browser, "#alarm-widget")
    assert "Coupure d'alimentation" in alarms and "Quetigny" in alarms and "gw-quetigny-0001" in alarms
    faults = await text(browser, "#faults tbody")
    assert "lamp-2" in faults and "gw-dijon-0001" in faults and "Dijon" in faults
    assert float(await browser.evaluate("document.querySelector('#energy-today').dataset.kwh")) == 2.5
    assert await text(browser, "#energy-today") == "2,5"
    compare = await text(browser, "#energy-compare")
    assert "+25 %" in compare and "2,0 kWh" in compare
    # the map colours: Dijon half online (orange), Quetigny all, Chenôve none, Ahuy has no cabinet
    fills = await browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#map .commune')].map("
        "g => [g.dataset.insee, g.querySelector('circle.disc').getAttribute('fill')]))")
    assert (fills["21231"], fills["21515"], fills["21166"], fills["21003"]) == ("#e8a317", "#2e9e5b", "#d64545",
                                                                                  "#b8c0cc")

    # drill down: Dijon, then its first cabinet
    await browser.evaluate("document.querySelector('#map .commune[data-insee=\"21231\"]')"
                           ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    await browser.wait_for("document.querySelector('#detail h3')?.textContent === 'Dijon'")
    detail = await text(browser, "#detail")
    assert "gw-dijon-0001 (DIJ-001)" in detail and "gw-dijon-0002 (DIJ-002)" in detail and "hors ligne" in detail
    # the cabinet's own page (asset.js)
    await browser.evaluate("location.hash = '#/cabinet/gw-dijon-0001'")
    await browser.wait_for("document.querySelector('.asset-title')?.textContent === 'Armoire DIJ-001'")
    await browser.wait_for("document.querySelector('.asset-lamps')?.textContent.includes('lamp-2')")
    detail = await text(browser, "#view")
    assert "lamp-1" in detail and "lamp-2" in detail and "en panne" in detail and "Lampe en panne" in detail
    assert "Dijon" in await text(browser, ".asset-crumbs")
    kind = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await browser.screenshot(ARTIFACTS / f"control-centre-{kind}-cabinet.png")
    await browser.evaluate("location.hash = '#/'")
    await browser.wait_for("document.querySelector('#detail h3')?.textContent === 'Dijon Métropole'")
    await browser.screenshot(ARTIFACTS / f"control-centre-{kind}.png")

    # live: Chenôve's cabinet comes back with a leak; the page follows without a reload
    await browser.evaluate("window.__noReload = 42")
    updates = await browser.evaluate("Number(document.body.dataset.updates)")
    await web.upload("gw-chenove-0001", [sample(0, "meter-2", now_ms(), volume_m3=88.0),
                                         event(0, "meter-2", now_ms(), "water_leak", "major", night_flow_m3h=0.4)])
    await browser.wait_for("document.querySelector('#online-count').textContent === '3'", timeout=30)
    await browser.wait_for("document.querySelector('#alarm-count').textContent === '3'", timeout=30)
    await browser.wait_for("document.querySelector('#alarm-widget').textContent.includes('Fuite d\\'eau')", timeout=30)
    assert await browser.evaluate("window.__noReload") == 42
    assert await browser.evaluate("Number(document.body.dataset.updates)") > updates
    fill = await browser.evaluate("document.querySelector('#map .commune[data-insee=\"21166\"] circle.disc')"
                                  ".getAttribute('fill')")
    assert fill == "#2e9e5b"
    errors = [line for line in browser.console if line.startswith("exception")]
    assert not errors, errors
    await browser.screenshot(ARTIFACTS / f"control-centre-{kind}-live.png")


async def test_a_missing_number_reads_as_a_dash_and_the_page_keeps_working(web: Web, browser: Chromium) -> None:
    """Rollups spoiled before counters were checked hold an infinite energy, which the API gives as null:
    that was a TypeError in app.js and an empty map."""
    await seed(web)
    for table in ("rollup_commune_hour", "rollup_gateway_hour"):
        await web.store._ctl_exec(f"UPDATE {table} SET energy_wh = $1", float("inf"))
    summary = (await web.get("/control/api/summary")).doc
    assert summary["totals"]["energy_today_kwh"] is None
    await browser.navigate(web.url + "/control/")
    await browser.wait_for("document.body.dataset.updates >= 1")
    assert await text(browser, "#energy-today") == "—"
    names = await browser.evaluate("[...document.querySelectorAll('#map text.name')].map(t => t.textContent)")
    assert len(names) == len(load_territory().communes)
    await browser.evaluate("location.hash = '#/commune/21231'")
    await browser.wait_for("document.querySelector('#detail h3')?.textContent === 'Dijon'")
    assert "—" in await text(browser, "#detail tbody")
    await browser.evaluate("location.hash = '#/cabinet/gw-dijon-0001'")
    await browser.wait_for("document.querySelector('.asset-title')?.textContent === 'Armoire DIJ-001'")
    await browser.wait_for("document.querySelector('.asset-lamps')?.textContent.includes('lamp-2')")
    assert "—" in await text(browser, "#view")
    errors = [line for line in browser.console if line.startswith("exception")]
    assert not errors, errors


async def test_page_and_assets_are_served_by_the_collector(web: Web) -> None:
    page = await web.get("/control/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no external tiles
    for name, ctype in (("shell.js", "text/javascript"), ("overview.js", "text/javascript"), ("app.css", "text/css")):
        reply = await web.get(f"/control/assets/{name}")
        assert (reply.status, reply.content_type) == (200, ctype)
        assert "https://" not in reply.text.replace("http://www.w3.org/2000/svg", "")
    assert (await web.get("/control/assets/..%2F..%2Fapp.py")).status == 404
    assert (await web.get("/control/assets/data.py")).status == 404
    root = await web.request("GET", "/", allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/control/"
    assert (await web.get("/control/api/communes/99999")).status == 404
    assert (await web.get("/control/api/cabinets/nope")).status == 404
    # a former commune's code opens the commune it merged into
    assert (await web.get("/control/api/communes/21213")).doc["commune"]["insee"] == "21452"
