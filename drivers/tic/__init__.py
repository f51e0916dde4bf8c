"""Enedis TIC (Linky "Télé-Information Client"): pure codec (`codec`, `values`) and the serial bus shell (`bus`).

See docs in PROTOCOLS.md §1. The codec never does I/O: `TicParser.feed(bytes)` returns frames.
"""
