"""`citygate-collector mqtt-acl`, `mqtt-credential`, `operator ...` and `audit` (registered in collector/cli.py)."""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import signal
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from citygate_wire.common import now_ms
from citygate_wire.mqtt import COLLECTOR_IDENTITY
from collector.cli_db import db_option, read_secret
from collector.control.acl import AclError, acl_file, gateway_name_problem, mosquitto_hash, password_file
from collector.credentials import ROLES
from collector.errors import CollectorError
from collector.store import Store, open_store
from collector.tokens import check_writable, hash_token, new_operator_token, write_private

T = TypeVar("T")


def cli_actor() -> str:
    """Who runs the command, for the audit: the Unix user (through sudo, the one who ran sudo)."""
    user = os.environ.get("SUDO_USER")
    if not user:
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:  # a uid without a passwd entry (a container)
            user = f"uid {os.getuid()}"
    return f"cli:{user}"


def run_store(work: Coroutine[Any, Any, T]) -> T:
    """Run a store coroutine of a command; a store error is the command's error message."""
    try:
        return asyncio.run(work)
    except CollectorError as exc:
        raise click.ClickException(str(exc)) from None


def on_store(db_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """`work` on the opened store, for a command."""
    async def run() -> T:
        async with open_store(db_url) as store:
            return await work(store)

    return run_store(run())


token_file_option = click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                                 help="Write the token to this file (mode 600) instead of printing it.")


def rotate_token(kind: str, name: str, token: str, token_file: Path | None, db_url: str,
                 rotate: Callable[[Store], Awaitable[bool]]) -> None:
    """Replace the token of `kind` NAME (`rotate` stores the new one's hash), then give the new token once."""
    async def register() -> None:
        async with open_store(db_url) as store:
            if not await rotate(store):
                raise click.ClickException(f"no {kind} named {name!r}")

    issue_token(token, token_file, register, f"{kind} {name}", "has a new token")


def issue_token(token: str, token_file: Path | None, register: Callable[[], Coroutine[Any, Any, None]],
                what: str, done: str = "added") -> None:
    """Register the holder of a new `token` (`register`, which stores its hash), then give the token
    once: printed, or written to `token_file` (0600). An unwritable file refuses before anything is
    registered, so no token is issued that nobody holds."""
    unwritable = None if token_file is None else check_writable(token_file)
    if unwritable:
        raise click.BadParameter(f"{unwritable}: {what} not {done}", param_hint="--token-file")
    run_store(register())
    if token_file is None:
        click.echo(token)
        click.echo(f"{what} {done}; the token above is not shown again", err=True)
        return
    write_private(token_file, token + "\n", 0o600)
    click.echo(f"{what} {done}; token written to {token_file}")


@click.command("mqtt-acl")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write `passwd` and `acl` to (Mosquitto's password_file and acl_file).")
@click.option("--collector-password-file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The collector's own MQTT password (serve --mqtt-password-file); created if missing.")
@click.option("--reload-pid-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Mosquitto's pid_file (Debian: /run/mosquitto/mosquitto.pid): send it SIGHUP once the files "
                   "are written, so it reads them again.")
@db_option
def mqtt_acl(out_dir: Path, collector_password_file: Path, reload_pid_file: Path | None, db_url: str) -> None:
    """Generate Mosquitto's password and ACL files from the gateway registry.

    Each gateway logs in with its name and its own token, publishes only under
    city/+/NAME/{state,alarm,ack} and reads only city/+/NAME/cmd; only the collector's
    identity (citygate-collector) publishes commands. Mosquitto reads them again on SIGHUP:
    --reload-pid-file sends it, or `systemctl reload mosquitto`.
    """
    async def fetch() -> tuple[list[str], dict[str, str]]:
        async with open_store(db_url) as store:
            names = [i.gateway.name for i in await store.gateways()]
            return names, dict(await store.mqtt_passwords())

    names, hashes = run_store(fetch())
    # a name registered before `gateway add` checked names cannot go into the files: that one
    # gateway stays out, the rest of the fleet gets its files
    kept = []
    for name in names:
        problem = gateway_name_problem(name)
        if problem:
            click.echo(f"warning: gateway {name!r} left out of the broker's files: {problem}", err=True)
        else:
            kept.append(name)
    names = kept
    new_password = not collector_password_file.exists()
    collector_password = secrets.token_urlsafe(32) if new_password else read_secret(collector_password_file, "the collector's MQTT password")
    entries = [(COLLECTOR_IDENTITY, mosquitto_hash(collector_password))]
    entries += [(name, hashes[name]) for name in names if name in hashes]
    try:
        passwd_text, acl_text = password_file(entries), acl_file(names)
    except AclError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        if new_password:
            collector_password_file.parent.mkdir(parents=True, exist_ok=True)
            write_private(collector_password_file, collector_password + "\n", 0o600)
            click.echo(f"new collector MQTT password written to {collector_password_file}", err=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        # 0640: the broker's group reads them; the hashes are of 256-bit tokens, but still nobody else's business
        write_private(out_dir / "passwd", passwd_text, 0o640)
        write_private(out_dir / "acl", acl_text, 0o640)
    except OSError as exc:
        raise click.ClickException(f"cannot write the broker's files: {exc}") from None
    missing = [name for name in names if name not in hashes]
    for name in missing:
        click.echo(f"gateway {name} has no MQTT credential yet and cannot log in: "
                   f"citygate-collector mqtt-credential {name} --token-file <its token>", err=True)
    wrote = f"wrote {out_dir / 'passwd'} ({len(entries)} identities) and {out_dir / 'acl'} ({len(names)} gateways)"
    if reload_pid_file is None:
        click.echo(f"{wrote}; reload Mosquitto (SIGHUP) to apply")
        return
    pid = reload_broker(reload_pid_file)
    click.echo(f"{wrote}; Mosquitto (pid {pid}) reloads them")


def reload_broker(pid_file: Path) -> int:
    """Send SIGHUP to the broker whose pid `pid_file` holds; a ClickException says why it could not."""
    why = f"the files are written, but Mosquitto was not told to reload them: {pid_file}"
    try:
        text = pid_file.read_text().strip()
    except OSError as exc:
        raise click.ClickException(f"{why}: {exc.strerror}") from None
    if not text.isdigit() or int(text) <= 1:
        raise click.ClickException(f"{why}: {text[:40]!r} is no process id")
    pid = int(text)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise click.ClickException(f"{why}: no process {pid} (a stale pid file: is Mosquitto running?)") from None
    except PermissionError:
        raise click.ClickException(f"{why}: not allowed to signal process {pid}") from None
    return pid


@click.command("mqtt-credential")
@click.argument("name")
@click.option("--token-file", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The gateway's current token (as `gateway add` issued it).")
@db_option
def mqtt_credential(name: str, token_file: Path, db_url: str) -> None:
    """Keep the MQTT password hash of gateway NAME, whose token was issued before the registry kept one."""
    token = read_secret(token_file, "a token")

    async def store_hash() -> None:
        async with open_store(db_url) as store:
            gateway = await store.gateway_for_token(hash_token(token))
            if gateway is None or gateway.name != name:
                raise click.ClickException(f"{token_file} does not hold gateway {name}'s token")
            await store.set_mqtt_password(gateway.id, mosquitto_hash(token), now_ms())

    try:
        asyncio.run(store_hash())
    except CollectorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"gateway {name}: MQTT credential kept; run citygate-collector mqtt-acl to apply it")


@click.group()
def operator() -> None:
    """Control-centre operators (they send commands and handle alarms, by name)."""


ROLE_OPTION = click.option("--role", "roles", multiple=True, type=click.Choice(sorted(ROLES)),
                           help="A role the operator holds (repeatable): police opens the police vehicles' data.")


@operator.command("add")
@click.argument("name")
@ROLE_OPTION
@token_file_option
@db_option
def operator_add(name: str, roles: tuple[str, ...], token_file: Path | None, db_url: str) -> None:
    """Register operator NAME and issue the bearer token of the control API (shown once, stored hashed)."""
    if not name.strip() or len(name) > 64 or not name.isprintable():
        raise click.BadParameter("1 to 64 printable characters", param_hint="NAME")
    token = new_operator_token()

    async def add() -> None:
        async with open_store(db_url) as store:
            await store.add_operator(name, hash_token(token), now_ms())
            await store.audit(cli_actor(), "operator.add", name, "token issued", now_ms())
            if roles:
                await store.set_operator_roles(name, frozenset(roles), cli_actor(), now_ms())

    issue_token(token, token_file, add, f"operator {name}")


@operator.command("list")
@db_option
def operator_list(db_url: str) -> None:
    """Operators, when they were added and their open login sessions."""
    for o in on_store(db_url, lambda store: store.operators()):
        roles = " ".join(sorted(o.roles)) or "no role"
        click.echo(f"{o.name}\tadded {when(o.created_ms)}\t{o.sessions} open session(s)\t{roles}")


@operator.command("roles")
@click.argument("name")
@ROLE_OPTION
@click.option("--none", "no_role", is_flag=True, help="Take every role away.")
@db_option
def operator_roles(name: str, roles: tuple[str, ...], no_role: bool, db_url: str) -> None:
    """Give operator NAME exactly the --role options (or --none); its open sessions follow at once."""
    if bool(roles) == no_role:
        raise click.UsageError("give one or more --role, or --none")
    if not on_store(db_url, lambda store: store.set_operator_roles(name, frozenset(roles), cli_actor(), now_ms())):
        raise click.ClickException(f"no operator named {name!r}")
    click.echo(f"operator {name}: {' '.join(sorted(roles)) or 'no role'}")


@operator.command("remove")
@click.argument("name")
@db_option
def operator_remove(name: str, db_url: str) -> None:
    """Delete operator NAME: its token and its login sessions stop working at once."""
    if not on_store(db_url, lambda store: store.remove_operator(name, cli_actor(), now_ms())):
        raise click.ClickException(f"no operator named {name!r}")
    click.echo(f"operator {name} removed: its token and sessions no longer open the control centre")


@operator.command("rotate")
@click.argument("name")
@token_file_option
@db_option
def operator_rotate(name: str, token_file: Path | None, db_url: str) -> None:
    """Issue operator NAME a new token; the old one and its sessions stop working at once."""
    token = new_operator_token()
    rotate_token("operator", name, token, token_file, db_url,
                 lambda store: store.rotate_operator_token(name, hash_token(token), cli_actor(), now_ms()))


@click.command("audit")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@db_option
def audit(limit: int, db_url: str) -> None:
    """Who added, removed or rotated which credential, and operators' logins, newest first (UTC)."""
    for row in on_store(db_url, lambda store: store.audit_log(limit)):
        click.echo(f"{when(row.at_ms)}\t{row.actor}\t{row.action}\t{row.target}\t{row.detail}")


def when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
