"""`citygate-collector`: serve the ingest/read API, and manage the gateway registry."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from citygate_wire.common import now_ms
from citygate_wire.mqtt import COLLECTOR_IDENTITY
from collector.alarms.cli import alarms
from collector.cli_db import DB_ENV, db_option, read_db_file
from collector.control.acl import gateway_name_problem, mosquitto_hash
from collector.control.cli import (
    audit,
    cli_actor,
    command_group,
    issue_token,
    mqtt_acl,
    mqtt_credential,
    on_store,
    operator,
    readable_seq,
    rotate_token,
    token_file_option,
    when,
)
from collector.control.keys import KEY_ENV, KeyFileError, command_key, load_key
from collector.dburl import has_secret
from collector.errors import CollectorError
from collector.positions_cli import lamps
from collector.provision import gateway_import
from collector.reports.cli import reports
from collector.retention import retention
from collector.store import open_store
from collector.territory import ENV as TERRITORY_ENV
from collector.territory import Territory, load_territory
from collector.tokens import hash_token, new_token
from collector.vehicles.cli import vehicle

if TYPE_CHECKING:
    from collector.access import Network
    from collector.control.link import LinkConfig

# The web app, the MQTT link and the instances' coordination are imported by `serve` alone: the
# registry's commands (gateway add/list/import, lamps import, retention) start without them and
# without aiohttp (tests/provision/test_cli_imports.py), 0.5 s a command less to provision a fleet.

territory_option = click.option(
    "--territory", "territory_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
    help=f"Territory file (default ${TERRITORY_ENV} or configs/territory.json).",
)


def territory_or_exit(path: Path | None) -> Territory:
    try:
        return load_territory(path)
    except CollectorError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.version_option(package_name="citygate")
def main() -> None:
    """citygate central collector."""


@main.command()
@db_option
@territory_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--max-body-bytes", default=None, show_default="16 MiB", type=click.IntRange(1024),
              help="Largest accepted batch, decompressed.")
@click.option("--mqtt-url", envvar="CITYGATE_MQTT_URL", default=None,
              help="Broker of the control plane (mqtt:// or mqtts://); without it no commands can be sent.")
@click.option("--mqtt-password-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The collector's MQTT password (as `mqtt-acl --collector-password-file` wrote it).")
@click.option("--mqtt-ca-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="CA of the broker's certificate (mqtts://); default: the system CAs.")
@click.option("--mqtt-client-id", envvar="CITYGATE_MQTT_CLIENT_ID", default=None,
              help="MQTT client id of this instance (default: citygate-collector). Each collector instance on one "
                   "broker needs its own: the broker keeps one session per id.")
@click.option("--mqtt-share-group", envvar="CITYGATE_MQTT_SHARE_GROUP", default=None,
              help="Several collector instances: each MQTT message goes to one instance of this group "
                   "($share/GROUP/...); give every instance the same group and its own --mqtt-client-id.")
@click.option("--command-key-file", envvar=KEY_ENV, type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Private key that signs commands (`command-key init`); without it the API sends no command.")
@click.option("--operator-login", is_flag=True, envvar="CITYGATE_OPERATOR_LOGIN",
              help="The control-centre page and the read API for operators only (their token, or a login); "
                   "open data, Open311 and the batch endpoint stay as they are.")
@click.option("--db-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the database URL from this file (instead of --db): its password stays out of ps.")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, envvar="CITYGATE_TRUSTED_PROXIES",
              help="Address or network of a reverse proxy whose X-Forwarded-Proto/-Host/-For headers are "
                   "believed (repeatable; the variable: separated by spaces).")
def serve(db_url: str, territory_path: Path | None, host: str, port: int, max_body_bytes: int | None,
          mqtt_url: str | None, mqtt_password_file: Path | None, mqtt_ca_file: Path | None,
          mqtt_client_id: str | None, mqtt_share_group: str | None, command_key_file: Path | None,
          operator_login: bool, db_file: Path | None,
          trusted_proxies: tuple[str, ...]) -> None:
    """Serve the batch endpoint and the read API until SIGINT/SIGTERM."""
    from collector.access import parse_proxies
    from collector.app import DEFAULT_MAX_BODY_BYTES
    from collector.control.link import LinkConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db_url = _serve_db(db_url, db_file)
    try:
        proxies = parse_proxies(trusted_proxies)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--trusted-proxy") from None
    territory = territory_or_exit(territory_path)
    link = None
    if mqtt_url is not None:
        if mqtt_password_file is None:
            raise click.BadParameter("needed with --mqtt-url", param_hint="--mqtt-password-file")
        if mqtt_client_id is not None and not 1 <= len(mqtt_client_id) <= 128:
            raise click.BadParameter("1 to 128 characters", param_hint="--mqtt-client-id")
        if mqtt_share_group is not None and not mqtt_share_group.replace("-", "").replace("_", "").isalnum():
            raise click.BadParameter("letters, digits, - and _ only", param_hint="--mqtt-share-group")
        try:
            signing = None if command_key_file is None else load_key(command_key_file)
        except KeyFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--command-key-file") from None
        link = LinkConfig(mqtt_url, mqtt_password_file.read_text().strip(), ca_file=mqtt_ca_file,
                          client_id=mqtt_client_id or COLLECTOR_IDENTITY, command_key=signing,
                          share_group=mqtt_share_group)
        try:
            link.endpoint()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--mqtt-url") from None
    try:
        asyncio.run(_serve(db_url, territory, host, port, max_body_bytes or DEFAULT_MAX_BODY_BYTES, link,
                           operator_login, proxies))
    except CollectorError as exc:
        raise click.ClickException(str(exc)) from None


def _serve_db(db_url: str, db_file: Path | None) -> str:
    source = click.get_current_context().get_parameter_source("db_url")
    if db_file is not None:
        if source == ParameterSource.COMMANDLINE:
            raise click.UsageError("give --db or --db-file, not both")
        return read_db_file(db_file)
    if source == ParameterSource.COMMANDLINE and has_secret(db_url):
        logging.getLogger("citygate.collector").warning(
            "the database password is on the command line, where ps shows it: give the URL by $%s or --db-file",
            DB_ENV)
    return db_url


STOP_GRACE_S = 20.0


def _force_exit() -> None:
    logging.getLogger("citygate.collector").error("still stopping after %.0f s: leaving now", STOP_GRACE_S)
    logging.shutdown()
    os._exit(70)  # EX_SOFTWARE; every acknowledged batch is already committed


async def _serve(db_url: str, territory: Territory, host: str, port: int, max_body_bytes: int,
                 link: LinkConfig | None = None, operator_login: bool = False,
                 trusted_proxies: tuple[Network, ...] = ()) -> None:
    from collector.access import TRUSTED_PROXIES
    from collector.app import create_app, start
    from collector.control.routes import attach_link
    from collector.instances import install_instances

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_store(db_url) as store:
        app = create_app(store, territory=territory, max_body_bytes=max_body_bytes, operator_login=operator_login)
        app[TRUSTED_PROXIES] = trusted_proxies
        if link is not None:
            attach_link(app, link)
        install_instances(app)
        runner, url = await start(app, host, port)
        # what start-up built (modules, routes, the territory) lives as long as the process: out of
        # the collector's sight, a full collection no longer walks it (12 ms each, under ingest)
        gc.freeze()
        try:
            # the demo and the tests wait for exactly this line
            click.echo(f"citygate-collector listening on {url}")
            await stop.wait()
            # whatever a connection or the MQTT link waits for, the collector leaves within the grace time
            loop.call_later(STOP_GRACE_S, _force_exit)
        finally:
            await runner.cleanup()


@main.group()
def gateway() -> None:
    """The gateway registry."""


@gateway.command("add")
@click.argument("name")
@click.option("--commune", required=True, help="INSEE code of the gateway's commune.")
@click.option("--cabinet", default=None, help="Street cabinet identifier.")
@click.option("--lat", type=click.FloatRange(-90, 90), default=None)
@click.option("--lon", type=click.FloatRange(-180, 180), default=None)
@token_file_option
@db_option
@territory_option
def gateway_add(
    name: str, commune: str, cabinet: str | None, lat: float | None, lon: float | None,
    token_file: Path | None, db_url: str, territory_path: Path | None,
) -> None:
    """Register gateway NAME and issue its token (shown once, stored hashed)."""
    problem = gateway_name_problem(name)
    if problem:
        raise click.BadParameter(problem, param_hint="NAME")
    territory = territory_or_exit(territory_path)
    resolved = territory.resolve(commune)
    if resolved is None:
        raise click.BadParameter(f"{commune!r} is no commune of {territory.name}", param_hint="--commune")
    if resolved.insee != commune:
        click.echo(f"{commune} is a former commune, merged into {resolved.insee} {resolved.name}: registered there",
                   err=True)
    commune = resolved.insee
    token = new_token()

    async def add() -> None:
        async with open_store(db_url) as store:
            added = await store.add_gateway(name, commune, hash_token(token), cabinet=cabinet, lat=lat, lon=lon)
            # the token is also the gateway's MQTT password: keep the hash Mosquitto reads (mqtt-acl)
            await store.set_mqtt_password(added.id, mosquitto_hash(token), now_ms())
            await store.audit(cli_actor(), "gateway.add", name, f"commune {commune}", now_ms())

    issue_token(token, token_file, add, f"gateway {name} (commune {commune})")


APPLY_MQTT = "run citygate-collector mqtt-acl --reload-pid-file <Mosquitto's pid file> to apply it to MQTT"


@gateway.command("remove")
@click.argument("name")
@db_option
def gateway_remove(name: str, db_url: str) -> None:
    """Take gateway NAME out of service: its token stops opening the batch endpoint at once, its history stays."""
    if not on_store(db_url, lambda store: store.remove_gateway(name, cli_actor(), now_ms())):
        raise click.ClickException(f"no gateway named {name!r}")
    click.echo(f"gateway {name} removed: its token no longer opens the batch endpoint; {APPLY_MQTT}")


@gateway.command("rotate")
@click.argument("name")
@token_file_option
@db_option
def gateway_rotate(name: str, token_file: Path | None, db_url: str) -> None:
    """Issue gateway NAME a new token (also its MQTT password); the old one stops working at once."""
    token = new_token()
    rotate_token("gateway", name, token, token_file, db_url, lambda store: store.rotate_gateway_token(
        name, hash_token(token), mosquitto_hash(token), cli_actor(), now_ms()))
    click.echo(APPLY_MQTT, err=True)


@gateway.command("list")
@db_option
def gateway_list(db_url: str) -> None:
    """Gateways with their commune and last-seen time."""
    from rich.console import Console
    from rich.table import Table

    infos = on_store(db_url, lambda store: store.gateways())  # never creates a database
    if not infos:
        click.echo("no gateway registered: citygate-collector gateway add NAME --commune INSEE")
        return
    table = Table(box=None, pad_edge=False)
    for header in ("gateway", "commune", "cabinet", "last seen (UTC)", "last journal seq"):
        table.add_column(header, overflow="fold")  # a long name folds onto a second line, never cut
    for i in infos:
        table.add_row(i.gateway.name, i.gateway.commune, i.gateway.cabinet or "",
                      when(i.last_seen_ms, seconds=False), readable_seq(i.last_seq))
    Console(width=None if sys.stdout.isatty() else 80).print(table)


gateway.add_command(gateway_import)
main.add_command(mqtt_acl)
main.add_command(mqtt_credential)
main.add_command(operator)
main.add_command(command_key)
main.add_command(audit)
main.add_command(command_group)
main.add_command(vehicle)
main.add_command(retention)
main.add_command(lamps)
main.add_command(reports)
main.add_command(alarms)
