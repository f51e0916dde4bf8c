"""The control-centre shell in Chromium against a real collector with a login: French by default and
English by the browser or the switch, the navigation, times in Europe/Paris whatever the browser's zone,
no sideways scrolling on a phone, touch-sized controls, the open alarms above the fold, the confirmation
dialog and the toasts, and an axe-core pass. Screenshots at the three sizes go to test-artifacts/."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from browser_kit import (
    SIZES,
    AxeCheck,
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

PARIS = ZoneInfo("Europe/Paris")
ROUTES = ["", "map", "alarms", "reports", "commune/21231", "no-such-page"]


async def seed(collector: Collector) -> tuple[str, int]:
    """One cabinet in Dijon with a lamp that failed two minutes ago; its name and the failure's instant."""
    name = unique_name("gw-shell")
    await collector.add_gateway(name, "21231", 47.3221, 5.0415, cabinet=name.upper())
    at = now_ms() - 120_000
    await collector.upload(name, [sample("lamp-1", at - 1000, lamp_on=True, power_w=61.0),
                                  event("lamp-1", at, "lamp_failure", "major", commanded_pct=100, power_w=0.4)])
    return name, at


async def open_overview(page: Page, collector: Collector, operator_login: OperatorLogin) -> None:
    await operator_login(page)
    await page.goto(collector.url + "/control/#/")
    await page.wait_for_function("Number(document.body.dataset.updates) >= 1 && document.querySelector('#live').dataset.state === 'open'")


async def test_french_by_default_english_by_the_switch_and_kept(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin,
) -> None:
    await seed(collector)
    page = await new_page(1366, 768, "fr-FR")
    await open_overview(page, collector, operator_login)
    assert await page.get_attribute("html", "lang") == "fr"
    await expect(page.locator("#nav a[data-route='']")).to_have_text("Vue d'ensemble")
    await expect(page.locator("#kpi-online h2")).to_have_text("Passerelles en ligne")
    await expect(page.locator("#territory")).to_have_text("Dijon Métropole — centre de contrôle")
    assert await page.get_attribute("#lang button[data-lang=fr]", "aria-pressed") == "true"
    await expect(page.locator("#alarm-widget")).to_contain_text("Lampe en panne")
    for panel, title in (("traffic", "Circulation"), ("cameras", "Caméras"), ("parking", "Stationnement")):
        await expect(page.locator(f"#{panel} h2")).to_have_text(title)
    await expect(page.locator("#traffic")).to_contain_text("aucun comptage reçu")

    updates = await page.evaluate("Number(document.body.dataset.updates)")
    await page.click("#lang button[data-lang=en]")
    await expect(page.locator("#kpi-online h2")).to_have_text("Gateways online")
    assert await page.get_attribute("html", "lang") == "en"
    await expect(page.locator("#nav a[data-route='']")).to_have_text("Overview")
    await expect(page.locator("#territory")).to_have_text("Dijon Métropole — control centre")
    await expect(page.locator("#alarm-widget")).to_contain_text("Lamp failure")
    assert await page.get_attribute("#lang button[data-lang=en]", "aria-pressed") == "true"
    for panel, title in (("traffic", "Traffic"), ("cameras", "Cameras"), ("parking", "Parking")):
        await expect(page.locator(f"#{panel} h2")).to_have_text(title)
    await expect(page.locator("#traffic")).to_contain_text("no count received")
    await expect(page.locator("#faults thead")).to_contain_text("Since")
    assert await page.evaluate("Number(document.body.dataset.updates)") > updates  # re-rendered, not reloaded
    assert await page.title() == "Control centre — citygate"

    await page.reload()  # the choice is kept
    await expect(page.locator("#kpi-online h2")).to_have_text("Gateways online")
    # and the login form speaks it too, though the browser asks for French
    await page.click("#who button[type=submit]")
    await page.wait_for_url("**/control/login")
    await expect(page.locator("label[for=token]")).to_have_text("Operator token")
    assert await page.get_attribute("html", "lang") == "en"
    await open_overview(page, collector, operator_login)
    await expect(page.locator("#kpi-online h2")).to_have_text("Gateways online")
    await page.click("#lang button[data-lang=fr]")
    await expect(page.locator("#kpi-online h2")).to_have_text("Passerelles en ligne")
    assert not errors(page), errors(page)


async def test_an_english_browser_gets_english_without_asking(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin,
) -> None:
    page = await new_page(1366, 768, "en-GB")
    await open_overview(page, collector, operator_login)
    assert await page.get_attribute("html", "lang") == "en"
    await expect(page.locator("#kpi-alarms h2")).to_have_text("Open alarms")
    await expect(page.locator("#nav a[data-route=reports]")).to_have_text("Reports")
    # and a browser in another language gets French
    other = await new_page(1366, 768, "de-DE")
    await open_overview(other, collector, operator_login)
    await expect(other.locator("#kpi-alarms h2")).to_have_text("Alarmes ouvertes")
    assert not errors(page) and not errors(other), errors(page) + errors(other)


async def test_navigation_marks_the_route_and_an_unknown_one_says_so(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin,
) -> None:
    page = await new_page(1366, 768)
    name = await operator_login(page)
    await page.goto(collector.url + "/control/#/")
    await expect(page.locator("#operator-name")).to_have_text(name)
    assert await page.evaluate("CG.me.name") == name
    assert await page.evaluate("Array.isArray(CG.me.roles) && CG.me.login")
    for route in ["map", "alarms", "reports", ""]:
        await page.click(f"#nav a[data-route='{route}']")
        await page.wait_for_function(f"location.hash === '#/{route}'")
        current = await page.evaluate("[...document.querySelectorAll('#nav a[aria-current=page]')].map(a => a.dataset.route)")
        assert current == [route]
        routed = await page.get_attribute("#view", "data-route")
        registered = await page.evaluate(f"CG.hasRoute({route!r})")
        assert routed == (route if registered else "unknown"), (route, routed)
    await expect(page.locator("#kpi-online")).to_be_visible()
    # the route of most segments wins, "*" matches one segment, the rest are arguments, decoded
    await page.evaluate("""() => {
        CG.route('probe', (el, args) => { el.dataset.probe = 'one:' + args.join('|'); });
        CG.route('probe/*/deep', (el, args) => { el.dataset.probe = 'deep:' + args.join('|'); });
    }""")
    for hash_, expected in (("#/probe/a%20b", "one:a b"), ("#/probe/x/deep/7", "deep:x|7"), ("#/probe/x/other", "one:x|other")):
        await page.evaluate(f"location.hash = '{hash_}'")
        await page.wait_for_function(f"document.querySelector('#view > .route-pane')?.dataset.probe === {expected!r}")
    await page.evaluate("location.hash = '#/no-such-page'")
    await expect(page.locator("#view h2")).to_have_text("Page introuvable")
    # the drill-down stays in the overview: a commune, from its disc on the schematic map
    await page.evaluate("location.hash = '#/'")
    await page.click("#map .commune[data-insee='21231']")
    await expect(page.locator("#detail h3")).to_have_text("Dijon")
    assert page.url.endswith("#/commune/21231")
    assert not errors(page), errors(page)
    # logging out ends the session: the page is the login form again
    await page.click("#who button[type=submit]")
    await page.wait_for_url("**/control/login")
    reply = await page.goto(collector.url + "/control/api/me")
    assert reply is not None and reply.status == 401


async def test_times_are_in_paris_whatever_the_browser_zone(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin,
) -> None:
    _, at = await seed(collector)
    page = await new_page(1366, 768, "fr-FR")
    await page.context.close()
    assert page.context.browser is not None
    context = await page.context.browser.new_context(
        viewport={"width": 1366, "height": 768}, locale="fr-FR", timezone_id="America/New_York")
    page = await context.new_page()
    try:
        await open_overview(page, collector, operator_login)
        assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
        expected = datetime.fromtimestamp(at / 1000, PARIS).strftime("%H:%M")
        await expect(page.locator("#faults tbody")).to_contain_text(expected)  # the lamp failed then
        # summer and winter time, both languages
        assert await page.evaluate("CG.fmtTime('2026-07-01T12:00:00Z', 'datetime')") == "01/07/2026 14:00"
        assert await page.evaluate("CG.fmtTime(Date.UTC(2026, 0, 15, 23, 30), 'time')") == "00:30"
        assert await page.evaluate("CG.fmtDate(Date.UTC(2026, 0, 15, 23, 30))") == "16/01/2026"
        assert await page.evaluate("CG.fmtNum(1234.5, 1)") == "1\u202f234,5"
        await page.click("#lang button[data-lang=en]")
        assert await page.evaluate("CG.fmtTime('2026-07-01T12:00:00Z', 'datetime')") == "01/07/2026, 14:00"
        assert await page.evaluate("CG.fmtDate('2026-12-04T23:30:00Z', 'long')") == "5 December 2026"
        assert await page.evaluate("CG.fmtNum(1234.5, 1)") == "1,234.5"
        assert await page.evaluate("CG.fmtNum(null)") == "—"
    finally:
        await context.close()


async def test_a_phone_never_scrolls_sideways_and_every_control_takes_a_finger(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin, shot: Shot,
) -> None:
    await seed(collector)
    page = await new_page(390, 844)
    await open_overview(page, collector, operator_login)
    nav = await page.evaluate("[...document.querySelectorAll('#nav a[data-route]')].map((a) => a.dataset.route)")
    assert {"", "map", "alarms", "reports"} <= set(nav)
    for route in dict.fromkeys([*nav, *ROUTES]):  # every route of the navigation, modules' own links included
        await page.evaluate(f"location.hash = '#/{route}'")
        await page.wait_for_function(f"document.querySelector('#view').dataset.route !== undefined && location.hash === '#/{route}'")
        await page.wait_for_timeout(300)  # a route may fetch before it draws: let it
        await no_horizontal_scroll(page)
    await page.evaluate("location.hash = '#/'")
    await page.wait_for_function("document.querySelectorAll('#detail tr.clickable').length > 0")
    # the header's controls and the rows that open a commune or a cabinet (the map's discs are too small on
    # a phone: the commune list under it is the way in by touch)
    small = await page.evaluate("""[...document.querySelectorAll('header a, header button, #view tr.clickable')]
        .filter((e) => e.offsetParent !== null)
        .map((e) => [e.textContent.trim().slice(0, 30), e.getBoundingClientRect()])
        .filter(([, r]) => r.width < 44 || r.height < 44).map(([name, r]) => `${name}: ${r.width}x${r.height}`)""")
    assert not small, small
    await page.evaluate("location.hash = '#/'")
    await page.wait_for_function("document.querySelector('#kpi-online') !== null")
    await shot(page, "overview")
    assert not errors(page), errors(page)


async def test_the_open_alarms_show_above_the_fold(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin, shot: Shot,
) -> None:
    await seed(collector)
    for width, height in SIZES:
        page = await new_page(width, height)
        await open_overview(page, collector, operator_login)
        box = await page.locator("#alarm-widget").bounding_box()
        assert box is not None
        if width >= 1366:
            # the heading and several rows of alarms are in the first screen
            assert box["y"] + 200 <= height, (width, height, box)
        await page.wait_for_timeout(200)
        await shot(page, "overview")
        await no_horizontal_scroll(page)
        assert not errors(page), errors(page)


async def test_confirm_dialog_traps_focus_and_esc_cancels(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin,
) -> None:
    page = await new_page(1366, 768)
    await open_overview(page, collector, operator_login)
    await page.evaluate("() => { window.__answer = CG.confirm({title: 'Éteindre ?', body: 'La lampe lamp-1 sera éteinte.', "
                        "confirmLabel: 'Éteindre', danger: true, reason: true}); }")
    dialog = page.locator("dialog.cg-dialog")
    await expect(dialog).to_be_visible()
    assert await dialog.get_attribute("aria-labelledby")
    assert await page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    for key in ["Tab"] * 4 + ["Shift+Tab"] * 4:  # focus cycles inside the dialog, both ways
        await page.keyboard.press(key)
        assert await page.evaluate("document.activeElement.closest('dialog') !== null"), key
    await page.keyboard.press("Escape")
    assert await page.evaluate("window.__answer") == {"ok": False, "reason": ""}
    await expect(dialog).to_have_count(0)

    await page.evaluate("() => { window.__answer = CG.confirm({title: 'Éteindre ?', body: 'x', confirmLabel: 'Éteindre', "
                        "reason: true}); }")
    await page.click("dialog.cg-dialog button[type=submit]")  # no reason yet: nothing happens
    await expect(page.locator("dialog.cg-dialog")).to_be_visible()
    await page.fill("dialog.cg-dialog textarea", "  travaux rue de la Liberté ")
    await page.click("dialog.cg-dialog button[type=submit]")
    assert await page.evaluate("window.__answer") == {"ok": True, "reason": "travaux rue de la Liberté"}

    await page.evaluate("CG.toast('Commande acquittée', 'ok')")
    await expect(page.locator("#toasts[aria-live=polite] .toast.ok")).to_have_text("Commande acquittée")
    problem = await page.evaluate("""CG.api('/control/api/cabinets/nope').then(() => null,
        (e) => ({name: e.name, status: e.status, type: e.type, title: e.title, detail: e.detail, is: e instanceof CG.ApiError}))""")
    assert problem["is"] and problem["status"] == 404 and problem["title"] == "Not Found" and "nope" in problem["detail"]
    assert problem["type"].endswith("unknown-gateway")
    assert not [e for e in errors(page) if "404" not in e], errors(page)


async def test_axe_finds_no_serious_violation_on_the_overview(
        collector: Collector, new_page: NewPage, operator_login: OperatorLogin, axe_check: AxeCheck, shot: Shot,
) -> None:
    await seed(collector)
    for lang, width, height in (("fr-FR", 1366, 768), ("en-GB", 390, 844)):
        page = await new_page(width, height, lang)
        await open_overview(page, collector, operator_login)
        await axe_check(page)
        await page.evaluate("location.hash = '#/commune/21231'")
        await page.wait_for_function("document.querySelector('#detail h3')?.textContent === 'Dijon'")
        await axe_check(page)
        await page.locator("#detail").scroll_into_view_if_needed()
        await shot(page, f"commune-{lang}")
