"""The agent's TOML config, validated once at load into typed objects.

Every error names the file, the dotted key and the reason. Feature sections (`[lighting]`,
`[analytics]`, ...) are parsed by their own packages, listed in SECTIONS, so the core knows no
feature's details; bus tables are parsed by the drivers (drivers.registry).

Example::

    [gateway]
    id = "gw-dijon-0001"
    commune = "21231"
    state_dir = "/var/lib/citygate"      # relative paths resolve from the config file's folder

    [uplink]
    url = "https://collector.example.org"
    token_file = "/etc/citygate/token"   # or token = "..."
    ca_file = "/etc/citygate/ca.pem"     # optional: default is the system CAs

    [journal]
    max_records = 5000000                # oldest samples go first beyond this, events never
    synchronous = "full"                 # "full" (survives power loss) or "normal"

    [local_api]                          # the technician's CLI talks to the agent here
    socket = "/run/citygate/agent.sock"
    group = "citygate"                   # members may read; the socket is mode 0660
    technician = false                   # true enables write calls (lamp tests, overrides)

    [watchdog]
    bus_silence_s = 3600                 # a bus with neither a reading nor a failure this long is wedged

    [[bus]]                              # one table per bus; keys per driver (drivers/*)
    name = "rs485-1"
    type = "modbus-rtu"
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from drivers.base import Bus, BusContext
from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.registry import make_bus


class AgentConfigError(Exception):
    """A config file that cannot be used: names the file, the key and the reason."""

    def __init__(self, file: Path | str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file = str(file)
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class GatewayConfig:
    id: str
    commune: str
    state_dir: Path


@dataclass(frozen=True)
class UplinkConfig:
    url: str
    token: str
    ca_file: Path | None = None
    interval_s: float = 2.0
    timeout_s: float = 30.0
    batch_max_records: int = 5000
    batch_max_bytes: int = 2_000_000
    backoff_max_s: float = 300.0


@dataclass(frozen=True)
class JournalConfig:
    max_records: int = 5_000_000
    synchronous: str = "full"

    def path(self, gateway: GatewayConfig) -> Path:
        return gateway.state_dir / "journal.db"


@dataclass(frozen=True)
class LocalApiConfig:
    socket: Path = Path("/run/citygate/agent.sock")
    group: str = "citygate"
    technician: bool = False


@dataclass(frozen=True)
class WatchdogConfig:
    bus_silence_s: float = 3600.0


@dataclass(frozen=True)
class AgentConfig:
    file: Path
    gateway: GatewayConfig
    uplink: UplinkConfig
    journal: JournalConfig
    buses: list[Bus]
    local_api: LocalApiConfig = field(default_factory=LocalApiConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    #: Parsed feature sections by name, each the typed object its package's parser returned.
    sections: dict[str, Any] = field(default_factory=dict)


#: Feature sections: name -> "module:function(raw: Mapping, key: str, config_dir: Path) -> typed config".
SECTIONS: dict[str, str] = {
    "lighting": "edge_agent.lighting.config:from_config",
    "mqtt": "edge_agent.control:parse_section",
    "analytics": "edge_agent.analytics:parse_section",
}

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _gateway(raw: Any, base: Path) -> GatewayConfig:
    t = ConfigTable(raw, "gateway")
    gid = t.text("id", required=True)
    if not _ID.match(gid):
        raise ConfigError("gateway.id", "letters, digits, '.', '_' and '-' only, 1-64 characters")
    commune = t.text("commune", required=True)
    if not _INSEE.match(commune):
        raise ConfigError("gateway.commune", f"{commune!r} is not an INSEE commune code (5 characters)")
    state_dir = _resolve(base, t.text("state_dir", "/var/lib/citygate"))
    t.done()
    return GatewayConfig(gid, commune, state_dir)


def _uplink(raw: Any, base: Path) -> UplinkConfig:
    t = ConfigTable(raw, "uplink")
    url = t.text("url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("uplink.url", f"{url!r} is not an http:// or https:// URL with a host")
    token = t.text("token")
    token_file = t.text("token_file")
    if (token is None) == (token_file is None):
        raise ConfigError("uplink.token", "give exactly one of token or token_file")
    if token_file is not None:
        path = _resolve(base, token_file)
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ConfigError("uplink.token_file", f"cannot read {path}: {exc.strerror}") from None
        if not token:
            raise ConfigError("uplink.token_file", f"{path} is empty")
    ca = t.text("ca_file")
    ca_file = _resolve(base, ca) if ca is not None else None
    if ca_file is not None:
        if parts.scheme != "https":
            raise ConfigError("uplink.ca_file", "a CA file only makes sense with an https:// URL")
        if not ca_file.is_file():
            raise ConfigError("uplink.ca_file", f"{ca_file} does not exist")
    cfg = UplinkConfig(
        url=url.rstrip("/"),
        token=token,
        ca_file=ca_file,
        interval_s=t.number("interval_s", 2.0, lo=0.05, hi=3600),
        timeout_s=t.number("timeout_s", 30.0, lo=0.5, hi=600),
        batch_max_records=t.integer("batch_max_records", 5000, lo=1, hi=100_000),
        batch_max_bytes=t.integer("batch_max_bytes", 2_000_000, lo=10_000, hi=8_000_000),
        backoff_max_s=t.number("backoff_max_s", 300.0, lo=0.1, hi=86_400),
    )
    t.done()
    return cfg


def _journal(raw: Any) -> JournalConfig:
    t = ConfigTable(raw, "journal")
    sync = t.text("synchronous", "full")
    if sync not in ("full", "normal"):
        raise ConfigError("journal.synchronous", f"{sync!r}: expected 'full' or 'normal'")
    cfg = JournalConfig(max_records=t.integer("max_records", 5_000_000, lo=1000, hi=10**9), synchronous=sync)
    t.done()
    return cfg


def parse_local_api(raw: Any, base: Path) -> LocalApiConfig:
    """The [local_api] table; public because the technician's CLI reads only this table of the file."""
    t = ConfigTable(raw, "local_api")
    cfg = LocalApiConfig(
        socket=_resolve(base, t.text("socket", str(LocalApiConfig.socket))),
        group=t.text("group", LocalApiConfig.group),
        technician=t.boolean("technician", False),
    )
    t.done()
    return cfg


def _watchdog(raw: Any) -> WatchdogConfig:
    t = ConfigTable(raw, "watchdog")
    cfg = WatchdogConfig(bus_silence_s=t.number("bus_silence_s", 3600.0, lo=1, hi=86_400))
    t.done()
    return cfg


def _section_parser(name: str) -> Callable[[Mapping[str, Any], str, Path], Any]:
    module, func = SECTIONS[name].split(":")
    parser: Callable[[Mapping[str, Any], str, Path], Any] = getattr(importlib.import_module(module), func)
    return parser


def parse_config(doc: Mapping[str, Any], file: Path) -> AgentConfig:
    """Validate a parsed TOML document; raise AgentConfigError naming file, key and reason."""
    base = file.parent
    try:
        known = {"gateway", "uplink", "journal", "local_api", "watchdog", "bus", *SECTIONS}
        for key in doc:
            if key not in known:
                raise ConfigError(key, f"unknown section; known: {', '.join(sorted(known))}")
        if "gateway" not in doc:
            raise ConfigError("gateway", "missing")
        if "uplink" not in doc:
            raise ConfigError("uplink", "missing")
        gateway = _gateway(doc["gateway"], base)
        uplink = _uplink(doc["uplink"], base)
        journal = _journal(doc.get("journal", {}))
        local_api = parse_local_api(doc.get("local_api", {}), base)
        watchdog = _watchdog(doc.get("watchdog", {}))
        raw_buses = doc.get("bus", [])
        if not isinstance(raw_buses, list):
            raise ConfigError("bus", "expected an array of tables ([[bus]])")
        buses: list[Bus] = []
        names: set[str] = set()
        for i, raw in enumerate(raw_buses):
            if not isinstance(raw, dict):
                raise ConfigError(f"bus[{i}]", "expected a table")
            bus = make_bus(raw, BusContext(key=f"bus[{i}]", config_dir=base, state_dir=gateway.state_dir))
            if bus.name in names:
                raise ConfigError(f"bus[{i}].name", f"duplicate bus name {bus.name!r}")
            names.add(bus.name)
            buses.append(bus)
        sections = {name: _section_parser(name)(doc[name], name, base) for name in SECTIONS if name in doc}
    except ConfigError as exc:
        raise AgentConfigError(file, exc.key, exc.reason) from None
    return AgentConfig(file, gateway, uplink, journal, buses, local_api=local_api, watchdog=watchdog, sections=sections)


def load_config(file: Path | str) -> AgentConfig:
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError(path, "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AgentConfigError(path, "", "not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgentConfigError(path, "", f"not valid TOML: {exc}") from None
    return parse_config(doc, path)
