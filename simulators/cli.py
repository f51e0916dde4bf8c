"""`citygate-sim`: device simulators speaking real protocol bytes, and the whole-system demo."""

from __future__ import annotations

import click

from simulators.ble import ble
from simulators.cameras import cameras
from simulators.city_run import city
from simulators.demo import demo
from simulators.gps import gps_command
from simulators.lamps import lamps
from simulators.mbus_meter import mbus
from simulators.parking import parking
from simulators.signals import signals
from simulators.tic_meter import tic


@click.group()
def main() -> None:
    """Simulated field devices (real protocol bytes) and the demo."""


# Each simulator module contributes one click command; register it here.
main.add_command(ble)
main.add_command(cameras)
main.add_command(city)
main.add_command(demo)
main.add_command(gps_command)
main.add_command(lamps)
main.add_command(mbus)
main.add_command(parking)
main.add_command(signals)
main.add_command(tic)
