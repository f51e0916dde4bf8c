"""The `--db` option every `citygate-collector` command shares (collector/cli.py and the commands of
collector/control/cli.py), and where its default comes from."""

from __future__ import annotations

import os
from pathlib import Path

import click

from collector.dburl import DEFAULT_SQLITE_PATH, sqlite_path
from collector.errors import StoreError

DB_ENV = "CITYGATE_DB"
DB_FILE_ENV = "CITYGATE_DB_FILE"


def read_secret(path: Path, what: str = "a secret") -> str:
    """The one line a private file holds (a password, a token, a database URL): a clear error if the
    file cannot be read or is empty."""
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise click.ClickException(f"cannot read {what} from {path}: {exc.strerror}") from None
    if not secret:
        raise click.ClickException(f"{path} holds no {what}")
    return secret


def read_db_file(path: Path) -> str:
    """The database URL a file holds (systemd's LoadCredential, a 0600 file): its password then never
    shows on a command line (ps) nor in the unit."""
    return read_secret(path, "database URL")


def default_db() -> str:
    # the file first: a drop-in that names one overrides the unit's default $CITYGATE_DB
    if os.environ.get(DB_FILE_ENV):
        return read_db_file(Path(os.environ[DB_FILE_ENV]))
    return os.environ.get(DB_ENV) or str(DEFAULT_SQLITE_PATH)


db_option = click.option(
    "--db", "db_url", default=default_db, show_default=f"the file ${DB_FILE_ENV} names, ${DB_ENV}, or {DEFAULT_SQLITE_PATH}",
    help="Database URL: sqlite:///path, a path, or postgresql://... (one with a password: give it by "
         f"${DB_ENV} or ${DB_FILE_ENV}, not here, where ps shows it).",
)


def existing_db(db_url: str) -> str:
    """`db_url`, if it names a database that exists: a command that only reads or changes what is
    there never creates one (a SQLite path that holds none is an error naming it)."""
    try:
        path = sqlite_path(db_url)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if path is not None and not path.is_file():
        raise click.ClickException(f"no collector database at {path}: give --db (or ${DB_ENV}, ${DB_FILE_ENV}); "
                                   "`gateway add` or `serve` creates one")
    return db_url
