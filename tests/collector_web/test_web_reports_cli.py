"""`citygate-collector reports ...` on both stores: list, show, move and assign from a terminal, audited,
80 columns wide, and never a database created by a typo in --db."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner
from web_testkit import now_ms

from collector.reports.cli import reports
from collector.reports.model import parse_new_report
from collector.store import open_store
from collector.territory import load_territory

DIJON = "21231"


def seed(db_url: str) -> list[int]:
    async def run() -> list[int]:
        async with open_store(db_url) as store:
            await store.add_operator("alice", "hash-alice", now_ms())
            ids = []
            for code, where in (("pothole", "12 rue de la Liberté, devant la boulangerie du coin de la place"),
                                ("graffiti", "Place Darcy"), ("lamp-out", "Rue Chabot-Charny")):
                form = {"jurisdiction_id": DIJON, "service_code": code, "address_string": where,
                        "description": "Signalé en passant " * 8, "email": "resident@example.org"}
                done = await store.submit_report(parse_new_report(form, load_territory()), f"h-{code}", now_ms())
                ids.append(done.request.id)
            return ids

    return asyncio.run(run())


def test_an_operator_handles_reports_from_the_terminal(db_url: str) -> None:
    pothole, graffiti, lamp = seed(db_url)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(reports, [*args, "--db", db_url])
        assert result.exit_code == 0, result.output
        assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
        return result.output

    listing = run("list")
    rows = listing.splitlines()
    assert rows[0].split() == ["id", "state", "received", "insee", "service", "assigned", "where"]
    assert [int(r.split()[0]) for r in rows[1:-1]] == [lamp, graffiti, pothole]
    assert rows[-1] == "3 of 3 reports"
    assert "12 rue de la Liberté…" in listing  # cut, not wrapped

    assert run("assign", str(pothole), "alice").strip() == f"report {pothole}: assigned to alice"
    moved = run("move", str(pothole), "dispatched", "--note", "Équipe voirie prévenue, passage demain matin")
    assert " ".join(moved.split()) == f"report {pothole}: dispatched; the resident reads: Équipe voirie prévenue, " \
        "passage demain matin"
    assert run("move", str(graffiti), "resolved").strip() == f"report {graffiti}: resolved; the resident reads: Résolu."
    assert [int(r.split()[0]) for r in run("list", "--state", "received").splitlines()[1:-1]] == [lamp]
    assert [int(r.split()[0]) for r in run("list", "--open").splitlines()[1:-1]] == [lamp, pothole]
    assert [int(r.split()[0]) for r in run("list", "--assigned", "alice").splitlines()[1:-1]] == [pothole]
    assert [int(r.split()[0]) for r in run("list", "--commune", "21515").splitlines()[1:-1]] == []

    shown = run("show", str(pothole))
    assert f"report       {pothole} (open, dispatched; may move to received, in_progress, resolved)" in shown
    assert "assigned     alice" in shown and "resident@example.org" in shown
    assert "Équipe voirie prévenue" in shown and "history" in shown

    # a move the lifecycle forbids, an unknown report or operator: one clear line, exit 1
    for args, message in ((("move", str(graffiti), "in_progress"), "cannot go from resolved to in_progress"),
                          (("show", "999"), "no report 999"),
                          (("assign", str(lamp), "zorro"), "no operator named 'zorro'")):
        result = runner.invoke(reports, [*args, "--db", db_url])
        assert result.exit_code == 1 and message in result.output, result.output

    async def audit() -> list[tuple[str, str]]:
        async with open_store(db_url) as store:
            return [(a.action, a.detail) for a in await store.audit_log(20) if a.actor.startswith("cli:")]

    assert ("report.assign", "to alice") in asyncio.run(audit())
    assert ("report.state", "received -> resolved") in asyncio.run(audit())


def test_no_database_is_created_by_a_wrong_path(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "collector.db"
    for args in (["list"], ["show", "1"], ["move", "1", "resolved"], ["assign", "1", "alice"]):
        result = CliRunner().invoke(reports, [*args, "--db", str(missing)])
        assert result.exit_code == 1 and f"no database at {missing}" in result.output, result.output
    assert not missing.exists() and not missing.parent.exists()
