"""The agent's TOML config, validated once at load into typed objects.

Every error names the file, the dotted key and the reason. Feature sections (`[lighting]`,
`[analytics]`, ...) are parsed by their own packages, listed in SECTIONS, so the core knows no
feature's details; bus tables are parsed by the drivers (drivers.registry) into configs only:
the agent builds the buses when it starts, so a parsed config holds no socket or port.

Example::

    [gateway]
    id = "gw-dijon-0001"
    commune = "21231"
    state_dir = "/var/lib/citygate"      # relative paths resolve from the config file's folder

    [uplink]
    url = "https://collector.example.org"
    token_file = "/etc/citygate/token"   # or token = "..."; mode 0600, the service user's only
    ca_file = "/etc/citygate/ca.pem"     # optional: default is the system CAs
    allow_cleartext = false              # http:// to anything but loopback needs this set to true
    batch_max_age_s = 300                # records wait up to this long to share a batch (0, the default: sent at
                                         # once); a major or critical event is sent at once (edge_agent.uploader)
    encoding = "gzip"                    # or "zstd" (with the shipped dictionary, citygate_wire.compression)
    monthly_budget_mb = 30               # optional: `status` warns when the month's data will pass it

    [journal]
    max_records = 5000000                # oldest samples go first beyond this, events never
    synchronous = "full"                 # "full" (survives power loss) or "normal"

    [local_api]                          # the technician's CLI talks to the agent here
    socket = "/run/citygate/agent.sock"
    group = "citygate"                   # members may read; the socket is mode 0660
    technician = false                   # true enables write calls (lamp tests, overrides)
    max_connections = 32                 # served at once; 503 beyond
    max_follow = 8                       # `events --follow` streams at once; 503 beyond

    [watchdog]
    bus_silence_s = 3600                 # a bus with neither a reading nor a failure this long is wedged

    [[bus]]                              # one table per bus; keys per driver (drivers/*)
    name = "rs485-1"
    type = "modbus-rtu"
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import ssl
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import SplitResult, urlsplit

from citygate_wire.compression import ENCODINGS
from drivers.base import BusContext
from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.registry import BusSpec, parse_bus


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
    batch_max_age_s: float = 0.0
    encoding: str = "gzip"
    monthly_budget_mb: float | None = None


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
    max_connections: int = 32  # each holds a thread while it is served
    max_follow: int = 8  # event streams, each a thread for as long as it lasts


@dataclass(frozen=True)
class WatchdogConfig:
    bus_silence_s: float = 3600.0


@dataclass(frozen=True)
class AgentConfig:
    file: Path
    gateway: GatewayConfig
    uplink: UplinkConfig
    journal: JournalConfig
    buses: list[BusSpec]  # parsed tables; Agent builds the buses from them
    local_api: LocalApiConfig = field(default_factory=LocalApiConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    #: Parsed feature sections by name, each the typed object its package's parser returned.
    sections: dict[str, Any] = field(default_factory=dict)
    #: What is usable but unsafe (a token file others may read): `check-config` and `run` say it.
    warnings: tuple[str, ...] = ()


@runtime_checkable
class HasWarnings(Protocol):
    """A feature section's parsed config that has something to warn about (edge_agent.control.MqttConfig)."""

    def config_warnings(self) -> list[str]: ...


#: Feature sections: name -> "module:function(raw: Mapping, key: str, config_dir: Path) -> typed config".
SECTIONS: dict[str, str] = {
    "lighting": "edge_agent.lighting.config:from_config",
    "mqtt": "edge_agent.control:parse_section",
    "analytics": "edge_agent.analytics:parse_section",
    "positions": "edge_agent.positions:parse_section",
}

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


#: A token is a line of text; reading stops past this, so /dev/zero or a disk image named by
#: mistake is an error, not a hang or a gigabyte in memory.
MAX_SECRET_BYTES = 4096
#: A cabinet of 200 lamp controllers is about 20 KB of TOML.
MAX_CONFIG_BYTES = 4 * 2**20


def read_secret(path: Path, key: str) -> str:
    """The token in `path`: one line of printable text, at most 4 KiB; ConfigError naming `key` if not."""
    try:
        if stat.S_ISFIFO(path.stat().st_mode):
            raise ConfigError(key, f"{path} is a FIFO: reading it would wait for a writer")
        with path.open("rb") as f:
            raw = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise ConfigError(key, f"{path} is longer than {MAX_SECRET_BYTES} bytes: not a token file")
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path} is binary, not a token") from None
    if not secret:
        raise ConfigError(key, f"{path} is empty")
    if not secret.isprintable():
        raise ConfigError(key, f"{path} holds control characters or several lines: not a token")
    return secret


def secret_file_warning(path: Path, key: str) -> str | None:
    """A warning if a token file may be read by others than its owner (the service user)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (f"{key}: {path} has mode {mode:04o}: others than its owner may read the token "
                f"(chmod 600, owned by the service user)")
    return None


def check_ca_file(path: Path, key: str) -> None:
    """Refuse a CA file that TLS could not load (missing, not PEM), as `run` would at its first connection."""
    if not path.is_file():
        raise ConfigError(key, f"{path} does not exist or is not a file")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise ConfigError(key, f"{path} is not a PEM file of CA certificates ({exc})") from None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(parts: SplitResult, key: str, cleartext: str, allow_cleartext: bool) -> None:
    """No credentials in a URL (they would be logged), and clear text to loopback only unless allowed."""
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{key}.url", "credentials in the URL would be logged: use the token or password file")
    host = parts.hostname or ""
    if parts.scheme == cleartext and not is_loopback(host) and not allow_cleartext:
        raise ConfigError(f"{key}.url", f"{cleartext}:// to {host} sends the token in clear text; use TLS, "
                                        f"or set {key}.allow_cleartext = true on a link that is private")


def _gateway(raw: Any, base: Path) -> GatewayConfig:
    t = ConfigTable(raw, "gateway")
    gid = t.text("id", required=True)
    if not _ID.match(gid):
        raise ConfigError("gateway.id", "letters, digits, '.', '_' and '-' only, 1-64 characters")
    commune = t.text("commune", required=True)
    if not _INSEE.match(commune):
        raise ConfigError("gateway.commune", f"{commune!r} is not an INSEE commune code (5 characters)")
    state_dir = _resolve(base, t.text("state_dir", "/var/lib/citygate"))
    # the agent creates what is missing: the first part that exists must be a folder
    existing = next((p for p in (state_dir, *state_dir.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError("gateway.state_dir", f"{existing} exists and is not a directory")
    t.done()
    return GatewayConfig(gid, commune, state_dir)


def _uplink(raw: Any, base: Path) -> UplinkConfig:
    t = ConfigTable(raw, "uplink")
    url = t.text("url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("uplink.url", f"{url!r} is not an http:// or https:// URL with a host")
    check_url(parts, "uplink", "http", t.boolean("allow_cleartext", False))
    token = t.text("token")
    token_file = t.text("token_file")
    if (token is None) == (token_file is None):
        raise ConfigError("uplink.token", "give exactly one of token or token_file")
    if token_file is not None:
        token = read_secret(_resolve(base, token_file), "uplink.token_file")
    assert token is not None  # exactly one of token, token_file: checked above
    ca = t.text("ca_file")
    ca_file = _resolve(base, ca) if ca is not None else None
    if ca_file is not None:
        if parts.scheme != "https":
            raise ConfigError("uplink.ca_file", "a CA file only makes sense with an https:// URL")
        check_ca_file(ca_file, "uplink.ca_file")
    encoding = t.text("encoding", "gzip")
    if encoding not in ENCODINGS:
        raise ConfigError("uplink.encoding", f"{encoding!r}: expected one of {', '.join(ENCODINGS)}")
    budget_mb = t.number("monthly_budget_mb", 0, lo=0, hi=10**9)
    cfg = UplinkConfig(
        url=url.rstrip("/"),
        token=token,
        ca_file=ca_file,
        interval_s=t.number("interval_s", 2.0, lo=0.05, hi=3600),
        timeout_s=t.number("timeout_s", 30.0, lo=0.5, hi=600),
        batch_max_records=t.integer("batch_max_records", 5000, lo=1, hi=100_000),
        batch_max_bytes=t.integer("batch_max_bytes", 2_000_000, lo=10_000, hi=8_000_000),
        backoff_max_s=t.number("backoff_max_s", 300.0, lo=0.1, hi=86_400),
        batch_max_age_s=t.number("batch_max_age_s", 0.0, lo=0, hi=86_400),
        encoding=encoding,
        monthly_budget_mb=budget_mb or None,  # 0: no budget
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
        max_connections=t.integer("max_connections", LocalApiConfig.max_connections, lo=1, hi=1024),
        max_follow=t.integer("max_follow", LocalApiConfig.max_follow, lo=1, hi=256),
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
        buses: list[BusSpec] = []
        names: set[str] = set()
        for i, raw in enumerate(raw_buses):
            if not isinstance(raw, dict):
                raise ConfigError(f"bus[{i}]", "expected a table")
            bus = parse_bus(raw, BusContext(key=f"bus[{i}]", config_dir=base, state_dir=gateway.state_dir))
            if bus.name in names:
                raise ConfigError(f"bus[{i}].name", f"duplicate bus name {bus.name!r}")
            names.add(bus.name)
            buses.append(bus)
        sections = {name: _section_parser(name)(doc[name], name, base) for name in SECTIONS if name in doc}
    except ConfigError as exc:
        raise AgentConfigError(file, exc.key, exc.reason) from None
    warnings = [w for w in [_token_file_warning(doc["uplink"], base), _inline_secret_warning(doc, file)] if w]
    warnings += [w for cfg in sections.values() if isinstance(cfg, HasWarnings) for w in cfg.config_warnings()]
    return AgentConfig(file, gateway, uplink, journal, buses, local_api=local_api, watchdog=watchdog, sections=sections,
                       warnings=tuple(warnings))


def _inline_secret_warning(doc: Mapping[str, Any], file: Path) -> str | None:
    """The config is readable by the technicians' group (install-gateway makes it 0640): no secret inside."""
    inline = [key for key, section in (("uplink.token", "uplink"), ("mqtt.password", "mqtt"))
              if isinstance(doc.get(section), dict) and key.split(".")[1] in doc[section]]
    if not inline:
        return None
    warning = secret_file_warning(file, inline[0])
    return None if warning is None else (f"{' and '.join(inline)} written in the config, which others than its "
                                         f"owner may read: put it in a token file of mode 0600")
def _token_file_warning(uplink: Mapping[str, Any], base: Path) -> str | None:
    token_file = uplink.get("token_file")
    return secret_file_warning(_resolve(base, token_file), "uplink.token_file") if token_file else None


def load_config(file: Path | str) -> AgentConfig:
    path = Path(file)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise AgentConfigError(path, "", f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise AgentConfigError(path, "", f"larger than {MAX_CONFIG_BYTES // 2**20} MiB: not a citygate config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AgentConfigError(path, "", "not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
        return parse_config(doc, path)
    except tomllib.TOMLDecodeError as exc:
        raise AgentConfigError(path, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib recurses once per level of nested arrays and inline tables
        raise AgentConfigError(path, "", "nested too deeply: not a citygate config") from None
