"""The territory is data: loaded from configs/, validated, and former communes aggregate into
the commune they merged into."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from collector_testkit import CLI, Running, assert_problem, batch_body, cli, sample

from collector.model import RecordCounts
from collector.territory import DEFAULT_PATH, TerritoryError, load_territory, parse_territory
from tests.vectors import load_vectors


def test_territory_file_lists_the_23_communes_with_their_centres() -> None:
    territory = load_territory(DEFAULT_PATH)
    assert len(territory.communes) == 23
    facts = load_vectors("communes.json")  # the facts the territory file is built from
    for c in facts["communes"]:
        commune = territory.communes[c["insee"]]
        assert (commune.name, commune.lat, commune.lon) == (c["name"], c["lat"], c["lon"])
    assert territory.communes["21231"].name == "Dijon"


def test_former_communes_resolve_to_neuilly_crimolois() -> None:
    territory = load_territory(DEFAULT_PATH)
    assert territory.resolve("21452") == territory.communes["21452"]  # Neuilly-lès-Dijon kept its code
    assert territory.resolve("21213") == territory.communes["21452"]  # Crimolois
    assert territory.communes["21452"].name == "Neuilly-Crimolois"
    assert territory.resolve("75056") is None  # Paris is not in the metropolis
    assert "21213" not in territory.communes


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "territory": "T",
        "communes": [{"insee": "21231", "name": "Dijon", "lat": 47.3, "lon": 5.0},
                     {"insee": "21452", "name": "Neuilly-Crimolois", "lat": 47.2, "lon": 5.1}],
        "former_communes": [{"insee": "21213", "name": "Crimolois", "merged_into": "21452"}],
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ([], ""),
        (_doc(communes=[]), "communes"),
        (_doc(communes=[{"insee": "2123", "name": "Dijon", "lat": 47.3, "lon": 5.0}]), "communes[0].insee"),
        (_doc(communes=[{"insee": "21231", "name": "", "lat": 47.3, "lon": 5.0}]), "communes[0].name"),
        (_doc(communes=[{"insee": "21231", "name": "Dijon", "lat": "47.3", "lon": 5.0}]), "communes[0].lat"),
        (_doc(communes=[{"insee": "21231", "name": "Dijon", "lat": 147.3, "lon": 5.0}]), "communes[0]"),
        (_doc(communes=[{"insee": "21231", "name": "Dijon", "lat": 47.3, "lon": 5.0}] * 2), "communes[1].insee"),
        (_doc(former_communes=[{"insee": "21213", "name": "Crimolois", "merged_into": "99999"}]),
         "former_communes[0].merged_into"),
        (_doc(former_communes=[{"insee": "21231", "name": "Dijon", "merged_into": "21452"}]),
         "former_communes[0].insee"),
    ],
)
def test_a_bad_territory_is_refused_naming_the_key(doc: Any, key: str) -> None:
    with pytest.raises(TerritoryError) as err:
        parse_territory(doc, "territory.json")
    assert err.value.key == key
    assert str(err.value).startswith("territory.json")


def test_gateway_add_refuses_an_unknown_commune_and_maps_a_former_one(db_url: str) -> None:
    bad = cli("gateway", "add", "gw-paris", "--commune", "75056", "--db", db_url, check=False)
    assert bad.returncode != 0
    assert "75056" in bad.stderr and bad.stdout == ""
    ok = cli("gateway", "add", "gw-crimolois", "--commune", "21213", "--db", db_url)
    assert "merged into 21452" in ok.stderr
    listing = cli("gateway", "list", "--db", db_url).stdout
    assert "gw-crimolois" in listing and "21452" in listing and "21213" not in listing
    assert "gw-paris" not in listing


def test_serve_refuses_a_broken_territory_file(db_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "territory.json"
    broken.write_text('{"territory": "T", "communes": [{"insee": "1"}]}')
    result = subprocess.run([CLI, "serve", "--db", db_url, "--port", "0", "--territory", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "communes[0].insee" in result.stderr


async def test_batch_from_a_former_commune_code_is_accepted_and_aggregates_into_the_new_one(
    running: Running,
) -> None:
    gw, token = await running.add_gateway("gw-crimolois", "21452")
    body = batch_body(gw.name, [sample(1, lamp_on=True)], commune="21213")
    status, _, doc = await running.client.post(body, token)
    assert (status, doc["stored"]) == (200, 1)
    day = "2025-12-01"
    status, _, doc = await running.client.get(f"/api/v1/communes/21452/rollups/day?from={day}&to={day}")
    assert status == 200 and doc["commune"] == "21452"
    assert [(b["bucket"], b["samples"], b["lamps_on"]) for b in doc["buckets"]] == [(day, 1, 1)]
    # asking by the former code gives the merged commune's figures
    _, _, by_old_code = await running.client.get(f"/api/v1/communes/21213/rollups/day?from={day}&to={day}")
    assert by_old_code["buckets"] == doc["buckets"]


async def test_batch_for_an_unknown_or_another_commune_is_refused(running: Running) -> None:
    gw, token = await running.add_gateway("gw-dijon", "21231")
    status, ctype, problem = await running.client.post(batch_body(gw.name, [sample(1)], commune="75056"), token)
    assert_problem(status, ctype, problem, 400)
    assert problem["pointer"] == "/commune"
    status, ctype, problem = await running.client.post(batch_body(gw.name, [sample(1)], commune="21617"), token)
    assert_problem(status, ctype, problem, 403)
    assert problem["pointer"] == "/commune"
    assert await running.store.count_records() == RecordCounts(0, 0)


async def test_communes_endpoint_lists_the_territory(running: Running) -> None:
    status, _, doc = await running.client.get("/api/v1/communes")
    assert status == 200
    assert len(doc["communes"]) == 23
    assert {"insee": "21213", "merged_into": "21452"} in doc["former_communes"]
