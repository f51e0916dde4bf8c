"""`citygate-collector mqtt-acl`, `mqtt-credential`, `operator ...`, `command ...` and `audit`
(registered in collector/cli.py). What they print fits 80 columns."""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import signal
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from citygate_wire.common import now_ms
from citygate_wire.mqtt import COLLECTOR_IDENTITY, WireError
from collector.cli_db import db_option, existing_db, read_secret
from collector.control.acl import AclError, acl_file, gateway_name_problem, mosquitto_hash, password_file
from collector.control.commands import ACTION_RANK
from collector.control.model import CommandRow
from collector.credentials import DEFAULT_LEVEL, LEVELS, ROLES, OperatorInfo
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
    """`work` on the opened store, for a command; a database that does not exist is an error, never
    created (cli_db.existing_db)."""
    existing_db(db_url)

    async def run() -> T:
        async with open_store(db_url) as store:
            return await work(store)

    return run_store(run())


token_file_option = click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                                 help="Write the token to this file (mode 600) instead of printing it.")


def rotate_token(kind: str, name: str, token: str, token_file: Path | None, db_url: str,
                 rotate: Callable[[Store], Awaitable[bool]]) -> None:
    """Replace the token of `kind` NAME (`rotate` stores the new one's hash), then give the new token once."""
    existing_db(db_url)

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
    """Control-centre operators (they read, send commands and handle alarms, by name and rank)."""


ROLE_OPTION = click.option(
    "--role", "roles", multiple=True, type=click.Choice(sorted(ROLES)),
    help="A role the operator holds (repeatable): one rank, viewer (reads), operator (also lighting "
         "commands, alarms, reports) or supervisor (also traffic commands); police opens the police "
         "vehicles' data.")


def _roles(roles: tuple[str, ...]) -> frozenset[str]:
    """The roles given, with a rank: DEFAULT_LEVEL when none was given; one rank at most."""
    ranks = sorted(set(roles).intersection(LEVELS))
    if len(ranks) > 1:
        raise click.BadParameter(f"one rank at most, not {' and '.join(ranks)}", param_hint="--role")
    return frozenset(roles) | (frozenset() if ranks else {DEFAULT_LEVEL})


@operator.command("add")
@click.argument("name")
@ROLE_OPTION
@token_file_option
@db_option
def operator_add(name: str, roles: tuple[str, ...], token_file: Path | None, db_url: str) -> None:
    """Register operator NAME and issue the bearer token of the control API (shown once, stored hashed).
    Its rank is `operator` unless a --role gives another."""
    if not name.strip() or len(name) > 64 or not name.isprintable():
        raise click.BadParameter("1 to 64 printable characters", param_hint="NAME")
    held = _roles(roles)
    token = new_operator_token()

    async def add() -> None:
        async with open_store(db_url) as store:
            await store.add_operator(name, hash_token(token), now_ms())
            await store.audit(cli_actor(), "operator.add", name, "token issued", now_ms())
            await store.set_operator_roles(name, held, cli_actor(), now_ms())

    issue_token(token, token_file, add, f"operator {name} ({' '.join(sorted(held))})")


@operator.command("list")
@db_option
def operator_list(db_url: str) -> None:
    """Operators: rank, other roles, when added, last login (UTC) and open login sessions."""
    from rich.console import Console
    from rich.table import Table

    from collector.access import rank

    async def fetch(store: Store) -> tuple[list[OperatorInfo], dict[str, int]]:
        return await store.operators(), await store.last_logins()

    operators, logins = on_store(db_url, fetch)
    if not operators:
        click.echo("no operator yet: citygate-collector operator add NAME --role viewer|operator|supervisor")
        return
    table = Table(box=None, pad_edge=False)
    for header in ("operator", "rank", "roles", "added (UTC)", "last login (UTC)", "sessions"):
        table.add_column(header, overflow="fold")  # a long name folds onto a second line, never cut
    for o in operators:
        others = " ".join(sorted(o.roles.difference(LEVELS))) or "-"
        shown = rank(o.roles) if o.roles.intersection(LEVELS) else f"{DEFAULT_LEVEL}*"
        table.add_row(o.name, shown, others, when(o.created_ms, seconds=False),
                      when(logins.get(o.name), seconds=False), str(o.sessions))
    Console(width=None if sys.stdout.isatty() else 80).print(table)
    if any(not o.roles.intersection(LEVELS) for o in operators):
        click.echo(f"* no rank given (added before ranks existed): {DEFAULT_LEVEL}")


@operator.command("roles")
@click.argument("name")
@ROLE_OPTION
@click.option("--none", "no_role", is_flag=True, help=f"Take every role away (the rank is then {DEFAULT_LEVEL}).")
@db_option
def operator_roles(name: str, roles: tuple[str, ...], no_role: bool, db_url: str) -> None:
    """Give operator NAME exactly the --role options (its rank, and police if it keeps it), or --none;
    its open sessions follow at once."""
    if bool(roles) == no_role:
        raise click.UsageError("give one or more --role, or --none")
    held = frozenset() if no_role else _roles(roles)
    if not on_store(db_url, lambda store: store.set_operator_roles(name, held, cli_actor(), now_ms())):
        raise click.ClickException(f"no operator named {name!r}")
    click.echo(f"operator {name}: {' '.join(sorted(held)) or 'no role'}")


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


def when(ms: int | None, *, seconds: bool = True) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


#: a gateway's journal numbers its records from the instant it was created, in microseconds
_SEQ_EPOCH_MIN = 10**15  # 2001-09-09 in microseconds: a smaller seq is a plain counter


def readable_seq(seq: int | None) -> str:
    """A journal sequence number as a person reads it: digits grouped by three, and the day the
    gateway's journal was started when the number says it (drivers number from that instant, in µs):
    `1,764,096,001,234,567 (journal of 2025-11-25)`."""
    if seq is None:
        return "-"
    grouped = f"{seq:,}"
    if seq < _SEQ_EPOCH_MIN:
        return grouped
    started = datetime.fromtimestamp(seq // 1_000_000, UTC).strftime("%Y-%m-%d")
    return f"{grouped} (journal of {started})"


# -- commands from a terminal ---------------------------------------------------------------------

WAIT_STEP_S = 0.5


@click.group("command")
def command_group() -> None:
    """Commands to gateways: send one and wait for its acks, list the audit."""


def _arg_value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def command_args(pairs: tuple[str, ...], args_file: Path | None, for_s: int | None, action: str) -> dict[str, Any]:
    """The command's args: the file's JSON object, then each KEY=VALUE (VALUE read as JSON when it is:
    42, true, "x"; else as text), then --for as until_ms."""
    args: dict[str, Any] = {}
    if args_file is not None:
        try:
            loaded = orjson.loads(args_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise click.BadParameter(f"{args_file}: {exc}", param_hint="--args-file") from None
        if not isinstance(loaded, dict):
            raise click.BadParameter(f"{args_file}: expected a JSON object", param_hint="--args-file")
        args.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--arg")
        args[key] = _arg_value(value)
    if for_s is not None:
        if action != "lighting.override":
            raise click.BadParameter("only for lighting.override", param_hint="--for")
        args["until_ms"] = now_ms() + for_s * 1000
    return args


@command_group.command("send")
@click.argument("action", type=click.Choice(sorted(ACTION_RANK)))
@click.option("--gateway", default=None, help="The gateway to send it to.")
@click.option("--commune", default=None, help="INSEE code: every gateway registered in the commune.")
@click.option("--arg", "pairs", multiple=True, metavar="KEY=VALUE",
              help="An argument (repeatable): --arg lamp=lamp-3 --arg level_pct=40.")
@click.option("--args-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The arguments as a JSON object (a program set for lighting.push_programs).")
@click.option("--for", "for_s", type=click.IntRange(1, 24 * 3600), default=None, metavar="SECONDS",
              help="lighting.override: until this many seconds from now (sets until_ms).")
@click.option("--valid-s", default=300, show_default=True, type=click.IntRange(1, 24 * 3600),
              help="Seconds the command stays valid: a gateway reached later refuses it.")
@click.option("--reason", default=None, help="Why (audited; traffic commands need one).")
@click.option("--wait", is_flag=True, help="Wait for every gateway's answer and print it.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(1, 24 * 3600),
              help="With --wait: give up waiting after this many seconds (exit 1).")
@db_option
def command_send(action: str, gateway: str | None, commune: str | None, pairs: tuple[str, ...],
                 args_file: Path | None, for_s: int | None, valid_s: int, reason: str | None, wait: bool,
                 timeout: float, db_url: str) -> None:
    """Send ACTION to a gateway or to a commune's gateways, audited as the Unix user.

    The command goes into the store, checked as its gateways will check it; the running
    collector's MQTT link sends it within its resend interval (10 s) and records each answer.
    Exit status with --wait: 0 every gateway carried it out (done or accepted), 1 otherwise.
    """
    from collector.control.commands import REASON_NEEDED, TargetError, new_command, resolve_targets
    from collector.territory import load_territory

    args = command_args(pairs, args_file, for_s, action)
    reason = (reason or "").strip() or None
    if action in REASON_NEEDED and reason is None:
        raise click.BadParameter(f"{action} needs a reason (audited)", param_hint="--reason")
    try:
        cmd = new_command(cli_actor(), action, args, valid_s)
    except WireError as exc:
        raise click.ClickException(f"refused before sending: {exc.pointer or '/'}: {exc.reason}") from None
    try:
        territory = None if commune is None else load_territory()
    except CollectorError as exc:
        raise click.ClickException(str(exc)) from None

    async def send(store: Store) -> CommandRow:
        try:
            target, ids = await resolve_targets(store, territory, gateway, commune)
        except TargetError as exc:
            raise click.ClickException(str(exc)) from None
        await store.add_command(cmd, target, ids, reason)
        if not wait:
            row = await store.command(cmd.id)
            assert row is not None
            return row
        deadline = time.monotonic() + timeout
        while True:
            row = await store.command(cmd.id)
            assert row is not None
            if row.final or time.monotonic() >= deadline:
                return row
            await asyncio.sleep(WAIT_STEP_S)

    row = on_store(db_url, send)
    for line in describe_command(row):
        click.echo(line)
    if wait:
        if not row.final:
            raise click.ClickException(f"no final answer within {timeout:g} s: see `citygate-collector command "
                                       f"show {row.id}` (is the collector running with --mqtt-url?)")
        if any(d.status not in ("done", "accepted") for d in row.deliveries):
            sys.exit(1)


@command_group.command("show")
@click.argument("command_id")
@db_option
def command_show(command_id: str, db_url: str) -> None:
    """One command: who sent what, why, and each gateway's answer."""
    row = on_store(db_url, lambda store: store.command(command_id))
    if row is None:
        raise click.ClickException(f"no command {command_id!r}")
    for line in describe_command(row):
        click.echo(line)


@command_group.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@db_option
def command_list(limit: int, db_url: str) -> None:
    """The audit of commands, newest first (UTC): when, who, what, to whom, the answers so far."""
    rows = on_store(db_url, lambda store: store.commands(limit))
    if not rows:
        click.echo("no command sent yet")
    for row in rows:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(row.as_json()["counts"].items()))
        click.echo(fit(f"{when(row.issued_at_ms, seconds=False)}  {row.id[:8]}  {row.action}  {row.target}"))
        click.echo(fit(f"    by {row.issued_by}: {counts or 'no gateway'}"
                       + (f"; reason: {row.reason}" if row.reason else "")))


def fit(line: str, width: int = 80) -> str:
    return line if len(line) <= width else line[:width - 1] + "…"


def describe_command(row: CommandRow) -> list[str]:
    """The lines `command send` and `show` print: the command, then one line per gateway (80 columns)."""
    args = orjson.dumps(dict(row.args)).decode()
    lines = [f"command {row.id}", fit(f"  {row.action} to {row.target}, by {row.issued_by}"),
             fit(f"  args {args}"),
             f"  issued {when(row.issued_at_ms)} UTC, valid until {when(row.expires_at_ms)} UTC"]
    if row.reason:
        lines += textwrap.wrap(f"reason: {row.reason}", 80, initial_indent="  ", subsequent_indent="    ")
    for d in row.deliveries:
        status = d.status + (f" ({d.code})" if d.code else "")
        answered = f" at {when(d.answered_ms)}" if d.answered_ms else ""
        lines.append(fit(f"  {d.gateway}: {status}{answered}"))
        if d.reason:
            lines += textwrap.wrap(d.reason, 80, initial_indent="    ", subsequent_indent="    ")
        if d.result:
            lines.append(fit(f"    {orjson.dumps(dict(d.result)).decode()}"))
    return lines
