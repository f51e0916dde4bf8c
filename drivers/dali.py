"""DALI arc power level <-> percent, on the IEC 62386-102 logarithmic dimming curve.

Arc level 0 is off, 1..254 follow `percent = 10 ** ((n - 1) / (253 / 3) - 1)` (0.1 % at 1,
100 % at 254), and 255 is "mask, no change", which is not a level. Sending the percent itself as
an arc level is the classic mistake: 127 is about 3 %, not 50 %.
"""

from __future__ import annotations

import math

OFF = 0
MIN_ARC = 1
MAX_ARC = 254
MASK = 255
_STEPS_PER_DECADE = 253 / 3


def percent_to_arc(pct: int) -> int:
    """Nearest arc level for an integer percent 0..100 (0 -> 0 = off, 100 -> 254)."""
    if isinstance(pct, bool) or not isinstance(pct, int):
        raise TypeError(f"level must be an integer percent, got {type(pct).__name__}")
    if not 0 <= pct <= 100:
        raise ValueError(f"level {pct} % is outside 0..100")
    if pct == 0:
        return OFF
    # Rounded in the log domain: the curve is even in log steps, so this is the nearest step.
    return max(MIN_ARC, min(MAX_ARC, round(1 + _STEPS_PER_DECADE * (math.log10(pct) + 1))))


def arc_to_percent(arc: int) -> float:
    """Light output in percent for arc level 0..254 (0 -> 0.0 = off, 1 -> 0.1, 254 -> 100.0)."""
    if isinstance(arc, bool) or not isinstance(arc, int):
        raise TypeError(f"arc level must be an integer, got {type(arc).__name__}")
    if arc == MASK:
        raise ValueError("arc level 255 is 'mask, no change', not a light level")
    if not OFF <= arc <= MAX_ARC:
        raise ValueError(f"arc level {arc} is outside 0..254")
    if arc == OFF:
        return 0.0
    return 10 ** ((arc - 1) / _STEPS_PER_DECADE - 1)
