"""The commune view follows the commune by deltas: its stream sends the commune's document once, then only
the cabinets that changed, which the page patches into its table in place. In Chromium against a real
collector: a batch that fails a cabinet's lamp changes that cabinet's row, with no GET of the commune's
document and no other row rebuilt, and the delta the browser received is small. Desktop and phone."""

from __future__ import annotations

from typing import Any

from browser_kit import (
    Collector,
    NewPage,
    OperatorLogin,
    Shot,
    errors,
    event,
    no_horizontal_scroll,
    now_ms,
    sample,
    unique_name,
)
from playwright.async_api import Page, expect

INSEE = "21355"  # Longvic: the other browser tests fill Dijon


async def test_a_batch_changes_one_row_of_the_open_commune_by_a_small_delta(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin, shot: Shot,
) -> None:
    names = [unique_name("gw-live") for _ in range(12)]
    for i, name in enumerate(names):
        await collector.add_gateway(name, INSEE, 47.27 + i / 1000, 5.06, cabinet=f"LGV-{i:02d}")
        await collector.upload(name, [sample("lamp-1", now_ms() - 2000, lamp_on=True, power_w=60.0)])
    target = names[5]
    for width, height in ((1366, 768), (390, 844)):
        page = await new_page(width, height)
        await operator_login(page)
        await follow_at(page, collector, names, target, shot)
        await page.close()
        # next size: the target cabinet gets back its lamp
        await collector.upload(target, [event("lamp-1", now_ms(), "lamp_restored", "info", cleared="lamp_failure")])


async def follow_at(page: Page, collector: Collector, names: list[str], target: str, shot: Shot) -> None:
    """The commune view at `page`'s size: a batch that fails `target`'s lamp changes its row alone, by a delta."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/control/api/communes/" in r.url else None)
    # what the browser's EventSources receive, as the browser saw it (CDP: Network.eventSourceMessageReceived)
    messages: list[dict[str, Any]] = []
    cdp = await page.context.new_cdp_session(page)
    cdp.on("Network.eventSourceMessageReceived", lambda m: messages.append(m))
    await cdp.send("Network.enable")
    await page.goto(collector.url + f"/control/#/commune/{INSEE}")
    row = page.locator(f"#cabinets tr[data-key='{target}']")
    await expect(row).to_contain_text("en ligne")
    # mark every row: a row rebuilt loses its mark
    await page.evaluate("document.querySelectorAll('#cabinets tr[data-key]').forEach((tr) => { tr.__mark = 1; })")
    before = len(messages)
    await collector.upload(target, [event("lamp-1", now_ms(), "lamp_failure", "major", commanded_pct=100)])
    await expect(row.locator("td").nth(6)).to_have_text("1")  # the faults column
    deltas = [m for m in messages[before:] if m["eventName"] == "delta"]
    assert deltas, messages[before:]
    rebuilt = await page.evaluate(
        "[...document.querySelectorAll('#cabinets tr[data-key]')].filter((tr) => !tr.__mark).map((tr) => tr.dataset.key)")
    assert target in rebuilt and not set(rebuilt) & (set(names) - {target}), rebuilt
    first = next(m for m in messages if m["eventName"] == "commune")
    sizes = [len(m["data"]) for m in deltas]
    print(f"{(page.viewport_size or {}).get('width')}px: commune document {len(first['data'])} B, deltas {sizes} B")
    assert max(sizes) < 2000 and max(sizes) * 3 < len(first["data"]), sizes
    # the document was never fetched: the commune's API was asked for its stream only (the shell may
    # render the view again while it loads, e.g. once the operator's roles are known: it then closes its
    # stream and opens another, each open before the batch), and no whole document came after the batch
    assert requests and set(requests) == {collector.url + f"/control/api/communes/{INSEE}/stream"}, requests
    assert not [m for m in messages[before:] if m["eventName"] == "commune"], messages[before:]
    assert await page.evaluate("Number(document.body.dataset.communeUpdates)") >= 2
    await page.locator("#detail").scroll_into_view_if_needed()
    await shot(page, "commune-live")
    await no_horizontal_scroll(page)
    assert not errors(page), errors(page)
    names_in_page = await page.evaluate("[...document.querySelectorAll('#cabinets tr[data-key]')].map((tr) => tr.dataset.key)")
    assert set(names) <= set(names_in_page)


async def test_leaving_the_commune_closes_its_stream(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin,
) -> None:
    name = unique_name("gw-live")
    await collector.add_gateway(name, INSEE, 47.27, 5.06)
    page = await new_page(1366, 768)
    # every EventSource the page opens, to see which are still open
    await page.add_init_script("""(() => { const Real = window.EventSource; window.__sources = [];
        window.EventSource = class extends Real { constructor(...a) { super(...a); window.__sources.push(this); } }; })()""")
    await operator_login(page)
    await page.goto(collector.url + f"/control/#/commune/{INSEE}")
    await expect(page.locator(f"#cabinets tr[data-key='{name}']")).to_be_visible()
    open_ = "window.__sources.filter((s) => s.readyState !== 2).map((s) => new URL(s.url).pathname)"
    assert sorted(await page.evaluate(open_)) == ["/control/api/communes/21355/stream", "/control/api/stream"]
    await page.evaluate("location.hash = '#/'")
    await expect(page.locator("#detail h3")).to_have_text("Dijon Métropole")
    assert await page.evaluate(open_) == ["/control/api/stream"]
    await page.evaluate("location.hash = '#/commune/99999'")  # an unknown commune says so
    await expect(page.locator("#detail [role=alert]")).to_contain_text("99999")
    assert await page.evaluate(open_) == ["/control/api/stream"]  # the browser does not retry a 404
    failures = [e for e in errors(page) if "99999" not in e]
    assert not failures, failures
