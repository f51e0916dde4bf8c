"""ConfigTable's accessors are typed by overloads: mypy knows when a key may be absent (None) and when not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = '''
from typing import assert_type
from drivers.conf import ConfigTable

t = ConfigTable({}, "x")
assert_type(t.text("a"), str | None)
assert_type(t.text("a", "dflt"), str)
assert_type(t.text("a", required=True), str)
assert_type(t.number("n", 1.0, lo=0, hi=2), float)
assert_type(t.integer("i", 1, lo=0, hi=2), int)
assert_type(t.boolean("b", False), bool)
'''


def test_text_is_str_when_defaulted_or_required_and_optional_only_without_default(tmp_path: Path) -> None:
    snippet = tmp_path / "use_config_table.py"
    snippet.write_text(SNIPPET)
    # assert_type fails mypy on `Any` as well as on a wrong type: the overloads are what make it pass
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", "--strict", str(snippet)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "MYPYPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
