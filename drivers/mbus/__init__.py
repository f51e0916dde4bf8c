"""Wired M-Bus (EN 13757-2/-3): pure codecs (`frame`, `records`, `vif`, `manufacturer`, `encode`) and the master (`bus`).

See PROTOCOLS.md §2. The codecs never do I/O; the master in `bus` is a thin asyncio shell.
"""
