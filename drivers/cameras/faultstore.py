"""The open camera faults, kept across a restart of the agent in the gateway's state folder.

Without it an agent restarted while a camera was tampered with, or a stream refused, would
forget the fault: when it ends, no `_cleared` would be sent and the collector would show it open
for ever. The file is small (open faults only), written whole to a temporary file, fsynced and
renamed; one that cannot be read is set aside with a warning: the faults are then seen afresh.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("citygate.cameras")
VERSION = 1


def load(path: Path) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("%s: unreadable open camera faults (%s): they are seen afresh", path, exc)
        return None
    if not isinstance(doc, dict) or doc.get("v") != VERSION:
        log.warning("%s: not a version %d file of open camera faults: they are seen afresh", path, VERSION)
        return None
    return doc


def save(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            f.write(orjson.dumps({"v": VERSION, **doc}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        log.error("cannot write %s: %s (open camera faults are kept in memory only)", path, exc.strerror)
