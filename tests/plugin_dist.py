"""A third-party distribution, as pip would leave it: a dist-info folder with entry points, on sys.path.

Tests use it to add a bus type the way another package would, without editing citygate.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import drivers.registry


def install_entry_points(folder: Path, dist: str, groups: Mapping[str, Mapping[str, str]]) -> None:
    """Write `<dist>-1.0.dist-info` into `folder`, put `folder` on sys.path, and forget the bus types read so far."""
    info = folder / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items())
             for group, entries in groups.items()]
    (info / "entry_points.txt").write_text("\n".join(lines))
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    drivers.registry.bus_types.cache_clear()


def uninstall(folder: Path) -> None:
    """Take `folder` off sys.path again, with the modules imported from it."""
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]
    drivers.registry.bus_types.cache_clear()
