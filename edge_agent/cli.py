"""`citygate-agent`: run the gateway agent, and the field technician's commands."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from edge_agent.cli_group import SuggestingGroup
from edge_agent.exit_codes import EXIT_CODES

#: Technician commands, imported only when called: `citygate-agent run` on a small gateway must not
#: carry rich, astral and every driver's CLI in memory, and `--help` lists them from this table
#: without importing any (aiohttp alone took 0.3 s of the 0.7 s `--help` took when it did).
#: name -> ("module:attribute", the one-line help `--help` shows; tests/tech checks it is the command's).
LAZY_COMMANDS = {
    "decode": ("edge_agent.cli_decode:decode", "Decode one frame or payload given as hex."),
    "status": ("edge_agent.cli_tech:status", "Uptime, loops, uplink, broker, clock, journal backlog, versions."),
    "devices": ("edge_agent.cli_tech:devices", "Every device: address, state, last reading, error counts."),
    "read": ("edge_agent.cli_tech:read_device", "One live read of DEVICE through the agent."),
    "lamp": ("edge_agent.cli_tech:lamp", "Test a lamp: a temporary override that expires by itself."),
    "ble": ("edge_agent.cli_tech:ble", "BLE sensors on the gateway (needs the technician role)."),
    "journal": ("edge_agent.cli_tech:journal", "What waits in the journal for upload: counts, size, drops."),
    "events": ("edge_agent.cli_tech:events", "Recent events (faults, overrides, drops); --follow prints new ones as they come."),
    "probe": ("edge_agent.cli_probe:probe", "Talk to field devices directly, the agent need not run."),
    "schedule": ("edge_agent.cli_lighting:schedule", "Switch times and levels of each lamp group for one night."),
    "simulate-year": ("edge_agent.cli_lighting:simulate_year_cmd", "Burn hours and energy per lamp group over the nights of YEAR."),
    "plan": ("edge_agent.cli_plan:plan", "Intersection plans and time-of-day tables."),
}


class LazyGroup(SuggestingGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[cmd_name][0].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, LAZY_COMMANDS[name][1] if name in LAZY_COMMANDS
                 else self.commands[name].get_short_help_str(formatter.width))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, epilog=EXIT_CODES)
@click.version_option(package_name="citygate")
def main() -> None:
    """citygate gateway agent.

    \b
    Shell completion of commands, options and device ids, for bash:
      eval "$(_CITYGATE_AGENT_COMPLETE=bash_source citygate-agent)"
    (zsh_source or fish_source for those shells; docs/technician.md).
    The commands that ask the agent find its socket in $CITYGATE_SOCKET
    when --socket is not given.
    """


@main.command()
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path), help="Agent TOML config.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def run(config_file: Path, log_level: str) -> None:
    """Run the agent until SIGTERM/SIGINT."""
    import faulthandler
    import logging
    import signal

    from edge_agent import eventloop
    from edge_agent.agent import run_agent
    from edge_agent.config import AgentConfigError, load_config
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
    try:
        eventloop.loop_factory()  # a wrong CITYGATE_EVENT_LOOP is said before anything starts
    except eventloop.EventLoopChoiceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    eventloop.run(run_agent(config))


@main.command("check-config")
@click.argument("config_file", type=click.Path(path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate a config file.

    Exit 0 if usable (warnings on stderr), 2 with file, key and reason if not.
    """
    from edge_agent.config import AgentConfigError, load_config

    try:
        config = load_config(config_file)
    except AgentConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    for warning in config.warnings:
        click.echo(f"warning: {config_file}: {warning}", err=True)
    devices = sum(len(spec.build().states()) for spec in config.buses)  # built, not run: nothing is opened
    click.echo(f"{config_file}: ok (gateway {config.gateway.id}, {len(config.buses)} bus(es), {devices} device(s))")
