"""The asset pages in Chromium against a real collector: from a cabinet's page to a lamp's page, its
charts drawn (a canvas, series with points) and following the window's width, a commune's energy
charts, a junction's mode and plans; English; the three screen sizes, no horizontal scroll at 390 px,
axe-core."""

from __future__ import annotations

from typing import Any

from browser_kit import SIZES, Collector, errors, event, no_horizontal_scroll, now_ms, sample, unique_name
from playwright.async_api import Page, expect

MIN = 60_000


async def seed(collector: Collector) -> str:
    """A cabinet with two lamps read every 10 minutes for the last 3 hours, dimmed to 50 % an hour ago,
    one of them failed; its group's level event. The gateway's name."""
    gw = unique_name("gw-asset")
    await collector.add_gateway(gw, "21231", 47.3221, 5.0415, cabinet=gw.upper())
    now = now_ms()
    start = now - 180 * MIN
    records: list[dict[str, Any]] = [sample("lamp-1", start, commanded_level_pct=100, level_pct=100),
                                     sample("lamp-2", start, commanded_level_pct=100, level_pct=100)]
    for k in range(1, 18):
        ts = start + k * 10 * MIN
        level = 100 if ts < now - 60 * MIN else 50
        records += [
            sample("lamp-1", ts, lamp_on=True, level_pct=level, power_w=0.6 * level, voltage_v=228.0 + k % 4,
                   energy_wh=1000 + k * 10),
            sample("lamp-2", ts, lamp_on=True, level_pct=level, power_w=0.4 * level, voltage_v=230.0,
                   energy_wh=500 + k * 7),
        ]
    records += [
        sample("lamp-1", now - 60 * MIN, commanded_level_pct=50, level_pct=50),
        event("group:north", now - 60 * MIN, "group_level", "info", level_pct=50, previous_pct=100, program="eco",
              mode="synchronised"),
        event("lamp-2", now - 30 * MIN, "lamp_failure", "major", group="north", commanded_pct=50, power_w=0.2),
    ]
    records.sort(key=lambda r: r["ts_ms"])
    await collector.upload(gw, records)
    return gw


async def log_in(page: Page, operator_login) -> None:  # type: ignore[no-untyped-def]
    """Log in, which lands on the overview, and let the overview show its summary before going on."""
    await operator_login(page)
    await page.wait_for_function("() => { const n = document.getElementById('online-count');"
                                 " return n && n.textContent !== '–'; }")


async def chart_points(page: Page, title: str) -> int:
    """The points the chart of the card titled `title` drew, once its canvas is there."""
    card = page.locator(".asset-card", has=page.locator("h2", has_text=title))
    await expect(card.locator(".asset-chart canvas").first).to_be_visible()
    return int(await card.locator(".asset-chart").get_attribute("data-points") or 0)


async def test_from_a_cabinet_to_a_lamp_and_its_charts(collector: Collector, new_page, operator_login, shot,
                                                       axe_check) -> None:  # type: ignore[no-untyped-def]
    gw = await seed(collector)
    page = await new_page(*SIZES[0])
    await log_in(page, operator_login)
    for width, height in SIZES:
        await page.set_viewport_size({"width": width, "height": height})
        await page.goto(f"{collector.url}/control/#/cabinet/{gw}")
        lamps = page.locator(".asset-lamps")
        await expect(lamps.locator("a", has_text="lamp-1")).to_be_visible()
        await expect(lamps.locator("tr", has_text="lamp-2")).to_contain_text("en panne")
        assert await chart_points(page, "Tension d'alimentation") > 0
        await shot(page, "cabinet")
        await no_horizontal_scroll(page)
        if width != 1366:  # the widest and the narrowest layouts (each run of axe costs seconds)
            await axe_check(page)
        await lamps.locator("a", has_text="lamp-1").click()
        await expect(page).to_have_url(f"{collector.url}/control/#/lamp/{gw}/lamp-1")
        await expect(page.locator(".asset-title")).to_have_text("Lampe lamp-1")
        # 18 commanded levels (filled forward), 17 actual levels: the curves are there, not just a canvas
        assert await chart_points(page, "Niveau commandé et niveau réel") >= 30
        assert await chart_points(page, "Puissance et tension") >= 30
        assert await chart_points(page, "Énergie et heures") >= 1
        await expect(page.locator(".asset-card", has=page.locator("h2", has_text="Programme"))).to_contain_text("eco")
        # an operator may dim it from its page (commands.js makes the command; its own tests send it)
        await expect(page.locator(".asset-facts").get_by_role("button", name="Graduer…")).to_be_visible()
        await shot(page, "lamp")
        await no_horizontal_scroll(page)
        if width != 1366:
            await axe_check(page)
    # the charts follow their card's width when the window changes, without a reload
    narrow = await page.evaluate("document.querySelector('.asset-chart canvas').getBoundingClientRect().width")
    await page.set_viewport_size({"width": 1920, "height": 1080})
    await page.wait_for_function("(w) => document.querySelector('.asset-chart canvas').getBoundingClientRect().width"
                                 " > w + 200", arg=narrow)
    assert errors(page) == []


async def test_a_communes_energy_a_junction_and_english(collector: Collector, new_page, operator_login, shot,
                                                       axe_check) -> None:  # type: ignore[no-untyped-def]
    lamps = await seed(collector)
    gw = unique_name("gw-junction")
    await collector.add_gateway(gw, "21231", 47.3200, 5.0400)
    now = now_ms()
    await collector.upload(gw, [
        sample("signals", now - 120 * MIN, mode="normal", plan=1, stage=1, central=False),
        sample("signals", now - 60 * MIN, mode="normal", plan=2, stage=1, central=False),
        sample("signals", now - 10 * MIN, mode="yellow_flash", plan=0, stage=0, central=True),
    ])
    page = await new_page(1366, 768)
    await log_in(page, operator_login)
    await page.goto(f"{collector.url}/control/#/cabinet/{lamps}")
    await page.click("text=Énergie de Dijon par jour")  # from a cabinet to its commune's charts
    await expect(page).to_have_url(f"{collector.url}/control/#/commune/21231/charts")
    await expect(page.locator(".asset-title")).to_have_text("Énergie de Dijon")
    assert await chart_points(page, "Énergie par jour") > 0
    await shot(page, "commune")
    await axe_check(page)
    await page.goto(f"{collector.url}/control/#/junction/{gw}/signals")
    now_card = page.locator(".asset-card", has=page.locator("h2", has_text="Maintenant"))
    await expect(now_card).to_contain_text("orange clignotant")
    await expect(page.locator(".asset-card", has=page.locator("h2", has_text="Plans exécutés"))).to_contain_text("1 h 00")
    await shot(page, "junction")
    await axe_check(page)
    # in English, from the header's switch: the failed lamp's page says so, its legend too
    await page.click("#lang button[data-lang=en]")
    await page.goto(f"{collector.url}/control/#/lamp/{lamps}/lamp-2")
    await expect(page.locator(".asset-title")).to_have_text("Lamp lamp-2")
    await expect(page.locator(".asset-facts")).to_contain_text("Failed since")
    await expect(page.locator(".u-legend").first).to_contain_text("Commanded (%)")
    await shot(page, "lamp-en")
    assert errors(page) == []
