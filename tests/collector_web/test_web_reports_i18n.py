"""What residents read from the reports service in French by default and in English on request
(?lang=en or Accept-Language): report types, notes and notices, Open311 errors in JSON and XML,
the errors of unknown paths, and the resident's follow page."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from web_testkit import Web

from collector.i18n import accept_language
from collector.reports.routes import FOLLOW_PAGE_HEADER

DIJON = "21231"
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"}


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("fr-FR,fr;q=0.9", "fr"), ("en-US,en;q=0.9", "en"), ("de-DE,de;q=0.9", None),
    ("de, en;q=0.5, fr;q=0.8", "fr"), ("fr;q=0, en", "en"), ("*", "fr"), ("en;q=abc, fr;q=0.1", "fr"),
    ("EN", "en"),
])
def test_accept_language_picks_the_preferred_supported_language(header: str | None, expected: str | None) -> None:
    assert accept_language(header) == expected


async def test_report_types_are_french_by_default_and_english_on_request(web: Web) -> None:
    fr = {s["service_code"]: s for s in (await web.get("/open311/v2/services.json")).doc}
    assert (fr["lamp-out"]["service_name"], fr["pothole"]["group"]) == ("Lampadaire éteint ou défectueux", "Voirie")
    for en_reply in (await web.get("/open311/v2/services.json?lang=en"),
                     await web.get("/open311/v2/services.json", headers=ENGLISH)):
        en = {s["service_code"]: s for s in en_reply.doc}
        assert (en["lamp-out"]["service_name"], en["pothole"]["group"]) == ("Street lamp out or faulty", "Roads")
        assert en.keys() == fr.keys()
    # ?lang wins over the browser's language
    assert (await web.get("/open311/v2/services.json?lang=fr", headers=ENGLISH)).doc[0]["service_name"] == \
        fr["lamp-out"]["service_name"]
    definition = (await web.get("/open311/v2/services/lamp-out.json?lang=en")).doc
    symptom = definition["attributes"][1]
    assert symptom["description"] == "What you see"
    assert [(v["key"], v["name"]) for v in symptom["values"]][:2] == [("off", "Off"), ("flashing", "Flashing")]


async def test_open311_errors_in_both_languages_and_both_formats(web: Web) -> None:
    bad = {"jurisdiction_id": DIJON, "service_code": "pothole", "lat": "north", "long": "5.04"}
    fr = await web.request("POST", "/open311/v2/requests.json", data=bad)
    en = await web.request("POST", "/open311/v2/requests.json", data=bad, headers=ENGLISH)
    assert (fr.status, en.status) == (400, 400)
    assert [e["description"] for e in fr.doc] == ["lat 'north' n'est pas un nombre"]
    assert [e["description"] for e in en.doc] == ["lat 'north' is not a number"]
    xml = await web.request("POST", "/open311/v2/requests.xml?lang=en", data=bad)
    root = ET.fromstring(xml.text)
    assert (root.tag, root.findtext("error/description")) == ("errors", "lat 'north' is not a number")
    xml = await web.request("POST", "/open311/v2/requests.xml", data=bad)
    assert ET.fromstring(xml.text).findtext("error/description") == "lat 'north' n'est pas un nombre"
    # errors the router raises itself: an unknown request, an unknown path, a wrong method
    for path, method, status, french, english in (
        ("/open311/v2/requests/424242.json", "GET", 404, "la demande service_request_id 424242 est introuvable",
         "service_request_id 424242 was not found"),
        ("/open311/v2/nowhere.json", "GET", 404, "GET /open311/v2/nowhere.json : adresse inconnue",
         "GET /open311/v2/nowhere.json: not found"),
        ("/open311/v2/services.json", "DELETE", 405, "méthode non permise", "method not allowed"),
    ):
        fr = await web.request(method, path)
        en = await web.request(method, path, headers=ENGLISH)
        assert (fr.status, en.status) == (status, status), path
        assert french in fr.doc[0]["description"] and english in en.doc[0]["description"], path
        assert fr.doc[0]["code"] == status


async def test_a_nul_in_an_open311_parameter_is_said_in_the_residents_language(web: Web) -> None:
    for headers, words in (({}, "le paramètre 'jurisdiction_id' (query) contient un caractère NUL"),
                           (ENGLISH, "query parameter 'jurisdiction_id' holds a NUL")):
        reply = await web.request("GET", "/open311/v2/requests.json?jurisdiction_id=21%00231", headers=headers)
        assert reply.status == 400
        assert [(e["code"], e["description"]) for e in reply.doc] == [(400, words)]
    # elsewhere the problem document, as before
    reply = await web.request("GET", "/opendata/v1/communes/daily.json?commune=21%00231")
    assert reply.status == 400 and reply.doc["parameter"] == "commune"


async def test_notes_and_notices_follow_the_language_an_operators_note_stays_as_written(web: Web) -> None:
    ops = await web.add_operator()
    reply = await web.request("POST", "/open311/v2/requests.json", data={
        "jurisdiction_id": DIJON, "service_code": "graffiti", "address_string": "Rue de la Liberté"})
    rid = reply.doc[0]["service_request_id"]
    [fr] = (await web.get(f"/open311/v2/requests/{rid}.json")).doc
    [en] = (await web.get(f"/open311/v2/requests/{rid}.json", headers=ENGLISH)).doc
    assert (fr["status_notes"], fr["service_name"]) == ("Signalement reçu.", "Tag")
    assert (en["status_notes"], en["service_name"]) == ("Report received.", "Graffiti")
    await web.request("POST", f"/api/v1/reports/{rid}/state", json={"state": "dispatched"}, headers=ops)
    [en] = (await web.get(f"/open311/v2/requests/{rid}.json?lang=en")).doc
    assert en["status_notes"] == "Repair scheduled."
    await web.request("POST", f"/api/v1/reports/{rid}/state", json={"state": "dispatched", "note": "Passage lundi"},
                      headers=ops)
    [en] = (await web.get(f"/open311/v2/requests/{rid}.json?lang=en")).doc
    assert en["status_notes"] == "Passage lundi"
    discovery = (await web.get("/open311/discovery.json?lang=en")).doc
    assert discovery["key_service"].startswith("No API key is needed")
    assert (await web.get("/open311/discovery.json")).doc["key_service"].startswith("Aucune clé")


async def test_the_residents_page_in_french_and_english(web: Web) -> None:
    ops = await web.add_operator()
    reply = await web.request("POST", "/open311/v2/requests.json", data={
        "jurisdiction_id": DIJON, "service_code": "pothole", "address_string": "12 rue de la Liberté",
        "email": "zephirine@example.org", "first_name": "Zéphirine"})
    rid = reply.doc[0]["service_request_id"]
    page_path, _, fragment = reply.headers[FOLLOW_PAGE_HEADER].partition("#")
    assert page_path == f"/open311/follow/{rid}" and fragment.startswith("token=cgf_")
    fr = await web.get(page_path)
    assert (fr.status, fr.content_type) == (200, "text/html")
    assert f"Votre signalement n° {rid}" in fr.text and "En cours de traitement" in fr.text
    assert "Signalement reçu." in fr.text and "12 rue de la Liberté" in fr.text and 'lang="fr"' in fr.text
    # never who reported it
    assert "zephirine" not in fr.text.lower()
    await web.request("POST", f"/api/v1/reports/{rid}/state", json={"state": "resolved", "note": "Trou rebouché"},
                      headers=ops)
    en = await web.get(page_path, headers=ENGLISH)
    assert f"Your report no. {rid}" in en.text and "Closed" in en.text and "Trou rebouché" in en.text
    assert 'lang="en"' in en.text and en.headers["Content-Language"] == "en"
    # a text typed by a resident cannot become markup on the page
    reply = await web.request("POST", "/open311/v2/requests.json", data={
        "jurisdiction_id": DIJON, "service_code": "pothole", "address_string": "<script>alert(1)</script>"})
    page = await web.get(f"/open311/follow/{reply.doc[0]['service_request_id']}")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    missing = await web.get("/open311/follow/424242")
    assert missing.status == 404 and "introuvable" in missing.doc[0]["description"]
