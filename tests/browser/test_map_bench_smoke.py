"""bench/bench_map_page.py still runs (at toy size: its figures are not judged here, only that it measures)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

from browser_kit import REPO


async def test_the_map_benchmark_runs_at_toy_size() -> None:
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "bench/bench_map_page.py", "--tiny"],
                                   cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("first render", "interactive", "bytes transferred", "live: page main thread",
                  "live: collector CPU", "live: bytes received"):
        line = next((x for x in done.stdout.splitlines() if x.startswith(label)), None)
        assert line is not None, done.stdout
        assert re.search(r"\d+\.\dx$|nanx$", line), line  # both figures and their ratio
