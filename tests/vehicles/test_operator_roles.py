"""Operators' roles from the command line, and the vehicles' registry: the real CLI (in-process, click's
runner: a subprocess costs a second of start-up each) on a real SQLite store; the store's queries run on
PostgreSQL too in test_vehicle_privacy.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collector.cli import main


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return str(tmp_path / "collector.db")


def run(*args: str, ok: bool = True) -> Result:
    done = CliRunner().invoke(main, list(args), terminal_width=80)
    assert (done.exit_code == 0) == ok, done.output
    return done


def test_roles_are_a_set_an_operator_is_given_and_that_existing_operators_do_without(db_url: str,
                                                                                   tmp_path: Path) -> None:
    run("operator", "add", "alice", "--db", db_url, "--token-file", str(tmp_path / "a"))
    run("operator", "add", "bob", "--role", "police", "--db", db_url, "--token-file", str(tmp_path / "b"))
    lines = run("operator", "list", "--db", db_url).stdout.splitlines()
    # a table: operator, rank, other roles, added, last login, sessions (a rank given by default: operator)
    assert [line.split()[:3] for line in lines[1:]] == [["alice", "operator", "-"], ["bob", "operator", "police"]]
    assert all(len(line.expandtabs()) <= 80 for line in lines)
    assert run("operator", "roles", "alice", "--role", "police", "--db", db_url).stdout == \
        "operator alice: operator police\n"  # the role is added beside the rank
    run("operator", "roles", "bob", "--none", "--db", db_url)
    lines = run("operator", "list", "--db", db_url).stdout.splitlines()
    assert [line.split()[1:3] for line in lines[1:3]] == [["operator", "police"], ["operator*", "-"]]
    assert "no rank given" in lines[-1]  # what the star means: an operator without any rank acts as an operator
    assert "no operator named 'carol'" in run("operator", "roles", "carol", "--none", "--db", db_url, ok=False).output
    assert "'mayor' is not one of" in run("operator", "roles", "bob", "--role", "mayor", "--db", db_url,
                                          ok=False).output
    audit = run("audit", "--db", db_url).stdout
    assert "operator.roles\talice\troles: operator police" in audit and "operator.roles\tbob\troles: none" in audit


def test_vehicles_and_streets_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    run("gateway", "add", "gw-truck-7", "--commune", "21231", "--db", db_url, "--token-file", str(tmp_path / "t"))
    out = run("vehicle", "add", "truck-7", "--service", "waste", "--commune", "21231", "--gateway", "gw-truck-7",
              "--db", db_url).stdout
    assert out == "vehicle truck-7: waste, depot 21231, gateway gw-truck-7 device gps\n"
    assert "is already on a vehicle" in run("vehicle", "add", "truck-8", "--service", "waste", "--commune", "21231",
                                            "--gateway", "gw-truck-7", "--db", db_url, ok=False).output
    assert "no gateway 'gw-none'" in run("vehicle", "add", "x", "--service", "police", "--commune", "21231",
                                         "--gateway", "gw-none", "--db", db_url, ok=False).output
    assert run("vehicle", "list", "--db", db_url).stdout == "truck-7\twaste\t21231\tgw-truck-7\tgps\n"
    streets = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Rue de la Liberté", "commune": "21231"},
         "geometry": {"type": "LineString", "coordinates": [[5.0400, 47.3219], [5.0440, 47.3219]]}}]}
    (tmp_path / "streets.geojson").write_text(json.dumps(streets))
    assert run("vehicle", "streets", str(tmp_path / "streets.geojson"), "--db", db_url).stdout == "1 streets loaded\n"
    (tmp_path / "bad.geojson").write_text('{"features": [{"properties": {}, "geometry": {}}]}')
    assert "bad.geojson" in run("vehicle", "streets", str(tmp_path / "bad.geojson"), "--db", db_url, ok=False).output
    run("vehicle", "remove", "truck-7", "--db", db_url)
    assert run("vehicle", "list", "--db", db_url).stdout == ""


@pytest.mark.parametrize("args", [["operator", "roles", "bob"], ["operator", "roles", "bob", "--none", "--role",
                                                                  "police"]])
def test_roles_needs_roles_or_none(db_url: str, args: list[str]) -> None:
    assert "give one or more --role, or --none" in run(*args, "--db", db_url, ok=False).output
