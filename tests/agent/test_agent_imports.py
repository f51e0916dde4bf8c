"""The agent runs on a small cabinet box: what it imports is what it keeps in memory. The
collector's libraries (the batch decoder's msgspec, aiohttp) must not come with it."""

from __future__ import annotations

import subprocess
import sys

COLLECTOR_ONLY = ("msgspec", "aiohttp", "asyncpg", "citygate_wire.batch", "collector")


def test_the_agent_loads_none_of_the_collectors_libraries() -> None:
    probe = (
        "import sys\n"
        "import edge_agent.agent, edge_agent.cli, edge_agent.control, edge_agent.uploader, edge_agent.localapi\n"
        "import importlib\n"
        "from drivers import registry\n"
        "for eps in registry.bus_types().values():\n"
        "    importlib.import_module(eps[0].module)\n"
        f"print(' '.join(m for m in {COLLECTOR_ONLY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "", f"the agent imported {done.stdout.strip()}"
