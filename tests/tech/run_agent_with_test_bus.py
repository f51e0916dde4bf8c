"""`citygate-agent` with one more bus type, "test-wedge" (tech_wedge_bus.py), for the watchdog tests.

The bus type comes in as another package's would: an entry point of a distribution on sys.path.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent.parent))  # tests.plugin_dist
sys.path.insert(0, str(Path(__file__).parent))  # tech_wedge_bus

from edge_agent.cli import main
from tests.plugin_dist import install_entry_points

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as site:
        install_entry_points(Path(site), "citygate_test_wedge",
                             {"citygate.buses": {"test-wedge": "tech_wedge_bus:DRIVER"}})
        main()
