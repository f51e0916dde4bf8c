"""Gateway credentials: a random bearer token shown once, stored only as its SHA-256 digest.

A token carries 256 random bits, so an unsalted hash is enough: nobody can brute-force the
preimage, and looking a token up by its digest needs no per-gateway salt or slow KDF.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

PREFIX = "cgw_"  # recognisable in a leaked log or a config file
OPERATOR_TOKEN_PREFIX = "cop_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def new_operator_token() -> str:
    return OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a secret (a token, a password file) so that it only ever exists whole and with `mode`:
    a new file created with that mode, then renamed over `path`. Writing into an existing file
    would keep its mode (a token in a world-readable file), and a broker reloading meanwhile
    would read half of it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path: Path) -> str | None:
    """Why a secret cannot be written to `path`, or None: asked before a token is issued, so a
    token that could not be saved is never issued (it would be shown nowhere)."""
    folder = path.parent
    if path.is_dir():
        return f"{path} is a directory"
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    return None
