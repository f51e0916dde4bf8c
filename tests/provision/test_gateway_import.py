"""`citygate-collector gateway import`: a fleet from one inventory, idempotent, on both stores."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.store import open_store
from collector.tokens import hash_token

COMMUNES = ["21231", "21166", "21617"]  # Dijon, Chenôve, Talant


def inventory(n: int, lamps: int = 3) -> list[dict[str, object]]:
    return [{
        "gateway": f"gw-{i:04d}", "cabinet": f"C-{i:04d}", "commune": COMMUNES[i % 3],
        "lat": 47.3 + i * 1e-4, "lon": 5.0 + i * 1e-4,
        "lamps": [{"id": f"L-{i:04d}-{k}", "lat": 47.3 + i * 1e-4, "lon": 5.0 + k * 1e-5} for k in range(lamps)]
                 + [f"L-{i:04d}-nopos"],
    } for i in range(n)]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_import_twice_changes_nothing_then_updates_a_changed_row(db_url: str, tmp_path: Path) -> None:
    inv = tmp_path / "fleet.json"
    inv.write_text(json.dumps(inventory(40)))
    tokens = tmp_path / "tokens"
    code, out = run("gateway", "import", str(inv), "--tokens-dir", str(tokens), "--db", db_url)
    assert code == 0, out
    assert "40 gateways: 40 added, 0 updated, 0 unchanged" in out
    assert "160 lamps; 120 with a position (120 new or moved)" in out
    files = sorted(tokens.iterdir())
    assert len(files) == 40 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    before = {f.name: f.read_text() for f in files}

    code, out = run("gateway", "import", str(inv), "--tokens-dir", str(tokens), "--db", db_url)
    assert code == 0, out
    assert "40 gateways: 0 added, 0 updated, 40 unchanged" in out and "(0 new or moved)" in out
    assert {f.name: f.read_text() for f in sorted(tokens.iterdir())} == before

    changed = inventory(40)
    changed[7]["commune"] = "21617"
    changed[7]["lat"] = 47.4
    changed[9]["lamps"] = [{"id": "L-0009-0", "lat": 47.35, "lon": 5.05}]
    inv.write_text(json.dumps(changed))
    code, out = run("gateway", "import", str(inv), "--tokens-dir", str(tokens), "--db", db_url)
    assert code == 0, out
    assert "40 gateways: 0 added, 1 updated, 39 unchanged" in out and "(1 new or moved)" in out

    async def check() -> None:
        async with open_store(db_url) as store:
            gw = await store.gateway("gw-0007")
            assert gw is not None and (gw.commune, gw.lat, gw.cabinet) == ("21617", 47.4, "C-0007")
            # the token written for it opens the registry, and the MQTT password hash is kept
            token = (tokens / "gw-0007.token").read_text().strip()
            assert (await store.gateway_for_token(hash_token(token))) == gw
            assert ("gw-0007" in dict(await store.mqtt_passwords()))
            assert (await store.imported_positions())[("gw-0009", "L-0009-0")][:2] == (47.35, 5.05)

    import asyncio
    asyncio.run(check())


def test_every_problem_is_named_with_its_line_and_field_and_nothing_is_imported(db_url: str, tmp_path: Path) -> None:
    inv = tmp_path / "fleet.csv"
    inv.write_text(
        "gateway,cabinet,commune,lat,lon,lamps\n"
        "gw-a,C-1,21231,47.3,5.0,L1 L2\n"
        "gw b,C-2,21231,47.3,5.0,\n"          # line 3: bad name
        "gw-c,C-3,99999,47.3,5.0,\n"          # line 4: no such commune
        "gw-d,C-4,21231,95,5.0,\n"            # line 5: lat out of range
        "gw-e,C-5,21231,47.3,,\n"             # line 6: lat without lon
        "gw-a,C-6,21231,47.3,5.0,L1;L1\n"     # line 7: lamp twice, and gw-a twice
    )
    code, out = run("gateway", "import", str(inv), "--tokens-dir", str(tmp_path / "t"), "--db", db_url)
    assert code != 0
    assert "line 3, gateway: 'gw b'" in out
    assert "line 4, commune: '99999' is no commune" in out
    assert "line 5, lat: lat 95.0 is outside ±90" in out
    assert "line 6, lon: missing" in out
    assert "line 7, lamps[2]: lamp 'L1' is listed twice" in out
    assert "nothing imported" in out
    code, out = run("gateway", "list", "--db", db_url)
    assert "gw-a" not in out


def test_a_csv_fleet_with_former_commune_and_unknown_column(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    bad = tmp_path / "bad.csv"
    bad.write_text("gateway,commune,colour\ngw-a,21231,red\n")
    code, out = run("gateway", "import", str(bad), "--tokens-dir", str(tmp_path / "t"), "--db", db)
    assert code != 0 and "line 1 (header): unknown column 'colour'" in out
    good = tmp_path / "ok.csv"
    good.write_text("cabinet,commune,lat,lon,lamps\nC-0001,21231,47.32,5.04,L-1;L-2\n")
    code, out = run("gateway", "import", str(good), "--tokens-dir", str(tmp_path / "t"), "--db", db)
    assert code == 0, out
    assert "1 gateways: 1 added" in out and (tmp_path / "t" / "C-0001.token").exists()


@pytest.mark.parametrize("n", [1500])
def test_the_metropolis_is_one_command(tmp_path: Path, n: int) -> None:
    """1,500 gateways and 34,500 lamps with positions through the installed command, in one process."""
    inv = tmp_path / "fleet.json"
    inv.write_text(json.dumps(inventory(n, lamps=22)))
    db = str(tmp_path / "metro.db")
    argv = [str(Path(sys.executable).parent / "citygate-collector"), "gateway", "import", str(inv),
            "--tokens-dir", str(tmp_path / "tokens"), "--db", db]
    t0 = time.perf_counter()
    first = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    assert first.returncode == 0, first.stderr
    assert f"{n} gateways: {n} added" in first.stdout
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"0 added, 0 updated, {n} unchanged" in again.stdout
    assert len(list((tmp_path / "tokens").iterdir())) == n
    print(f"imported {n} gateways in {took:.1f} s")
