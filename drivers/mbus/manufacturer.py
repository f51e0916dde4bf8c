"""Manufacturer id of the M-Bus header: three letters packed in 15 bits (EN 13757-3, FLAG association code)."""

from __future__ import annotations


def decode_manufacturer(code: int) -> str:
    """0x1EE6 -> "GWF". Each letter is 5 bits, 1 = 'A'; out-of-range codes come out as '@' or punctuation."""
    return "".join(chr(((code >> shift) & 0x1F) + 64) for shift in (10, 5, 0))


def encode_manufacturer(name: str) -> int:
    if len(name) != 3 or not all("A" <= c <= "Z" for c in name):
        raise ValueError(f"manufacturer {name!r}: three letters A-Z")
    return ((ord(name[0]) - 64) << 10) | ((ord(name[1]) - 64) << 5) | (ord(name[2]) - 64)
