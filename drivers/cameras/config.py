"""The `[[bus]]` table of a cabinet's cameras, and the credentials file it names.

Credentials live in their own TOML file, readable by the service's user only (mode 0600 or
0400): a file group or others may read is refused at parse time, naming the file, the key and
the reason, so `check-config` finds it before any camera is asked. The passwords never appear
in the config objects' repr, in a log line, an event or a URL.
"""

from __future__ import annotations

import dataclasses
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import BusContext
from drivers.cameras import timesource
from drivers.cameras.onvif import Credentials
from drivers.conf import ConfigTable
from drivers.errors import ConfigError

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")
_PATH = re.compile(r"/[\x21-\x7e]{0,255}")  # printable ASCII, no space, no CR/LF: it goes into a request line


@dataclass(frozen=True, slots=True)
class StreamConfig:
    path: str  # "/Streaming/Channels/101": the URL is built from the camera's host, never holds credentials
    port: int = 554
    codec: str | None = None  # expected codec ("H264", "H265"); None: not checked
    width: int | None = None
    height: int | None = None

    def url(self, host: str) -> str:
        return f"rtsp://{host}:{self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class CameraConfig:
    id: str
    host: str
    onvif_port: int  # 0: the camera has no ONVIF service to ask
    onvif_path: str
    streams: tuple[StreamConfig, ...]
    location: str | None = None  # operators only: never in a sample, an event or open data
    credentials: Credentials | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CamerasConfig:
    name: str
    cameras: tuple[CameraConfig, ...]
    interval_s: float = 60.0
    timeout_s: float = 5.0
    retries: int = 3  # consecutive failed polls before a camera is declared unreachable
    max_backoff_s: float = 600.0
    group_window_s: float = 0.0  # 0 in the table: two intervals. How long a lone failure waits to see if its neighbours follow
    drift_max_s: float = 2.0
    pull_timeout_s: float = 10.0
    sample_interval_s: float = 300.0
    credentials_file: str | None = None
    time_source: str = "kernel"  # drivers.cameras.timesource: "kernel", "none", or another installed source
    faults_file: Path | None = None  # the open faults across restarts (drivers.cameras.faultstore)


def parse(raw: Mapping[str, Any], ctx: BusContext) -> CamerasConfig:
    key = ctx.key
    t = ConfigTable(dict(raw), key)
    t.text("type")
    name = t.text("name", required=True)
    cred_text = t.text("credentials")
    creds = read_credentials(ctx.config_dir / cred_text, f"{key}.credentials") if cred_text else {}
    interval = t.number("interval_s", 60.0, lo=0.05, hi=86_400)
    cfg = CamerasConfig(
        name=name,
        cameras=(),
        interval_s=interval,
        timeout_s=t.number("timeout_s", 5.0, lo=0.05, hi=60),
        retries=t.integer("retries", 3, lo=1, hi=100),
        max_backoff_s=t.number("max_backoff_s", 600.0, lo=0.05, hi=86_400),
        group_window_s=t.number("group_window_s", 0.0, lo=0, hi=86_400) or 2 * interval,
        drift_max_s=t.number("drift_max_s", 2.0, lo=0.5, hi=86_400),
        pull_timeout_s=t.number("pull_timeout_s", 10.0, lo=0.05, hi=60),
        sample_interval_s=t.number("sample_interval_s", 300.0, lo=0.05, hi=86_400),
        credentials_file=cred_text,
        faults_file=None if ctx.state_dir is None else ctx.state_dir / f"cameras-{name}.faults.json",
        time_source=timesource.check(t.text("time_source", "kernel"), f"{key}.time_source"),
    )
    t.used.add("camera")
    raw_cams = raw.get("camera")
    if not isinstance(raw_cams, list) or not raw_cams:
        raise ConfigError(f"{key}.camera", "expected at least one [[bus.camera]] table")
    cameras = tuple(_camera(c, f"{key}.camera[{i}]", creds) for i, c in enumerate(raw_cams))
    seen: set[str] = set()
    for i, cam in enumerate(cameras):
        if cam.id in seen or cam.id == name:
            raise ConfigError(f"{key}.camera[{i}].id", f"{cam.id!r} is already used on this bus")
        seen.add(cam.id)
    unused = sorted(set(creds) - seen - {"default"})
    if unused:
        raise ConfigError(f"{key}.credentials", f"{cred_text}: [{unused[0]}] names no camera of this bus")
    t.done()
    return dataclasses.replace(cfg, cameras=cameras)


def _camera(raw: Any, key: str, creds: Mapping[str, Credentials]) -> CameraConfig:
    t = ConfigTable(raw, key)
    cam_id = t.text("id", required=True)
    if _ID.fullmatch(cam_id) is None:
        raise ConfigError(f"{key}.id", f"{cam_id!r}: letters, digits, '.', '_', '-' only (64 at most)")
    host = t.text("host", required=True)
    if _HOST.fullmatch(host) is None or "@" in host:
        raise ConfigError(f"{key}.host", "a host name or IP address only (credentials go in the credentials file)")
    onvif_path = t.text("onvif_path", "/onvif/device_service")
    if _PATH.fullmatch(onvif_path) is None:
        raise ConfigError(f"{key}.onvif_path", "a path starting with '/', printable ASCII without spaces")
    t.used.add("stream")
    raw_streams = raw.get("stream", [])
    if not isinstance(raw_streams, list):
        raise ConfigError(f"{key}.stream", "expected [[bus.camera.stream]] tables")
    cam = CameraConfig(
        id=cam_id, host=host,
        onvif_port=t.integer("onvif_port", 80, lo=0, hi=65535),
        onvif_path=onvif_path,
        streams=tuple(_stream(s, f"{key}.stream[{i}]") for i, s in enumerate(raw_streams)),
        location=t.text("location"),
        credentials=creds.get(cam_id, creds.get("default")),
    )
    t.done()
    if cam.onvif_port == 0 and not cam.streams:
        raise ConfigError(key, "a camera needs an ONVIF port or at least one stream to watch")
    return cam


def _stream(raw: Any, key: str) -> StreamConfig:
    t = ConfigTable(raw, key)
    path = t.text("path", required=True)
    if _PATH.fullmatch(path) is None or "@" in path:
        raise ConfigError(f"{key}.path", "a path starting with '/', printable ASCII without spaces or '@'")
    codec = t.text("codec")
    width = t.integer("width", 0, lo=0, hi=16384)
    height = t.integer("height", 0, lo=0, hi=16384)
    s = StreamConfig(path=path, port=t.integer("port", 554, lo=1, hi=65535),
                     codec=codec.upper() if codec else None, width=width or None, height=height or None)
    t.done()
    return s


def read_credentials(path: Path, key: str) -> dict[str, Credentials]:
    """`[camera-id]` (or `[default]`) tables of `user` and `password`, from a file only its owner may read."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(key, f"{path}: cannot read the credentials file ({exc.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(key, f"{path}: the credentials file is readable by group or others "
                               f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it, owned by the service's user")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"{path}: cannot read the credentials file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        # the message of a TOML error quotes no value, only a position: safe to show
        raise ConfigError(key, f"{path}: not valid TOML ({exc})") from None
    out: dict[str, Credentials] = {}
    for section, table in doc.items():
        where = f"{key} {path} [{section}]"
        if not isinstance(table, dict):
            raise ConfigError(where, "expected a table of user and password")
        user, password = table.get("user"), table.get("password")
        if not isinstance(user, str) or not isinstance(password, str) or not user:
            raise ConfigError(where, "needs a user and a password, both strings")
        if set(table) - {"user", "password"}:
            raise ConfigError(where, f"unknown key {sorted(set(table) - {'user', 'password'})[0]!r}")
        if any(c in user for c in '\r\n":'):
            raise ConfigError(where, "the user may not contain CR, LF, '\"' or ':'")
        out[section] = Credentials(user, password)
    return out
