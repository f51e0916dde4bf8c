"""The field technician's commands: ask the running agent through its local API (edge_agent.localapi).

Each command prints a readable table, or the agent's JSON with `--json`, and exits with a code a
script can test (EXIT_CODES). The socket comes from `--socket`, else from `[local_api]` of
`--config` (default /etc/citygate/agent.toml when it exists), else /run/citygate/agent.sock.
Only the `[local_api]` table of the config is read, so a technician who may not read the
uplink token can still use the commands.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import aiohttp
import click
import orjson
from rich.console import Console
from rich.table import Table

from drivers.errors import ConfigError
from edge_agent.config import LocalApiConfig, parse_local_api

EXIT_OK, EXIT_ATTENTION, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2, 3, 4


DEFAULT_CONFIG = Path("/etc/citygate/agent.toml")
BASE = "http://agent/v1"
CALL_TIMEOUT_S = 45.0  # above the agent's own 30 s bound on a live read

F = TypeVar("F", bound=Callable[..., Any])


class Unreachable(Exception):
    """The agent's socket does not answer; the message is the one-line reason."""


class Refused(Exception):
    """The agent answered with a problem document."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# -- finding and calling the agent ---------------------------------------------------------------


def socket_path(socket: Path | None, config: Path | None) -> Path:
    if socket is not None:
        return socket
    file = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    if file is None:
        return LocalApiConfig.socket
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
        return parse_local_api(doc.get("local_api", {}), file.parent).socket
    except OSError as exc:
        fail(EXIT_USAGE, f"config error: {file}: cannot read: {exc.strerror}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        fail(EXIT_USAGE, f"config error: {file}: not valid TOML: {exc}")
    except ConfigError as exc:
        fail(EXIT_USAGE, f"config error: {file}: {exc.key}: {exc.reason}")


def _reason(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, FileNotFoundError):
        return "no such socket (is the agent running?)"
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused (the agent is not running; the socket file is stale)"
    if isinstance(os_error, PermissionError):
        return "permission denied (join the socket's group, e.g. citygate, or use sudo)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CALL_TIMEOUT_S:.0f} s"
    text = str(os_error or exc) or type(exc).__name__
    return " ".join(text.split())


class AgentClient:
    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AgentClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(self.socket)),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=CALL_TIMEOUT_S),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    async def call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None) -> Any:
        try:
            async with self.session.request(
                method, f"{BASE}/{path}", params=params, data=None if body is None else orjson.dumps(body),
                headers={"Content-Type": "application/json"} if body is not None else None,
            ) as resp:
                payload = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unreachable(_reason(exc)) from None
        return _answer(status, payload)

    async def stream(self, path: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        try:
            async with self.session.get(f"{BASE}/{path}", params=params,
                                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)) as resp:
                if resp.status != 200:
                    _answer(resp.status, await resp.read())
                async for line in resp.content:
                    if line.strip():
                        yield orjson.loads(line)
        except (aiohttp.ClientError, OSError) as exc:
            raise Unreachable(_reason(exc)) from None


def _answer(status: int, payload: bytes) -> Any:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = {"detail": payload[:200].decode("utf-8", "replace")}
    if status >= 400:
        detail = doc.get("detail") if isinstance(doc, dict) else None
        raise Refused(status, str(detail or f"the agent answered {status}"))
    return doc


def fail(code: int, message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def ask(ctx_socket: Path, work: Callable[[AgentClient], Any]) -> Any:
    """Run `work` with a client; turn every way of failing into one line and its exit code."""

    async def go() -> Any:
        async with AgentClient(ctx_socket) as client:
            return await work(client)

    try:
        return asyncio.run(go())
    except Unreachable as exc:
        fail(EXIT_UNREACHABLE, f"cannot reach the agent at {ctx_socket}: {exc}")
    except Refused as exc:
        code = {403: EXIT_REFUSED, 400: EXIT_USAGE}.get(exc.status, EXIT_ATTENTION)
        fail(code, f"error: {exc.detail}")


def agent_options(f: F) -> F:
    f = click.option("--json", "as_json", is_flag=True, help="Print the agent's JSON answer.")(f)
    f = click.option("--config", "config_file", type=click.Path(path_type=Path),
                     help=f"Agent config whose [local_api] names the socket (default {DEFAULT_CONFIG}).")(f)
    f = click.option("--socket", type=click.Path(path_type=Path), help="The agent's socket.")(f)
    return f


def print_json(doc: Any) -> None:
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


# -- formatting ----------------------------------------------------------------------------------


def when(ts_ms: int | None, now_ms: int | None = None) -> str:
    """Local time (a person reads it) and how long ago."""
    if ts_ms is None:
        return "never"
    at = datetime.fromtimestamp(ts_ms / 1000).astimezone()
    now = now_ms if now_ms is not None else int(datetime.now().timestamp() * 1000)
    return f"{at:%Y-%m-%d %H:%M:%S %Z} ({span((now - ts_ms) / 1000)} ago)"


def span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def values_text(values: Mapping[str, Any], limit: int = 6) -> str:
    items = list(values.items())
    text = ", ".join(f"{k}={v}" for k, v in items[:limit])
    return text + (f", … (+{len(items) - limit})" if len(items) > limit else "")


STATE_STYLE = {"ok": "green", "failing": "red", "misconfigured": "magenta", "unknown": "yellow"}


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


# -- commands ------------------------------------------------------------------------------------


def loop_mark(loop: Mapping[str, Any]) -> str:
    if loop["healthy"]:
        return "[green]ok[/]"
    return "[red]STUCK[/]" if loop["age_s"] > loop["limit_s"] else "[red]FAILING[/]"  # silent, or ticking but failing


def attention_of_status(doc: Mapping[str, Any]) -> list[str]:
    out = [f"loop {loop['name']}: {loop['problem']}" if loop.get("problem") and loop["age_s"] <= loop["limit_s"]
           else f"loop {loop['name']} silent for {loop['age_s']:.0f} s (limit {loop['limit_s']:.0f} s)"
           for loop in doc["loops"] if not loop["healthy"]]
    up = doc["uplink"]
    if up["consecutive_failures"]:
        out.append(f"uplink failing ({up['consecutive_failures']} attempts): {up['last_error']}")
    bad = {k: v for k, v in doc["devices"].items() if k not in ("total", "ok", "unknown") and v}
    if bad:
        out.append("devices not ok: " + ", ".join(f"{v} {k}" for k, v in sorted(bad.items())))
    if doc["clock"]["synchronised"] is False:
        out.append("clock not synchronised")
    return out


@click.command()
@agent_options
def status(socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Uptime, loops, uplink, broker, clock, journal backlog, versions. Exit 1 if anything needs attention."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", "status"))
    attention = attention_of_status(doc)
    if as_json:
        print_json(doc)
    else:
        now = doc["clock"]["now_ms"]
        up, jr, clock = doc["uplink"], doc["journal"], doc["clock"]
        t = Table(show_header=False, box=None, pad_edge=False)
        t.add_column(style="bold")
        t.add_column()
        t.add_row("gateway", f"{doc['gateway']['id']} (commune {doc['gateway']['commune']})")
        t.add_row("uptime", f"{span(doc['uptime_s'])} (since {when(doc['started_ms'], now)})")
        loops = ", ".join(f"{lp['name']} {loop_mark(lp)}" for lp in doc["loops"])
        t.add_row("loops", loops)
        link = "[green]up[/]" if up["connected"] else ("[red]down[/]" if up["consecutive_failures"] else "idle")
        t.add_row("uplink", f"{link} {up['url']}" + (f" — {up['last_error']}" if up["last_error"] else ""))
        t.add_row("last upload", f"{when(up['last_success_ms'], now)}, {up['uploaded_records']} records since start")
        broker = doc["broker"]
        t.add_row("broker", "not configured" if broker.get("configured") is False else values_text(broker))
        sync = {True: "[green]synchronised[/]", False: "[red]not synchronised[/]", None: "unknown"}
        err = f", max error {clock['max_error_ms']:.0f} ms" if clock["max_error_ms"] is not None else ""
        t.add_row("clock", f"{sync[clock['synchronised']]}{err}")
        t.add_row("journal", f"{jr['records']} unsent, oldest {when(jr['oldest_unsent_ts_ms'], now)}, "
                             f"{size(jr['size_bytes'])}, {jr['dropped_total']} dropped")
        dev = doc["devices"]
        t.add_row("devices", f"{dev['total']} total: " + ", ".join(
            f"{v} {k}" for k, v in sorted(dev.items()) if k != "total") if dev["total"] else "none configured")
        t.add_row("local api", f"{doc['local_api']['socket']}, write calls "
                               f"{'enabled' if doc['local_api']['technician'] else 'disabled'}")
        t.add_row("versions", ", ".join(f"{k} {v}" for k, v in doc["versions"].items()))
        console = Console()
        console.print(t)
        for line in attention:
            console.print(f"[yellow]attention:[/] {line}")
    sys.exit(EXIT_ATTENTION if attention else EXIT_OK)


@click.command()
@agent_options
def devices(socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Every device: bus, address, state, last reading, error counts. Exit 1 if one is not ok."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", "devices"))
    if as_json:
        print_json(doc)
    else:
        t = Table("device", "bus", "address", "state", "last reading", "values", "errors", "last error")
        for d in doc:
            errors = ", ".join(f"{k} {v}" for k, v in sorted(d["errors"].items()) if v) or "0"
            override = d.get("override")
            state = styled(d["state"]) + (f" [cyan](override {override['level_pct']} %)[/]" if override else "")
            t.add_row(d["device"], d["bus"], d["address"], state, when(d["last_ts_ms"]),
                      values_text(d["last_values"], 4), errors, d["last_error"] or "")
        console = Console()
        console.print(t if doc else "no device configured")
    sys.exit(EXIT_ATTENTION if any(d["state"] in ("failing", "misconfigured") for d in doc) else EXIT_OK)


@click.command("read")
@click.argument("device")
@agent_options
def read_device(device: str, socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """One live read of DEVICE through the agent (exit 1 if it does not answer)."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", f"devices/{device}/live"))
    if as_json:
        print_json(doc)
        return
    t = Table("quantity", "value", title=f"{doc['device']} on {doc['bus']}, {when(doc['ts_ms'])}")
    for k, v in doc["values"].items():
        t.add_row(k, str(v))
    Console().print(t)


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


class Duration(click.ParamType):
    """10m, 90s, 1h30m, or a number of seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        m = _DURATION.match(str(value).strip())
        if not m or not any(m.groups()):
            self.fail(f"{value!r} is not a duration like 10m, 90s or 1h30m", param, ctx)
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        return float(h * 3600 + mi * 60 + s)


@click.group()
def lamp() -> None:
    """Test a lamp: a temporary override that expires by itself (needs the technician role)."""


@lamp.command("set")
@click.argument("device")
@click.option("--level", type=click.IntRange(0, 100), required=True, help="Level in percent, 0-100.")
@click.option("--for", "duration", type=Duration(), default="10m", show_default=True,
              help="How long before the programme takes over again (max 12h).")
@agent_options
def lamp_set(device: str, level: int, duration: float, socket: Path | None, config_file: Path | None,
             as_json: bool) -> None:
    """Hold DEVICE at --level for --for, then let it return to its programme."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("PUT", f"lamps/{device}/override",
                                     body={"level_pct": level, "duration_s": duration}))
    if as_json:
        print_json(doc)
        return
    until = doc.get("until_ms")
    line = f"{device} held at {level} % until {when(until).split(' (')[0] if until else '?'}"
    if "feedback_level_pct" in doc:
        line += f"; the controller reads back {doc['feedback_level_pct']} %"
    if "restore_pct" in doc:
        line += f"; then back to {doc['restore_pct']} %"
    click.echo(line)


@lamp.command("clear")
@click.argument("device")
@agent_options
def lamp_clear(device: str, socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """End DEVICE's override now: its programme takes over."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("DELETE", f"lamps/{device}/override"))
    if as_json:
        print_json(doc)
        return
    level = doc.get("level_pct")
    click.echo(f"{device}: override ended" + (f", back to {level} %" if level is not None else ""))


@lamp.command("status")
@agent_options
def lamp_status(socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """What the lighting runs now: group levels and programmes, overrides, each lamp's levels and faults.

    (`citygate-agent schedule --config FILE` shows the switch times of a night, agent or not.)
    """
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", "schedule"))
    if as_json:
        print_json(doc)
    else:
        show_tree(Console(), doc)
    sys.exit(EXIT_ATTENTION if any(lamp.get("faults") for lamp in doc.get("lamps", [])) else EXIT_OK)


@click.group()
def ble() -> None:
    """BLE sensors on the gateway (needs the technician role)."""


@ble.command("forget-counter")
@click.argument("device")
@agent_options
def ble_forget_counter(device: str, socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Accept the next encryption counter of BTHome sensor DEVICE, whatever it is.

    Its adverts are refused as replays (bthome_replay) when its counter restarted, as some
    sensors' do after a battery change. Run this with the sensor in sight: until its next
    advert, a recorded one would be accepted too.
    """
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("DELETE", f"sensors/{device}/counter"))
    if as_json:
        print_json(doc)
        return
    previous = doc.get("previous_counter")
    click.echo(f"{device}: counter forgotten (was {previous if previous is not None else 'none yet'}); "
               f"its next advert sets it again")


def show_tree(console: Console, doc: Any) -> None:
    """Lists of flat records as tables, everything else as `key: value` lines."""
    for key, value in doc.items() if isinstance(doc, dict) else [("", doc)]:
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for v in value for k in v))
            t = Table(*columns, title=key)
            for v in value:
                t.add_row(*(_cell(v.get(c)) for c in columns))
            console.print(t)
        else:
            console.print(f"[bold]{key}[/bold]: {_cell(value)}")


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "" if value is None else str(value)


@click.command()
@agent_options
def journal(socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """What waits in the journal for upload: counts, size, drops."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", "journal"))
    if as_json:
        print_json(doc)
        return
    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("file", doc["path"])
    t.add_row("unsent", f"{doc['records']} records ({doc['samples']} samples, {doc['events']} events)")
    t.add_row("oldest unsent", when(doc["oldest_ts_ms"]))
    t.add_row("seq range", f"{doc['first_seq']} .. {doc['last_seq']}" if doc["first_seq"] is not None else "empty")
    t.add_row("size", f"{size(doc['size_bytes'])} (bound: {doc['max_records']} records)")
    t.add_row("dropped", f"{doc['dropped_total']} samples since the journal was created")
    Console().print(t)
    sys.exit(EXIT_ATTENTION if doc["dropped_total"] else EXIT_OK)


def event_line(doc: Mapping[str, Any]) -> str:
    at = datetime.fromtimestamp(doc["ts_ms"] / 1000).astimezone()
    if doc["kind"] == "dropped":
        return f"… {doc['count']} records not shown (this terminal was too slow)"
    if doc["kind"] == "sample":
        return f"{at:%Y-%m-%d %H:%M:%S}  {doc['device']:<16} sample  {values_text(doc['values'], 8)}"
    detail = orjson.dumps(doc["detail"]).decode() if doc["detail"] else ""
    return f"{at:%Y-%m-%d %H:%M:%S}  {doc['device']:<16} {doc['severity']:<8} {doc['code']}  {detail}"


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they are journalled (Ctrl-C stops).")
@click.option("--samples", is_flag=True, help="With --follow, print readings too.")
@click.option("--limit", "-n", type=click.IntRange(0, 200), default=50, show_default=True,
              help="Recent events to print first.")
@agent_options
def events(follow: bool, samples: bool, limit: int, socket: Path | None, config_file: Path | None,
           as_json: bool) -> None:
    """Recent events (faults, overrides, drops), and with --follow the new ones as they come."""
    path = socket_path(socket, config_file)
    if not follow:
        doc = ask(path, lambda c: c.call("GET", "events", params={"limit": str(limit)}))
        if as_json:
            print_json(doc)
        else:
            for d in doc:
                click.echo(event_line(d))
        return

    async def tail(client: AgentClient) -> None:
        params = {"limit": str(limit), "follow": "1", "samples": "1" if samples else "0"}
        async for d in client.stream("events", params):
            click.echo(orjson.dumps(d).decode() if as_json else event_line(d))
        raise Unreachable("the agent closed the stream (stopped?)")

    try:
        ask(path, tail)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)
