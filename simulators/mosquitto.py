"""Run a real Mosquitto (Debian's `mosquitto` package) on 127.0.0.1 for tests and benchmarks.

The broker gets a generated config in its own folder: one listener on a free loopback port,
anonymous clients refused, the password and ACL files `citygate-collector mqtt-acl` writes,
persistence (so a restart keeps retained states and persistent sessions, as in the field) and
optionally a TLS listener instead of the plain one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from simulators.procs import free_port, wait_tcp


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None:
        raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto; .ci/run does it)")
    return found


@dataclass(frozen=True)
class TlsFiles:
    """The broker's certificate chain and key (PEM files)."""

    certfile: Path
    keyfile: Path


class Mosquitto:
    """`with Mosquitto(folder, password_file=..., acl_file=...) as broker:` ... `broker.port`."""

    def __init__(
        self,
        folder: Path,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsFiles | None = None,
        port: int | None = None,
        persistence: bool = True,
    ) -> None:
        self.folder = folder
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.port = port or free_port()
        self.persistence = persistence
        self.popen: subprocess.Popen[bytes] | None = None
        self.log_file = folder / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        # set_tcp_nodelay: a control plane of small messages; Nagle would hold each up to 40 ms
        lines = [f"listener {self.port} 127.0.0.1", "set_tcp_nodelay true"]
        if self.tls is not None:
            lines += [f"certfile {self.tls.certfile}", f"keyfile {self.tls.keyfile}"]
        # the collector's queue holds a whole fleet's retained states or Wills arriving at once; the
        # defaults (1,000 queued, 20 in flight) dropped a third of 1,500 (docs/mqtt.md)
        lines += ["max_queued_messages 100000", "max_inflight_messages 1000"]
        lines.append(f"allow_anonymous {'true' if self.password_file is None else 'false'}")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        if os.geteuid() == 0:
            # mosquitto started as root drops to the "mosquitto" user, who cannot read a private temp folder
            lines.append("user root")
        lines += [f"log_dest file {self.log_file}", "log_type error", "log_type warning", "log_type notice",
                  "log_type information", "connection_messages true"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(self.config_text())
        self.popen = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_tcp("127.0.0.1", self.port, timeout)
        except OSError:
            self.kill()
            raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log()}") from None

    def log(self) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        if self.popen is not None and self.popen.poll() is not None and self.popen.stderr is not None:
            text += self.popen.stderr.read().decode(errors="replace")
        return text

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: the broker saves its persistence file and exits."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._close()

    def kill(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._close()

    def _close(self) -> None:
        if self.popen is not None and self.popen.stderr is not None:
            self.popen.stderr.close()
        self.popen = None

    def restart(self) -> None:
        self.stop()
        # the kernel may hold the port a moment after the old listener closed
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
