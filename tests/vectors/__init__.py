"""The public byte-exact test vectors: the project's shared/ copy when it sits beside the checkout
(it may hold more vectors than ours), else the copy kept here so a bare clone runs its tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "vectors"


def load_vectors(name: str) -> Any:
    """The parsed JSON of vectors/`name` (e.g. "tic.json")."""
    path = SHARED / name if (SHARED / name).is_file() else HERE / name
    return json.loads(path.read_text())
