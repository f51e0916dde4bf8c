"""Alarms on the control-centre page, in Chromium against a real collector fed by uploads: a lost bus is one
alarm of its lamps; an operator acknowledges it from the list and sees it change, clears another with a
reason from its page; the restore clears an alarm live; the overview's widget is above the fold at
1920x1080 and 1366x768; no sideways scrolling on a phone; axe-core finds nothing serious. Screenshots at
the three sizes go to test-artifacts/."""

from __future__ import annotations

from browser_kit import SIZES, Collector, errors, event, no_horizontal_scroll, now_ms, unique_name
from playwright.async_api import Page, expect

LAMPS = [f"lamp-{i:02d}" for i in range(1, 7)]


async def lost_bus(collector: Collector, commune: str = "21231") -> str:
    """A cabinet whose bus stopped answering a few minutes ago: each of its lamps raised its own alarm."""
    name = unique_name("gw-alarm")
    await collector.add_gateway(name, commune, 47.32, 5.04, cabinet=name.upper())
    at = now_ms() - 300_000
    await collector.upload(name, [event(lamp, at + i * 2000, "communication_failure", failures=3, kind="timeout")
                                  for i, lamp in enumerate(LAMPS)])
    return name


async def settled(page: Page) -> None:
    """The overview the login lands on has drawn its first summary (leaving it earlier races its first load)."""
    await page.wait_for_function("Number(document.body.dataset.updates) >= 1 || !document.querySelector('#kpi-online')")


async def open_list(page: Page, collector: Collector, gateway: str) -> None:
    await settled(page)
    await page.goto(collector.url + "/control/#/alarms")
    await page.fill("#alarm-f-gateway", gateway)
    await page.press("#alarm-f-gateway", "Enter")
    await page.locator("#alarm-f-gateway").blur()
    await expect(page.locator("table.alarm-table tbody tr")).to_have_count(1)


async def test_an_operator_acknowledges_a_lost_bus_from_the_list_and_sees_it_change(collector: Collector, new_page, operator_login, shot) -> None:  # type: ignore[no-untyped-def]
    gateway = await lost_bus(collector)
    page = await new_page(1366, 768)
    operator = await operator_login(page, ["operator"])
    await open_list(page, collector, gateway)
    row = page.locator("table.alarm-table tbody tr")
    await expect(row).to_contain_text("Perte de communication")
    await expect(row).to_contain_text(f"{len(LAMPS)} équipements")  # one alarm, not one a lamp
    await expect(row).to_contain_text("Ouverte")
    await row.locator("button[data-action=ack]").click()
    dialog = page.locator("dialog.cg-dialog")
    await expect(dialog).to_contain_text(gateway)
    await dialog.locator("textarea").fill("équipe prévenue")
    await dialog.locator("button[type=submit]").click()
    await expect(row).to_contain_text("Acquittée")
    await expect(row.locator("button[data-action=ack]")).to_have_count(0)
    await expect(page.locator("#toasts")).to_contain_text("acquittée")
    await shot(page, "acknowledged")

    await row.locator("a").first.click()
    detail = page.locator(".alarm-detail")
    await expect(detail).to_contain_text(f"Équipements ({len(LAMPS)})")
    await expect(detail.locator(".alarm-audit")).to_contain_text(operator)
    await expect(detail.locator(".alarm-audit")).to_contain_text("équipe prévenue")
    assert not errors(page), errors(page)


async def test_clear_with_a_reason_from_the_alarm_page_and_a_restore_clears_live(collector: Collector, new_page, operator_login) -> None:  # type: ignore[no-untyped-def]
    first, second = await lost_bus(collector), await lost_bus(collector)
    page = await new_page(1366, 768)
    operator = await operator_login(page)
    await open_list(page, collector, first)
    await page.locator("table.alarm-table tbody tr a").first.click()
    detail = page.locator(".alarm-detail")
    await detail.locator("button[data-action=clear]").click()
    dialog = page.locator("dialog.cg-dialog")
    await dialog.locator("textarea").fill("bus remplacé")
    await dialog.locator("button[type=submit]").click()
    await expect(detail.locator(".pills")).to_contain_text("Levée")
    await expect(detail).to_contain_text(f"par {operator}")

    # the second cabinet's bus comes back: its alarm clears itself while the list is open
    await open_list(page, collector, second)
    row = page.locator("table.alarm-table tbody tr")
    await expect(row).to_contain_text("Ouverte")
    back = now_ms()
    await collector.upload(second, [event(lamp, back, "communication_restored", "info", failures=6) for lamp in LAMPS])
    await expect(row).to_contain_text("Aucune alarme ne correspond")  # no reload: the stream's change event
    await page.select_option("#alarm-f-state", "cleared")
    await expect(row).to_contain_text("Levée")
    assert not errors(page), errors(page)


async def test_the_widget_is_above_the_fold_and_the_pages_fit_every_size(collector: Collector, new_page, operator_login, shot, axe_check) -> None:  # type: ignore[no-untyped-def]
    gateway = await lost_bus(collector, "21166")
    for width, height in SIZES:
        page = await new_page(width, height)
        await operator_login(page)
        await page.goto(collector.url + "/control/#/")
        await settled(page)
        widget = page.locator("#alarm-widget")
        await expect(widget.locator("li[data-alarm]").first).to_be_visible()
        box = await widget.bounding_box()
        assert box is not None
        if (width, height) != (390, 844):  # on a phone the widget comes first, under the figures
            assert box["y"] + box["height"] < height, f"alarm widget ends at {box['y'] + box['height']} of {height}"
        await shot(page, "overview")
        await open_list(page, collector, gateway)
        await no_horizontal_scroll(page)
        await shot(page, "list")
        await page.locator("table.alarm-table tbody tr a").first.click()
        await expect(page.locator(".alarm-detail h2")).to_contain_text("Perte de communication")
        await no_horizontal_scroll(page)
        await shot(page, "detail")
        if width == 1366:
            await axe_check(page)
            await page.goto(collector.url + "/control/#/alarms")
            await expect(page.locator("table.alarm-table tbody tr").first).to_be_visible()
            await axe_check(page)
        assert not errors(page), errors(page)


async def test_english_and_a_viewer_sees_no_action(collector: Collector, new_page, operator_login) -> None:  # type: ignore[no-untyped-def]
    gateway = await lost_bus(collector)
    page = await new_page(1366, 768, "en-GB")
    await operator_login(page, ["viewer"])
    await open_list(page, collector, gateway)
    row = page.locator("table.alarm-table tbody tr")
    await expect(row).to_contain_text("Communication lost")
    await expect(row).to_contain_text(f"{len(LAMPS)} devices")
    await expect(row.locator("button")).to_have_count(0)
    await row.locator("a").first.click()
    await expect(page.locator(".alarm-detail")).to_contain_text("Read only")
    assert not errors(page), errors(page)
