"""Gateway credentials: a random bearer token shown once, stored only as its SHA-256 digest.

A token carries 256 random bits, so an unsalted hash is enough: nobody can brute-force the
preimage, and looking a token up by its digest needs no per-gateway salt or slow KDF.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "cgw_"  # recognisable in a leaked log or a config file


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
