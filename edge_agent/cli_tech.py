"""The field technician's commands: ask the running agent through its local API (edge_agent.localapi).

Each command prints what a person reads in an 80-column terminal (names never cut, local times
with their zone, yes/no rather than True/False), or the agent's JSON with `--json`, and exits with
a code a script can test (EXIT_CODES). The socket comes from `--socket`, else $CITYGATE_SOCKET, else
from `[local_api]` of `--config` (default /etc/citygate/agent.toml when it exists), else
/run/citygate/agent.sock. Only the `[local_api]` table of the config is read, so a technician who
may not read the uplink token can still use the commands.

The HTTP client (edge_agent.cli_client), rich and the config parser are imported where they are used, not here: `--help` and
shell completion must not pay for them (tests/test_cli_startup.py).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from edge_agent.cli_group import SuggestingGroup
from edge_agent.cli_view import (
    EXIT_ATTENTION,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    ago,
    console,
    fail,
    human,
    keyed_table,
    local_time,
    notes,
    override_text,
    pct,
    print_json,
    size,
    span,
    styled,
    table,
    values_text,
    when,
)

if TYPE_CHECKING:
    from rich.table import Table

    from edge_agent.cli_client import AgentClient



DEFAULT_CONFIG = Path("/etc/citygate/agent.toml")

F = TypeVar("F", bound=Callable[..., Any])


# -- finding and calling the agent ---------------------------------------------------------------


def socket_path(socket: Path | None, config: Path | None) -> Path:
    import tomllib

    from drivers.errors import ConfigError
    from edge_agent.config import LocalApiConfig, parse_local_api

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


def ask(ctx_socket: Path, work: Callable[[AgentClient], Any]) -> Any:
    """Run `work` with a client; turn every way of failing into one line and its exit code."""
    from edge_agent.cli_client import AgentClient, Refused, Unreachable

    try:
        return work(AgentClient(ctx_socket))
    except Unreachable as exc:
        fail(EXIT_UNREACHABLE, f"cannot reach the agent at {ctx_socket}: {exc}")
    except Refused as exc:
        code = {403: EXIT_REFUSED, 400: EXIT_USAGE}.get(exc.status, EXIT_ATTENTION)
        fail(code, f"error: {exc.detail}")


def agent_options(f: F) -> F:
    f = click.option("--json", "as_json", is_flag=True, help="Print the agent's JSON answer.")(f)
    f = click.option("--config", "config_file", type=click.Path(path_type=Path),
                     help=f"Agent config whose [local_api] names the socket (default {DEFAULT_CONFIG}).")(f)
    f = click.option("--socket", type=click.Path(path_type=Path), envvar="CITYGATE_SOCKET", show_envvar=True,
                     help="The agent's socket.")(f)
    return f


def _device_ids(path: Path, kind: str | None) -> list[str]:
    """The running agent's device ids, asked with the standard library: completion must answer at once."""
    from edge_agent.cli_client import PREFIX, UnixConnection

    conn = UnixConnection(path, timeout=1.0)
    try:
        conn.request("GET", f"{PREFIX}/devices")
        doc = orjson.loads(conn.getresponse().read())
    finally:
        conn.close()
    return [d["device"] for d in doc if kind is None or d.get("bus_kind") == kind]


def complete_devices(kind: str | None = None) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """Shell completion of a DEVICE argument from the agent's device list; silent when the agent is not there."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        try:
            socket = ctx.params.get("socket") or os.environ.get("CITYGATE_SOCKET")
            path = socket_path(Path(socket) if socket else None, ctx.params.get("config_file"))
            return [d for d in _device_ids(path, kind) if d.startswith(incomplete)]
        except (Exception, SystemExit):  # no agent, a bad config, an old agent: completion just offers nothing
            return []

    return complete


# -- commands ------------------------------------------------------------------------------------


def loop_mark(loop: Mapping[str, Any]) -> str:
    if loop["healthy"]:
        return "[green]ok[/]"
    return "[red]STUCK[/]" if loop["age_s"] > loop["limit_s"] else "[red]FAILING[/]"  # silent, or ticking but failing


_UNIT = re.compile(r"(\d) (B|kB|MB)\b")


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
    usage = doc.get("usage")  # an agent older than the usage counts has none
    if usage and usage["warning"]:
        out.append(_UNIT.sub("\\1\u00a0\\2", usage["warning"]))  # a size is never cut from its unit
    return out


def status_table(doc: Mapping[str, Any]) -> Table:
    now = doc["clock"]["now_ms"]
    up, jr, clock = doc["uplink"], doc["journal"], doc["clock"]
    t = keyed_table()
    t.add_row("gateway", f"{doc['gateway']['id']} (commune {doc['gateway']['commune']})")
    t.add_row("uptime", f"{span(doc['uptime_s'])}, since {local_time(doc['started_ms'])}")
    t.add_row("loops", ", ".join(f"{lp['name']} {loop_mark(lp)}" for lp in doc["loops"]))
    link = "[green]up[/]" if up["connected"] else ("[red]down[/]" if up["consecutive_failures"] else "idle")
    t.add_row("uplink", f"{link} {up['url']}" + (f" — {up['last_error']}" if up["last_error"] else ""))
    t.add_row("last upload", f"{when(up['last_success_ms'], now)}; {up['uploaded_records']} records since start")
    broker = doc["broker"]
    t.add_row("broker", "not configured" if broker.get("configured") is False else values_text(broker))
    sync = {True: "[green]synchronised[/]", False: "[red]not synchronised[/]", None: "unknown"}
    err = f", max error {span(clock['max_error_ms'] / 1000)}" if clock["max_error_ms"] is not None else ""
    t.add_row("clock", f"{sync[clock['synchronised']]}{err}")
    t.add_row("journal", f"{jr['records']} unsent, oldest {when(jr['oldest_unsent_ts_ms'], now)}; "
                         f"{size(jr['size_bytes'])}, {jr['dropped_total']} dropped")
    dev = doc["devices"]
    t.add_row("devices", f"{dev['total']} total: " + ", ".join(
        f"{v} {k}" for k, v in sorted(dev.items()) if k != "total") if dev["total"] else "none configured")
    usage = doc.get("usage")
    if usage:
        for name, text in usage_rows(usage):
            t.add_row(name, text)
    t.add_row("local api", f"{doc['local_api']['socket']}, write calls "
                           f"{'enabled' if doc['local_api']['technician'] else 'disabled'}")
    t.add_row("versions", ", ".join(f"{k} {v}" for k, v in doc["versions"].items()))
    return t


def usage_rows(usage: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The status rows of what the gateway spent: its uplink data, the uploads' and the MQTT control
    link's (UTC day and month), and disk writes."""
    from edge_agent.uplink_usage import data_text as data

    today, month = usage["uplink_today"], usage["uplink_month"]
    control_today = usage.get("control_today", 0)  # an agent older than the control link's count has none
    rows = [("data today", f"{data(today['sent'] + today['received'])} of uplink ({data(today['sent'])} sent,"
                           f" {data(today['received'])} received; control link {data(control_today)});"
                           f" {data(usage['disk_written_today'])} written to disk ({usage['day']} UTC)")]
    line = f"{data(month['sent'] + month['received'])} of uplink in {usage['month']}"
    if usage["monthly_budget_bytes"] is not None:
        line += f" of a {data(usage['monthly_budget_bytes'])} budget"
    if usage["projected_month_bytes"] is not None:
        line += f"; {data(usage['projected_month_bytes'])} by the month's end at this rate"
    rows.append(("data month", line))
    return rows


@click.command()
@agent_options
def status(socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Uptime, loops, uplink, broker, clock, journal backlog, versions. Exit 1 if anything needs attention.

    Also the data the gateway spent: uplink bytes today and this month, disk writes today."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", "status"))
    attention = attention_of_status(doc)
    if as_json:
        print_json(doc)
    else:
        out = console()
        out.print(status_table(doc))
        notes([f"attention: {line}" for line in attention])
    sys.exit(EXIT_ATTENTION if attention else EXIT_OK)


def devices_view(doc: list[dict[str, Any]]) -> tuple[list[Table], list[str]]:
    """One table per bus (its name in the title) and the lines under them (errors, overrides).

    The name and the address (a MAC) are never cut; with a bus column, or the readings, they
    would no longer fit 80 columns beside the state and counts (`read DEVICE` shows the values).
    """
    tables, below = [], []
    for bus in dict.fromkeys(d["bus"] for d in doc):
        t = table("device", "address", "state", "last reading", "errors", title=f"bus {bus}")
        t.columns[1].no_wrap = True
        for d in (d for d in doc if d["bus"] == bus):
            errors = ", ".join(f"{k} {v}" for k, v in sorted(d["errors"].items()) if v) or "0"
            override = d.get("override")
            state = styled(d["state"]) + (" [cyan](override)[/]" if override else "")
            t.add_row(d["device"], d["address"], state, ago(d["last_ts_ms"]), errors)
            if d["last_error"] and d["state"] != "ok":
                below.append(f"{d['device']}: {d['last_error']}")
            if override:
                below.append(f"{d['device']}: {override_text(override)}")
        tables.append(t)
    return tables, below


@click.command()
@agent_options
def devices(socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Every device: address, state, last reading, error counts. Exit 1 if one is not ok.

    `read DEVICE` shows a device's values.
    """
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", "devices"))
    if as_json:
        print_json(doc)
    elif not doc:
        click.echo("no device configured")
    else:
        tables, below = devices_view(doc)
        out = console()
        for t in tables:
            out.print(t)
        notes(below)
    sys.exit(EXIT_ATTENTION if any(d["state"] in ("failing", "misconfigured") for d in doc) else EXIT_OK)


@click.command("read")
@click.argument("device", shell_complete=complete_devices())
@agent_options
def read_device(device: str, socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """One live read of DEVICE through the agent. Exit 1 if it does not answer."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", f"devices/{device}/live"))
    if as_json:
        print_json(doc)
        return
    notes([f"{doc['device']} on bus {doc['bus']}, read {local_time(doc['ts_ms'])}"])
    t = table("quantity", "value")
    for k, v in doc["values"].items():
        t.add_row(k, human(v))
    console().print(t)


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
MAX_OVERRIDE_S = 12 * 3600  # the agent's own bound on a test override


class Duration(click.ParamType):
    """10m, 90s, 1h30m, or a number of seconds; between 1 s and `most_s`."""

    name = "duration"

    def __init__(self, most_s: int) -> None:
        self.most_s = most_s

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        m = _DURATION.match(str(value).strip())
        if not m or not any(m.groups()):
            self.fail(f"{value!r} is not a duration like 10m, 90s or 1h30m", param, ctx)
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
        if seconds < 1:
            self.fail(f"{value} is too short: at least 1 s", param, ctx)
        if seconds > self.most_s:
            self.fail(f"{value} is too long: at most {duration_text(self.most_s)}", param, ctx)
        return float(seconds)


def duration_text(seconds: int) -> str:
    """12 h, 90 min, 45 s: the way the option is written, not the API's duration_s."""
    for unit, size_s in (("h", 3600), ("min", 60)):
        if seconds % size_s == 0:
            return f"{seconds // size_s} {unit}"
    return f"{seconds} s"


@click.group(cls=SuggestingGroup)
def lamp() -> None:
    """Test a lamp: a temporary override that expires by itself. Needs the technician role."""


@lamp.command("set")
@click.argument("device", shell_complete=complete_devices("lamps"))
@click.option("--level", type=click.IntRange(0, 100), required=True, help="Level in percent, 0-100.")
@click.option("--for", "duration", type=Duration(MAX_OVERRIDE_S), default="10m", show_default=True,
              help="How long before the programme takes over again (at most 12h).")
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
    line = f"{device} held at {level} % until {local_time(until) if until else '?'}"
    if "feedback_level_pct" in doc:
        line += f"; the controller reads back {doc['feedback_level_pct']} %"
    if "restore_pct" in doc:
        line += f"; then back to {doc['restore_pct']} %"
    notes([line])


@lamp.command("clear")
@click.argument("device", shell_complete=complete_devices("lamps"))
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


def lamp_level(lamp: Mapping[str, Any]) -> str:
    """The level read, and the target only when the lamp is not at it (commanded and read-back are --json detail)."""
    actual, target = lamp.get("level_pct"), lamp.get("target_level_pct")
    text = "no reading" if actual is None else pct(actual)
    return text if target is None or target == actual else f"{text} (target {pct(target)})"


def next_switch_text(switch: Mapping[str, Any] | None) -> str:
    if not switch:
        return "—"
    at = datetime.fromisoformat(switch["at"]).astimezone()  # within a day: the weekday tells which
    return f"{at:%a %H:%M %Z} → {pct(switch.get('level_pct'))}"


def lighting_view(doc: Mapping[str, Any]) -> tuple[list[Table], list[str]]:
    """One table of groups, one table of lamps per group, and the overrides and faults as lines below."""
    groups = table("group", "level", "programme", "next switch")
    below = []
    for g in doc.get("groups", []):
        groups.add_row(g["group"], pct(g.get("level_pct")), f"{human(g.get('program'))} ({g.get('calendar')})",
                       next_switch_text(g.get("next_switch")))
        if g.get("override"):
            below.append(f"group {g['group']}: {override_text(g['override'])}")
    tables = [groups]
    lamps = doc.get("lamps", [])
    for name in dict.fromkeys(lp["group"] for lp in lamps):
        t = table("lamp", "level", "power", "burnt", "energy", title=f"lamps of {name}")
        for lp in (lp for lp in lamps if lp["group"] == name):
            power = "—" if lp.get("power_w") is None else f"{lp['power_w']} W"
            t.add_row(lp["lamp"], lamp_level(lp), power, f"{lp.get('burn_total_h', 0)} h",
                      f"{lp.get('consumed_total_wh', 0)} Wh")
            if lp.get("override"):
                below.append(f"{lp['lamp']}: {override_text(lp['override'])}")
            if lp.get("faults"):
                below.append(f"{lp['lamp']}: fault {', '.join(lp['faults'])}")
        tables.append(t)
    return tables, below


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
        notes([f"clock mode: {human(doc.get('mode'))}"])
        tables, below = lighting_view(doc)
        out = console()
        for t in tables:
            out.print(t)
        notes(below)
    sys.exit(EXIT_ATTENTION if any(lamp.get("faults") for lamp in doc.get("lamps", [])) else EXIT_OK)


@click.group(cls=SuggestingGroup)
def ble() -> None:
    """BLE sensors on the gateway (needs the technician role)."""


@ble.command("forget-counter")
@click.argument("device", shell_complete=complete_devices())
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
    notes([f"{device}: counter forgotten (was {previous if previous is not None else 'none yet'}); "
           f"its next advert sets it again"])


@click.command()
@agent_options
def journal(socket: Path | None, config_file: Path | None, as_json: bool) -> None:
    """What waits in the journal for upload: counts, size, drops."""
    path = socket_path(socket, config_file)
    doc = ask(path, lambda c: c.call("GET", "journal"))
    if as_json:
        print_json(doc)
        return
    t = keyed_table()
    t.add_row("file", doc["path"])
    t.add_row("unsent", f"{doc['records']} records ({doc['samples']} samples, {doc['events']} events)")
    t.add_row("oldest unsent", when(doc["oldest_ts_ms"]))
    t.add_row("seq range", f"{doc['first_seq']} .. {doc['last_seq']}" if doc["first_seq"] is not None else "empty")
    t.add_row("size", f"{size(doc['size_bytes'])} (bound: {doc['max_records']:,} records)")
    t.add_row("dropped", f"{doc['dropped_total']} samples since the journal was created")
    console().print(t)
    sys.exit(EXIT_ATTENTION if doc["dropped_total"] else EXIT_OK)


def event_line(doc: Mapping[str, Any]) -> str:
    if doc["kind"] == "dropped":
        return f"… {doc['count']} records not shown (this terminal was too slow)"
    head = f"{local_time(doc['ts_ms'])}  {doc['device']}"
    if doc["kind"] == "sample":
        return f"{head}  sample  {values_text(doc['values'], 8)}"
    detail = f"  {human(doc['detail'])}" if doc["detail"] else ""
    return f"{head}  {doc['severity']}  {doc['code']}{detail}"


def echo_event(doc: Mapping[str, Any]) -> None:
    notes([event_line(doc)])


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they are journalled (Ctrl-C stops).")
@click.option("--samples", is_flag=True, help="With --follow, print readings too.")
@click.option("--limit", "-n", type=click.IntRange(0, 200), default=50, show_default=True,
              help="Recent events to print first.")
@agent_options
def events(follow: bool, samples: bool, limit: int, socket: Path | None, config_file: Path | None,
           as_json: bool) -> None:
    """Recent events (faults, overrides, drops); --follow prints new ones as they come."""
    path = socket_path(socket, config_file)
    if not follow:
        doc = ask(path, lambda c: c.call("GET", "events", params={"limit": str(limit)}))
        if as_json:
            print_json(doc)
        else:
            for d in doc:
                echo_event(d)
        return

    def tail(client: AgentClient) -> None:
        from edge_agent.cli_client import Unreachable

        params = {"limit": str(limit), "follow": "1", "samples": "1" if samples else "0"}
        for d in client.stream("events", params):
            if as_json:
                click.echo(orjson.dumps(d).decode())
            else:
                echo_event(d)
        raise Unreachable("the agent closed the stream (stopped?)")

    try:
        ask(path, tail)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)
