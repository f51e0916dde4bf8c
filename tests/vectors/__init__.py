"""The public byte-exact test vectors (and the communes' facts the territory is checked against).

They are copies of the project's shared/ files, kept here so that a bare clone builds and passes its
tests: nothing reads the shared/ folder beside the checkout at test time (tests/test_no_shared_paths.py checks it).
`scripts/refresh-vectors` copies newer versions in, by hand, when shared/ changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def load_vectors(name: str) -> Any:
    """The parsed JSON of tests/vectors/`name` (e.g. "tic.json")."""
    return json.loads((HERE / name).read_text(encoding="utf-8"))
