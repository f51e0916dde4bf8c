"""`citygate-agent decode lorawan`: a technician pastes a sensor's payload and its port."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from edge_agent.cli import main


def test_a_pasted_payload_decodes_and_a_bad_one_says_why() -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["decode", "lorawan", "--model", "nwave-nps4", "--port", "2", "80 7c 04", "--json"])
    assert ok.exit_code == 0, ok.output
    doc = orjson.loads(ok.output)
    assert doc["frame"] == "heartbeat"
    assert {f["name"]: f["value"] for f in doc["fields"]} == {"parking_state": "occupied", "battery_v": 2.996,
                                                               "battery_low": True, "temperature_c": 12.0}
    bad = runner.invoke(main, ["decode", "lorawan", "--model", "bosch-pls", "--port", "2", "0001ff"])
    assert bad.exit_code == 2 and "port 2: 3 bytes, the frame has 1 or 2 (0001ff)" in bad.output
    unknown = runner.invoke(main, ["decode", "lorawan", "--model", "acme", "--port", "1", "01"])
    assert unknown.exit_code == 2 and "unknown model 'acme'; known: bosch-pls, nwave-nps4" in unknown.output
