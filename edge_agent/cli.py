"""`citygate-agent`: run the gateway agent, and the field technician's commands."""

from __future__ import annotations

import asyncio
import faulthandler
import importlib
import logging
import signal
import sys
from pathlib import Path

import click

from edge_agent.config import AgentConfigError, load_config
from edge_agent.exit_codes import EXIT_CODES

#: Technician commands, imported only when called: `citygate-agent run` on a small gateway
#: must not carry rich, astral and every driver's CLI in memory (name -> "module:attribute").
LAZY_COMMANDS = {
    "decode": "edge_agent.cli_decode:decode",
    "status": "edge_agent.cli_tech:status",
    "devices": "edge_agent.cli_tech:devices",
    "read": "edge_agent.cli_tech:read_device",
    "lamp": "edge_agent.cli_tech:lamp",
    "ble": "edge_agent.cli_tech:ble",
    "journal": "edge_agent.cli_tech:journal",
    "events": "edge_agent.cli_tech:events",
    "probe": "edge_agent.cli_probe:probe",
    "schedule": "edge_agent.cli_lighting:schedule",
    "simulate-year": "edge_agent.cli_lighting:simulate_year_cmd",
    "plan": "edge_agent.cli_plan:plan",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, epilog=EXIT_CODES)
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
    # `kill -USR1 <pid>` prints every thread's stack: how a technician or a test sees where a stuck agent is
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        config = load_config(config_file)
    except AgentConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    for warning in config.warnings:
        logging.getLogger("citygate.config").warning("%s: %s", config_file, warning)
    asyncio.run(run_agent(config))


@main.command("check-config")
@click.argument("config_file", type=click.Path(path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate a config file: exit 0 if usable (warnings on stderr), 2 with file, key and reason if not."""
    try:
        config = load_config(config_file)
    except AgentConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    for warning in config.warnings:
        click.echo(f"warning: {config_file}: {warning}", err=True)
    devices = sum(len(spec.build().states()) for spec in config.buses)  # built, not run: nothing is opened
    click.echo(f"{config_file}: ok (gateway {config.gateway.id}, {len(config.buses)} bus(es), {devices} device(s))")
