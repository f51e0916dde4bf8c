"""`citygate-collector alarms ...`: its errors, and the same reads on PostgreSQL (80 columns)."""

from __future__ import annotations

from pathlib import Path

from tests.alarms.test_alarms_cli import cli, seed


def test_the_list_and_an_alarm_on_either_store(db_url: str) -> None:
    bus, _ = seed(db_url)
    listed = cli("alarms", "list", "--commune", "21231", "--db", db_url).stdout
    assert "communication_failure" in listed and "door_open" not in listed  # gw-b is in another commune
    assert "9, 9 still failing" in cli("alarms", "show", str(bus), "--db", db_url).stdout


def test_clear_errors(tmp_path: Path) -> None:
    db_url = str(tmp_path / "collector.db")
    bus, _ = seed(db_url)
    unknown = cli("alarms", "show", "424242", "--db", db_url, check=False)
    assert unknown.returncode == 1 and "no alarm 424242" in unknown.stderr
    cli("alarms", "clear", str(bus), "--comment", "done", "--db", db_url)
    again = cli("alarms", "ack", str(bus), "--db", db_url, check=False)
    assert again.returncode == 1 and f"alarm {bus} is cleared: cannot acknowledge it" in again.stderr
    nobody = cli("alarms", "assign", "1", "mallory", "--db", db_url, check=False)
    assert nobody.returncode == 1 and "no operator named 'mallory'" in nobody.stderr
    missing_comment = cli("alarms", "clear", str(bus), "--db", db_url, check=False)
    assert missing_comment.returncode == 2 and "--comment" in missing_comment.stderr


def test_no_database_is_an_error_and_none_is_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "collector.db"
    done = cli("alarms", "list", "--db", "nowhere/collector.db", check=False, cwd=tmp_path)
    assert done.returncode == 1 and "no database at nowhere/collector.db" in done.stderr
    assert not path.exists() and not path.parent.exists()
