"""`citygate-collector lamps import`: each lamp's position from a file, idempotent, with errors that name
the line; on both stores (the real CLI in-process, click's runner)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collector.cli import main
from collector.positions import DevicePosition, device_positions
from collector.store import open_store


def run(*args: str, ok: bool = True) -> Result:
    done = CliRunner().invoke(main, list(args), terminal_width=80)
    assert (done.exit_code == 0) == ok, done.output
    return done


def positions(db_url: str) -> dict[tuple[str, str], tuple[float, float, str]]:
    async def read() -> dict[tuple[str, str], tuple[float, float, str]]:
        async with open_store(db_url) as store:
            return {k: (p.lat, p.lon, p.source) for k, p in (await device_positions(store)).items()}
    return asyncio.run(read())


def test_an_import_places_each_lamp_and_a_second_run_changes_nothing(db_url: str, tmp_path: Path) -> None:
    run("gateway", "add", "gw-a", "--commune", "21231", "--db", db_url, "--token-file", str(tmp_path / "t"))
    csv = tmp_path / "lamps.csv"
    csv.write_text("gateway;device;lat;lon\ngw-a;lamp-1;47,3211;5,0411\n\ngw-a;lamp-2;47.3212;5.0412\n",
                   encoding="utf-8-sig")
    assert run("lamps", "import", str(csv), "--db", db_url).stdout == "2 positions read from lamps.csv, 2 changed\n"
    assert run("lamps", "import", str(csv), "--db", db_url).stdout == "2 positions read from lamps.csv, 0 changed\n"
    as_json = tmp_path / "moved.json"
    as_json.write_text('[{"gateway": "gw-a", "device": "lamp-2", "lat": 47.3299, "lon": 5.0499}]')
    assert "1 changed" in run("lamps", "import", str(as_json), "--db", db_url).stdout
    assert positions(db_url) == {("gw-a", "lamp-1"): (47.3211, 5.0411, "import"),
                                 ("gw-a", "lamp-2"): (47.3299, 5.0499, "import")}
    audit = run("audit", "--db", db_url).stdout
    assert audit.count("lamps.import") == 2  # the run that changed nothing wrote nothing


@pytest.mark.parametrize(("text", "message"), [
    ("gateway,device,lat,lon\ngw-a,lamp-1,47.3,5.0\ngw-a,lamp-2,91,5.0\n", "lamps.csv, line 3: lat 91.0 is outside ±90"),
    ("gateway,device,lat,lon\ngw-a,lamp-1,47.3\n", "lamps.csv, line 2: 4 columns expected"),
    ("gateway,device,lat,lon\ngw-a,,47.3,5.0\n", "lamps.csv, line 2: device is missing"),
    ("gateway,device,lat,lon\ngw-a,lamp-1,north,5.0\n", "lamps.csv, line 2: lat 'north' is not a number"),
    ("gateway,device,lat,lon\ngw-b,lamp-1,47.3,5.0\n", "lamps.csv, line 2: no gateway named 'gw-b'"),
    ("device,gateway,lat,lon\n", "lamps.csv, line 1: the header must be gateway,device,lat,lon"),
])
def test_a_bad_line_is_refused_naming_it_and_nothing_is_written(db_url: str, tmp_path: Path, text: str,
                                                                message: str) -> None:
    run("gateway", "add", "gw-a", "--commune", "21231", "--db", db_url, "--token-file", str(tmp_path / "t"))
    csv = tmp_path / "lamps.csv"
    csv.write_text(text)
    out = run("lamps", "import", str(csv), "--db", db_url, ok=False).output
    assert message in out
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("Error"))
    assert positions(db_url) == {}


def test_a_bad_json_item_is_named(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "lamps.json"
    path.write_text('{"positions": [{"gateway": "gw-a", "device": "l1", "lat": 47, "lon": 5}, {"gateway": "gw-a"}]}')
    assert "lamps.json, item 1: device is missing" in run("lamps", "import", str(path), "--db", db_url, ok=False).output
    path.write_text("[1, 2")
    assert "not valid JSON" in run("lamps", "import", str(path), "--db", db_url, ok=False).output


async def test_the_store_api_for_bulk_provisioning_counts_what_changed(db_url: str) -> None:
    async with open_store(db_url) as store:
        rows = [DevicePosition("gw-a", f"lamp-{i}", 47.3 + i / 10_000, 5.0) for i in range(1200)]
        assert await store.set_device_positions(rows, 1_000) == 1200  # more rows than one statement holds
        assert await store.set_device_positions(rows, 2_000) == 0
        assert await store.set_device_positions([DevicePosition("gw-a", "lamp-5", 47.0, 5.0)], 3_000) == 1
        imported = await store.imported_positions()
        assert len(imported) == 1200 and imported[("gw-a", "lamp-5")] == (47.0, 5.0, 3_000)
        assert imported[("gw-a", "lamp-6")][2] == 1_000  # untouched rows keep their time
        with pytest.raises(Exception, match="lat 99"):
            await store.set_device_positions([DevicePosition("gw-a", "lamp-1", 99, 5.0)], 4_000)
