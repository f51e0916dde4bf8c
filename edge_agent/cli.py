"""`citygate-agent`: run the gateway agent, and the field technician's commands."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from edge_agent.cli_decode import decode
from edge_agent.cli_lighting import schedule, simulate_year_cmd
from edge_agent.cli_plan import plan
from edge_agent.cli_probe import probe
from edge_agent.cli_tech import EXIT_CODES, devices, events, journal, lamp, read_device, status
from edge_agent.config import AgentConfigError, load_config


@click.group(epilog=EXIT_CODES)
@click.version_option(package_name="citygate")
def main() -> None:
    """citygate gateway agent."""


@main.command()
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path), help="Agent TOML config.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def run(config_file: Path, log_level: str) -> None:
    """Run the agent until SIGTERM/SIGINT."""
    from edge_agent.agent import run_agent
    from edge_agent.logs import setup_logging

    setup_logging(log_level)
    try:
        config = load_config(config_file)
    except AgentConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    asyncio.run(run_agent(config))


@main.command("check-config")
@click.argument("config_file", type=click.Path(path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate a config file: exit 0 if usable, 2 with file, key and reason if not."""
    try:
        config = load_config(config_file)
    except AgentConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    devices = sum(len(bus.states()) for bus in config.buses)
    click.echo(f"{config_file}: ok (gateway {config.gateway.id}, {len(config.buses)} bus(es), {devices} device(s))")


main.add_command(decode)
main.add_command(status)
main.add_command(devices)
main.add_command(read_device)
main.add_command(lamp)
main.add_command(journal)
main.add_command(events)
main.add_command(probe)
main.add_command(schedule)
main.add_command(simulate_year_cmd)
main.add_command(plan)
