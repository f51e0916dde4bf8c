"""`citygate-agent` with one more bus type, "test-wedge" (tech_wedge_bus.py), for the watchdog tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from drivers.registry import BUS_TYPES
from edge_agent.cli import main

BUS_TYPES["test-wedge"] = "tech_wedge_bus:from_config"

if __name__ == "__main__":
    main()
