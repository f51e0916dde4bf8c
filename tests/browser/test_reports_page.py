"""Residents' reports on the control-centre page, in Chromium against a real collector: the work queue lists
a resident's report and maps it by state; an operator opens it, writes a public note, assigns it to
themself and moves it to resolved, each confirmed, and the resident's own page, open beside it, shows the
change live; a viewer sees no action; English too; no sideways scrolling on a phone; axe-core finds
nothing serious. Screenshots at the three sizes go to test-artifacts/."""

from __future__ import annotations

from typing import Any

from browser_kit import SIZES, Collector, axe_check, errors, no_horizontal_scroll, unique_name
from playwright.async_api import Page, expect

DIJON = "21231"


async def resident_report(collector: Collector, **fields: str) -> tuple[str, str]:
    """A resident sends a report over Open311; its id and the resident's follow page (token in the fragment)."""
    form = {"jurisdiction_id": DIJON, "service_code": "pothole", "lat": "47.3221", "long": "5.0415",
            "address_string": f"12 rue de la Liberté ({unique_name('n')})", "description": "Trou profond",
            "email": "zephirine@example.org", "first_name": "Zéphirine", **fields}
    async with collector.session.post(collector.url + "/open311/v2/requests.json", data=form) as resp:
        doc: Any = await resp.json()
        assert resp.status == 201, doc
        return doc[0]["service_request_id"], resp.headers["Citygate-Follow-Page"]


async def visit(page: Page, collector: Collector, hash_: str) -> None:
    """Load the page at a route afresh (not a hash change from the overview the login lands on: the
    overview's first summary may still be on its way, and it writes into a view that is gone)."""
    await page.goto("about:blank")
    await page.goto(f"{collector.url}/control/#/{hash_}")


async def confirm(page: Page, note: str | None = None) -> None:
    dialog = page.locator("dialog.cg-dialog")
    await expect(dialog).to_be_visible()
    if note is not None:
        await dialog.locator("textarea, input").first.fill(note)
    await dialog.locator("button[type=submit]").click()
    await expect(dialog).to_have_count(0)


async def test_an_operator_resolves_a_report_and_the_residents_page_changes(collector: Collector, new_page, operator_login, shot) -> None:  # type: ignore[no-untyped-def]
    rid, follow = await resident_report(collector)
    resident = await new_page(390, 844)
    await resident.goto(collector.url + follow)
    await expect(resident.locator("#status")).to_have_text("En cours de traitement")
    await expect(resident.locator("#note")).to_have_text("Signalement reçu.")
    await shot(resident, "resident-received")

    page = await new_page(1366, 768)
    operator = await operator_login(page, ["operator"])
    await visit(page, collector, "reports")
    row = page.locator(f"table.report-table tr[data-report='{rid}']")
    await expect(row).to_contain_text("Nid-de-poule")
    await expect(row).to_contain_text("Reçu")
    await expect(page.locator(".report-map .leaflet-interactive").first).to_be_visible()  # mapped by state
    await row.locator("a").click()
    detail = page.locator(".report-detail")
    await expect(detail).to_contain_text(f"Signalement n° {rid}")
    await expect(detail).to_contain_text("zephirine@example.org")  # operators see who reported it

    # a public note without a move, then assigned to themself, then resolved: each confirmed
    await detail.locator("button[data-action=note]").click()
    await confirm(page, "Équipe voirie prévenue")
    await expect(resident.locator("#note")).to_have_text("Équipe voirie prévenue")  # live, no reload
    await detail.locator("button[data-action=assign]").click()
    await confirm(page)
    await expect(detail.locator("[data-fact=assigned]")).to_have_text(operator)
    await detail.locator("button[data-to=resolved]").click()
    await confirm(page, "Trou rebouché")
    await expect(detail.locator(".pills")).to_contain_text("Résolu")
    await expect(detail.locator(".pills")).to_contain_text("Public : clos")
    await expect(page.locator("#toasts")).to_contain_text(f"Signalement {rid} : Résolu")
    await expect(detail.locator(".report-history")).to_contain_text(operator)
    # the resident's page, open all along, shows it closed with the note
    await expect(resident.locator("#status")).to_have_text("Terminé")
    await expect(resident.locator("#note")).to_have_text("Trou rebouché")
    await shot(resident, "resident-closed")
    await axe_check(resident)
    await no_horizontal_scroll(resident)
    # a resolved report may only be reopened
    await expect(detail.locator("button[data-to]")).to_have_count(1)
    await expect(detail.locator("button[data-to=received]")).to_be_visible()
    assert not errors(page), errors(page)
    assert not errors(resident), errors(resident)


async def test_the_queue_and_a_report_at_three_sizes_in_both_languages(collector: Collector, new_page, operator_login, shot) -> None:  # type: ignore[no-untyped-def]
    rid, _ = await resident_report(collector, service_code="graffiti", lat="47.3250", long="5.0300")
    await resident_report(collector, service_code="lamp-out", lat="47.3180", long="5.0450")
    for width, height in SIZES:
        page = await new_page(width, height)
        await operator_login(page, ["operator"])
        await visit(page, collector, "reports")
        await expect(page.locator(f"tr[data-report='{rid}']")).to_be_visible()
        await expect(page.locator(".report-counts")).to_contain_text("sur")
        await shot(page, "queue")
        await no_horizontal_scroll(page)
        await axe_check(page)
        await visit(page, collector, f"report/{rid}")
        await expect(page.locator(".report-detail")).to_contain_text("Tag")
        await expect(page.locator(".report-detail button[data-to=dispatched]")).to_be_visible()
        await shot(page, "report")
        await no_horizontal_scroll(page)
        await axe_check(page)
        assert not errors(page), errors(page)

    english = await new_page(1366, 768, lang="en-GB")
    await operator_login(english, ["operator"])
    await visit(english, collector, f"report/{rid}")
    await expect(english.locator(".report-detail")).to_contain_text(f"Report no. {rid}: Graffiti")
    await expect(english.locator(".report-detail button[data-to=in_progress]")).to_have_text("In progress")
    await visit(english, collector, "reports")
    await expect(english.locator("#reports-title")).to_have_text("Residents' reports")
    await shot(english, "queue-en")


async def test_a_viewer_reads_the_queue_but_has_no_action(collector: Collector, new_page, operator_login) -> None:  # type: ignore[no-untyped-def]
    rid, _ = await resident_report(collector)
    page = await new_page(1366, 768)
    await operator_login(page, ["viewer"])
    await visit(page, collector, f"report/{rid}")
    detail = page.locator(".report-detail")
    await expect(detail).to_contain_text("Consultation seule")
    await expect(detail.locator("button")).to_have_count(0)
