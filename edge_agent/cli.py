"""`citygate-agent`: run the gateway agent, and the field technician's commands."""

from __future__ import annotations

import click

from edge_agent.cli_decode import decode


@click.group()
@click.version_option(package_name="citygate")
def main() -> None:
    """citygate gateway agent."""


main.add_command(decode)
