"""The public efficiency page in Chromium, without logging in although the collector runs with
--operator-login: its figures, its monthly chart drawn, French then English, the three screen sizes,
axe-core; the two CSV downloads as a browser gets them (the French spreadsheet's BOM, `;` and decimal
comma, the plain comma form)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from browser_kit import SIZES, Collector, errors, event, no_horizontal_scroll, now_ms, sample, unique_name
from playwright.async_api import expect

from collector.rollup import PARIS

HOUR = 3_600_000


async def seed(collector: Collector, commune: str) -> str:
    """Two lamps of a commune no other test feeds, 100 Wh this month, one repaired in 2 h: the gateway's name."""
    gw = unique_name("gw-eff")
    await collector.add_gateway(gw, commune, 47.31, 5.10)
    now = now_ms()
    first = now - 6 * HOUR
    records = [sample(f"lamp-{k}", first, lamp_on=True, level_pct=100, power_w=50.0, energy_wh=1000) for k in (1, 2)]
    records += [sample(f"lamp-{k}", first + HOUR, lamp_on=True, level_pct=100, power_w=50.0, energy_wh=1050)
                for k in (1, 2)]
    records += [event("lamp-2", first + 2 * HOUR, "lamp_failure", "major", group="g"),
                event("lamp-2", first + 4 * HOUR, "lamp_restored", "info", group="g", cleared="lamp_failure")]
    await collector.upload(gw, records)
    return gw


def this_month() -> str:
    return datetime.now(PARIS).strftime("%Y-%m")


async def test_the_public_page_without_login(collector: Collector, new_page, shot, axe_check) -> None:  # type: ignore[no-untyped-def]
    await seed(collector, "21270")  # Flavignerot
    for width, height in SIZES:
        page = await new_page(width, height)
        await page.goto(f"{collector.url}/efficiency/")
        await expect(page.locator("h1")).to_have_text("Efficacité de l'éclairage public")
        await page.select_option("#commune", "21270")
        await page.select_option("#month", this_month())
        kpis = page.locator("#kpis")
        await expect(kpis.locator(".kpi")).to_have_count(8)
        await expect(kpis.locator(".kpi", has_text="Énergie consommée")).to_contain_text("0,1 kWh")
        await expect(kpis.locator(".kpi", has_text="Délai médian de réparation")).to_contain_text("2 h")
        await expect(page.locator("#chart canvas").first).to_be_visible()
        await expect(page.locator("#method")).to_contain_text("ADEME")
        await expect(page.locator("#method")).to_contain_text("0,052 kg CO₂e/kWh")
        await shot(page, "efficiency")
        await no_horizontal_scroll(page)
        await axe_check(page)
        await page.click("button[data-lang=en]")
        await expect(page.locator("h1")).to_have_text("Public lighting efficiency")
        await expect(page.locator("#method")).to_contain_text("0.052 kg CO₂e/kWh")
        await shot(page, "efficiency-en")
        assert errors(page) == []
        assert "/control/login" not in page.url


async def test_the_csv_downloads(collector: Collector, new_page) -> None:  # type: ignore[no-untyped-def]
    await seed(collector, "21192")  # Corcelles-les-Monts
    page = await new_page(1366, 768)
    await page.goto(f"{collector.url}/efficiency/")
    await page.select_option("#commune", "21192")
    async with page.expect_download() as info:
        await page.click("#dl-excel")
    excel = (await (await info.value).path()).read_bytes()
    async with page.expect_download() as info:
        await page.click("#dl-csv")
    plain = (await (await info.value).path()).read_bytes()
    assert excel.startswith(b"\xef\xbb\xbf") and not plain.startswith(b"\xef\xbb\xbf")
    fr = list(csv.DictReader(io.StringIO(excel.decode("utf-8-sig")), delimiter=";"))
    en = list(csv.DictReader(io.StringIO(plain.decode("utf-8"))))
    assert {r["commune_insee"] for r in fr} == {r["commune_insee"] for r in en} == {"21192"}
    month = next(r for r in fr if r["month"] == this_month())
    plain_month = next(r for r in en if r["month"] == this_month())
    assert "," in month["baseline_kwh (kWh)"] and "." not in month["baseline_kwh (kWh)"]
    assert float(month["baseline_kwh (kWh)"].replace(",", ".")) == float(plain_month["baseline_kwh (kWh)"])
    assert excel.decode("utf-8-sig").splitlines()[0].startswith("month;commune_insee;commune_name;")
    assert plain.decode().splitlines()[0].startswith("month,commune_insee,commune_name,")
    assert errors(page) == []
