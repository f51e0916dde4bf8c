"""HTTP/RTSP Digest access authentication (RFC 7616, MD5 and SHA-256, qop=auth), sans-I/O.

Cameras challenge both their ONVIF web service and their RTSP DESCRIBE with `WWW-Authenticate:
Digest ...`; this answers the challenge. The password never leaves this module in clear.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from drivers.errors import DecodeError

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*(?:,|$)')
_ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = None  # "auth" when offered, else None (RFC 2069 style, still common on cameras)
    opaque: str | None = None


def _params(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            raise DecodeError(f"malformed Digest parameters at {rest[pos:pos + 30]!r}")
        value = m.group(2)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value
        pos = m.end()
    return params


def parse_challenge(header: str) -> Challenge:
    """A `WWW-Authenticate` value -> its Digest challenge (DecodeError if it is not one we can answer)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DecodeError(f"not a Digest challenge: {header[:40]!r}")
    params = _params(rest)
    if "realm" not in params or "nonce" not in params:
        raise DecodeError("Digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _ALGORITHMS:
        raise DecodeError(f"unsupported Digest algorithm {algorithm!r}")
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    if qops and "auth" not in qops:
        raise DecodeError(f"unsupported Digest qop {params['qop']!r}")
    return Challenge(params["realm"], params["nonce"], algorithm, "auth" if qops else None, params.get("opaque"))


def _h(algorithm: str, text: str) -> str:
    return _ALGORITHMS[algorithm](text.encode("utf-8")).hexdigest()


def response_value(ch: Challenge, user: str, password: str, method: str, uri: str, cnonce: str, nc: int) -> str:
    """The `response` of RFC 7616 section 3.4.1."""
    ha1 = _h(ch.algorithm, f"{user}:{ch.realm}:{password}")
    ha2 = _h(ch.algorithm, f"{method}:{uri}")
    if ch.qop:
        return _h(ch.algorithm, f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:{ch.qop}:{ha2}")
    return _h(ch.algorithm, f"{ha1}:{ch.nonce}:{ha2}")


def authorization(ch: Challenge, user: str, password: str, method: str, uri: str, nc: int = 1) -> str:
    """The `Authorization` header value answering `ch` for one request."""
    cnonce = os.urandom(8).hex()
    parts = [f'username="{user}"', f'realm="{ch.realm}"', f'nonce="{ch.nonce}"', f'uri="{uri}"',
             f'response="{response_value(ch, user, password, method, uri, cnonce, nc)}"',
             f"algorithm={ch.algorithm}"]
    if ch.qop:
        parts += [f"qop={ch.qop}", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    if ch.opaque is not None:
        parts.append(f'opaque="{ch.opaque}"')
    return "Digest " + ", ".join(parts)


def parse_authorization(header: str) -> dict[str, str]:
    """The parameters of an `Authorization: Digest ...` header (the simulator checks them)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DecodeError(f"not a Digest authorization: {header[:40]!r}")
    return _params(rest)
