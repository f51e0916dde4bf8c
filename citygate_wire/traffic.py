"""The sample a `signals` bus journals per detector and counting interval, as the collector reads it.

One Sample per detector per interval, dated at the interval's end (controller clock), device
`<bus>.<detector id>`, with these values (a sample is a traffic count when it has INTERVAL):

| key | type | meaning |
|---|---|---|
| `junction` | str | the intersection's id |
| `approach` | str | the approach (e.g. its signal group) |
| `lane` | int | lane number in the approach, 1-based (Smart Data Models laneId) |
| `lane_count` | bool | this detector's count is its lane's (false: a speed pair's second loop) |
| `interval` | int | the controller's interval index: start = index x interval_s (Unix s) |
| `interval_s` | int | the interval's length |
| `count_veh` | int | vehicles |
| `occupancy_pct` | float | share of the interval the detector was occupied, % |
| `speed_kmh` | float or null | mean speed (speed pairs) |
| `light_veh`, `heavy_veh` | int or null | vehicles per length class (speed pairs) |
| `detector_fault` | str or null | the detector's faults at the end of the interval, comma-separated |
"""

from __future__ import annotations

JUNCTION = "junction"
APPROACH = "approach"
LANE = "lane"
LANE_COUNT = "lane_count"
INTERVAL = "interval"
INTERVAL_S = "interval_s"
COUNT = "count_veh"
OCCUPANCY = "occupancy_pct"
SPEED = "speed_kmh"
LIGHT = "light_veh"
HEAVY = "heavy_veh"
FAULT = "detector_fault"
