"""Database URLs: which store a URL opens, and how a URL is shown without its password.

Below collector.store and both stores: `open_store` picks a store by `sqlite_path`, and a store's
errors show its URL through `redact_url`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from collector.errors import StoreError

DEFAULT_SQLITE_PATH = Path("var") / "collector.db"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL or bare path; None for a PostgreSQL URL."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    if url.startswith("sqlite://"):
        return Path(url.removeprefix("sqlite://"))
    if "://" in url:
        raise StoreError(f"unsupported database URL {redact_url(url)!r}: use sqlite:///path, a path, or postgresql://...")
    return Path(url)


#: query parameters of a libpq URL that hold a secret
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


def has_secret(url: str) -> bool:
    """Whether `url` holds a password (a URL that cannot be parsed is taken to)."""
    try:
        parts = urlsplit(url)
        return parts.password is not None or any(k.lower() in _SECRET_PARAMS for k, _ in parse_qsl(parts.query))
    except ValueError:
        return True


def redact_url(url: str) -> str:
    """`url` as an error or a log may show it: no password, whether in the user part or a parameter.
    A URL too broken to parse is not shown at all (it may be nothing but a password)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        query = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
    except ValueError:
        return "<a database URL that cannot be parsed>"
