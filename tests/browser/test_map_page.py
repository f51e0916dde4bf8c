"""The map in Chromium against a real collector: each lamp at its own position and in its state's colour
AND shape (unreachable is not off), the layers switched, a click from the map to the cabinet and to the
lamp, a live change redrawn from a delta without reloading, the phone width, screenshots and axe-core."""

from __future__ import annotations

from typing import Any

from browser_kit import SIZES, Collector, errors, event, no_horizontal_scroll, now_ms, sample, unique_name
from playwright.async_api import Page, expect

from citygate_wire.mqtt import Ack, Command
from collector.store import open_store

SPACING = 0.0004  # degrees of latitude between two lamps: about 45 m, 35 px at zoom 17
#: what a lamp of each state is (device -> its readings and events); `cab` stays at its cabinet
STATES = {"on": "O", "dim": "D", "off": "X", "broken": "F", "lost": "U", "forced": "D"}


async def seed(collector: Collector, lat0: float, lon0: float) -> str:
    """A cabinet with a lamp in each state, each at its own position (the config's event) in a column north
    of the cabinet; one overridden by an acknowledged command. The cabinet's name."""
    gw = unique_name("gw-map")
    await collector.add_gateway(gw, "21231", lat0, lon0, cabinet=gw.upper())
    now = now_ms()
    records: list[dict[str, Any]] = []
    for k, device in enumerate(STATES, start=1):
        records.append(event(device, now - 9000, "device_position", "info", lat=round(lat0 + k * SPACING, 6), lon=lon0))
    records += [
        sample("on", now - 3000, lamp_on=True, level_pct=100),
        sample("dim", now - 3000, lamp_on=True, level_pct=50),
        sample("off", now - 3000, lamp_on=False, level_pct=0),
        sample("broken", now - 3000, lamp_on=False, level_pct=100),
        event("broken", now - 2000, "lamp_failure", "major"),
        sample("lost", now - 3000, lamp_on=False, level_pct=0),
        event("lost", now - 2000, "communication_failure", "major", failures=3),
        sample("forced", now - 3000, lamp_on=True, level_pct=40),
    ]
    await collector.upload(gw, records)
    async with open_store(collector.db_url) as store:
        gateway = await store.gateway(gw)
        assert gateway is not None
        cid = f"{gw}-override"
        await store.add_command(Command(cid, "lighting.override", {"lamp": "forced", "level_pct": 40,
                                                                    "until_ms": now + 3_600_000},
                                        now, now + 60_000, "test"), f"gateway:{gw}", [gateway.id])
        await store.record_ack(gateway.id, Ack(cid, "done", now_ms()), now_ms())
    return gw


async def open_map(page: Page, collector: Collector, operator_login, hash_: str) -> None:  # type: ignore[no-untyped-def]
    await operator_login(page)
    # the login lands on the overview: leaving it before its first summary races its load (overview.js)
    await page.wait_for_function("Number(document.body.dataset.updates) >= 1")
    await page.goto(f"{collector.url}/control/{hash_}")
    await page.wait_for_selector(".map-view[data-ready=true]")


async def lamp(page: Page, gw: str, device: str) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate("([g, d]) => CG.mapDebug.lamp(g, d)", [gw, device])
    return found


async def pixel(page: Page, x: float, y: float) -> tuple[int, int, int]:
    """The colour Leaflet's canvas renderer drew at page point (x, y)."""
    rgb: list[int] = await page.evaluate("""([x, y]) => {
        const c = document.querySelector('.leaflet-overlay-pane canvas');
        const r = c.getBoundingClientRect();
        const d = c.getContext('2d').getImageData(Math.round((x - r.left) * c.width / r.width),
                                                  Math.round((y - r.top) * c.height / r.height), 1, 1).data;
        return [d[0], d[1], d[2]];
    }""", [x, y])
    return rgb[0], rgb[1], rgb[2]


async def drawn_states(page: Page, gw: str) -> dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """device -> the colours at its centre and 3 px left of it (a dimmed lamp is half filled)."""
    await page.wait_for_function("([g]) => ['on','dim','off','broken','lost','forced'].every("
                                 "(d) => (CG.mapDebug.lamp(g, d) || {}).drawn)", arg=[gw])
    out = {}
    for device in STATES:
        at = await lamp(page, gw, device)
        out[device] = (await pixel(page, at["x"], at["y"]), await pixel(page, at["x"] - 3, at["y"]))
    return out


async def test_each_lamp_state_is_drawn_apart_and_unreachable_is_not_off(collector: Collector, new_page,  # type: ignore[no-untyped-def]
                                                                         operator_login, shot, axe_check) -> None:
    gw = await seed(collector, 47.2950, 5.0950)
    page = await new_page(1920, 1080)
    await open_map(page, collector, operator_login, f"#/map/{gw}")
    await page.wait_for_function("([g]) => (CG.mapDebug.lamp(g, 'forced') || {}).overridden", arg=[gw])
    assert {d: (await lamp(page, gw, d))["state"] for d in STATES} == STATES
    assert (await lamp(page, gw, "lost"))["why"] == "communication_lost"
    colours = await drawn_states(page, gw)
    centres = {d: c for d, (c, _) in colours.items()}
    assert centres["on"] == (0xF0, 0xB4, 0x00)
    assert centres["off"] == (0xFF, 0xFF, 0xFF)  # a hollow circle
    assert centres["lost"] == (0x6B, 0x3F, 0xA0)  # a filled square: unreachable is not off
    assert centres["broken"] == (0xC8, 0x10, 0x2E)
    assert colours["dim"][1] == (0xB0, 0x78, 0x00)  # the left half filled ...
    dim = await lamp(page, gw, "dim")
    assert await pixel(page, dim["x"] + 3, dim["y"]) == (0xFF, 0xFF, 0xFF)  # ... the right half empty
    forced = await lamp(page, gw, "forced")
    assert await pixel(page, forced["x"] + 10, forced["y"]) == (0x00, 0x60, 0xDF)  # the override's ring
    legend = await page.locator(".map-legend").inner_text()
    for label in ("Allumé", "Abaissé", "Éteint", "En panne", "Injoignable", "Forçage en cours"):
        assert label in legend
    assert await page.locator(".map-legend canvas").count() == 6  # each state's shape beside its name
    await shot(page, "lamps")
    await axe_check(page)
    assert not errors(page), errors(page)


async def test_click_through_from_the_map_to_the_cabinet_and_to_a_lamp(collector: Collector, new_page,  # type: ignore[no-untyped-def]
                                                                       operator_login) -> None:
    gw = await seed(collector, 47.3010, 5.1010)
    page = await new_page(1366, 768)
    await open_map(page, collector, operator_login, f"#/map/{gw}")
    await drawn_states(page, gw)
    dim = await lamp(page, gw, "dim")
    await page.mouse.click(dim["x"], dim["y"])
    await page.wait_for_function("([g]) => location.hash === `#/lamp/${g}/dim`", arg=[gw])
    await page.go_back()
    await page.wait_for_selector(".map-view[data-ready=true]")
    marker = page.locator(f".leaflet-marker-icon[title*='{gw}']")
    await expect(marker).to_have_count(1)
    await marker.click()
    await page.wait_for_function("([g]) => location.hash === `#/cabinet/${g}`", arg=[gw])
    assert not errors(page), errors(page)


async def test_layers_switch_and_a_live_change_is_redrawn_from_a_delta(collector: Collector, new_page,  # type: ignore[no-untyped-def]
                                                                       operator_login) -> None:
    gw = await seed(collector, 47.3070, 5.1070)
    page = await new_page(1366, 768)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/control/api/map/" in r.url else None)
    await open_map(page, collector, operator_login, f"#/map/{gw}")
    await drawn_states(page, gw)
    marker = page.locator(f".leaflet-marker-icon[title*='{gw}']")
    await expect(marker).to_have_count(1)
    await page.uncheck("input[data-layer=cabinets]")
    await expect(marker).to_have_count(0)
    await page.uncheck("input[data-layer=lamps]")
    await page.wait_for_function("CG.mapDebug.drawn() === 0")
    await page.check("input[data-layer=lamps]")
    await page.check("input[data-layer=cabinets]")
    await expect(marker).to_have_count(1)
    await drawn_states(page, gw)

    layers_asked = sum("/map/layers" in u for u in asked)
    await collector.upload(gw, [event("on", now_ms(), "lamp_failure", "major")])
    await page.wait_for_function("([g]) => CG.mapDebug.lamp(g, 'on').state === 'F'", arg=[gw], timeout=30_000)
    at = await lamp(page, gw, "on")
    assert await pixel(page, at["x"], at["y"]) == (0xC8, 0x10, 0x2E)
    await expect(marker.locator(".cg-cab-failed")).to_have_count(1)  # the cabinet tells of its failed lamp
    assert any("/map/states?since=" in u for u in asked)
    assert sum("/map/layers" in u for u in asked) == layers_asked  # a delta, not everything again
    assert not errors(page), errors(page)


async def test_the_map_at_each_size_and_in_english(collector: Collector, new_page, operator_login, shot,  # type: ignore[no-untyped-def]
                                                   axe_check) -> None:
    gw = await seed(collector, 47.3130, 5.1130)
    for width, height in SIZES:
        page = await new_page(width, height)
        await open_map(page, collector, operator_login, "#/map")
        await shot(page, "metropolis")
        await page.goto(f"{collector.url}/control/#/map/{gw}")
        await page.wait_for_selector(".map-view[data-ready=true]")
        await drawn_states(page, gw)
        await no_horizontal_scroll(page)
        await shot(page, "cabinet")
        folded = page.locator(".map-box:not([open]) > summary")
        assert (await folded.count() == 2) == (width < 760)  # on a phone the layers and the legend fold away
        while await folded.count():
            await folded.first.click()
        for box in await page.locator(".map-toggle").all():
            assert (await box.bounding_box() or {"height": 0})["height"] >= 44  # touch-sized
        await axe_check(page)
        assert not errors(page), errors(page)
    page = await new_page(1366, 768, "en-GB")
    await open_map(page, collector, operator_login, f"#/map/{gw}")
    await expect(page.locator(".map-layers legend")).to_have_text("Layers")
    assert "Unreachable" in await page.locator(".map-legend").inner_text()


async def test_the_map_puts_the_lamps_of_several_pages_together(collector: Collector, new_page,  # type: ignore[no-untyped-def]
                                                                operator_login, shot) -> None:
    """Lamps 3 a page (the page's knob), so the fleet here is several pages: the map holds every lamp the
    server counts, each in its state, and goes on by deltas from that snapshot."""
    gw = await seed(collector, 47.3190, 5.1190)
    page = await new_page(1366, 768)
    await page.add_init_script("window.CG_MAP_LAMP_PAGE = 3")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/map/layers?layers=lamps" in r.url else None)
    await open_map(page, collector, operator_login, f"#/map/{gw}")
    await drawn_states(page, gw)
    assert {d: (await lamp(page, gw, d))["state"] for d in STATES} == STATES
    total = await page.evaluate("CG.api('/control/api/map/layers?layers=lamps&limit=1').then((d) => d.total)")
    held = await page.evaluate("CG.mapDebug.lamps()")  # positions and states
    assert held == [total, total] and total > 6 and len(asked) >= -(-total // 3), (held, total, asked)
    assert any("stamp=" in u and "offset=3" in u for u in asked)
    await collector.upload(gw, [event("on", now_ms(), "lamp_failure", "major")])
    await page.wait_for_function("([g]) => CG.mapDebug.lamp(g, 'on').state === 'F'", arg=[gw], timeout=30_000)
    await shot(page, "paged")
    assert not errors(page), errors(page)
    phone = await new_page(390, 844)
    await phone.add_init_script("window.CG_MAP_LAMP_PAGE = 3")
    await open_map(phone, collector, operator_login, f"#/map/{gw}")
    await drawn_states(phone, gw)
    assert await phone.evaluate("CG.mapDebug.lamps()") == [total, total]
    await no_horizontal_scroll(phone)
    await shot(phone, "paged")
    assert not errors(phone), errors(phone)
