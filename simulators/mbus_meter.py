"""A simulated M-Bus water meter (slave) answering a master on a pty.

It answers SND_NKE and a secondary-address selection with E5 and REQ_UD2 with RSP_UD (CI 0x72):
fabrication number, volume (litres), volume flow (l/h), date-time (type F) and the volume at the
last due date (storage 1). The FCB is honoured: the same FCB again gets the same telegram again
(a repeat), a toggled one the next telegram of a multi-telegram answer (DIF 0x1F). The flow is a
daytime draw plus a constant leak, so the volume index grows at night when there is a leak.
Faults for the tests: `drop_replies(n)` / `drop_telegrams(n)` stay silent, `corrupt_replies(n)` spoils checksums.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

import click

from drivers.mbus.encode import Coding, encode_date_f, encode_record, encode_response
from drivers.mbus.frame import (
    ACK,
    ADDRESS_SECONDARY,
    C_REQ_UD2,
    C_RSP_UD,
    C_SND_NKE,
    CI_SELECT,
    FCB,
    LongFrame,
    ShortFrame,
    TelegramReader,
    encode_long,
)
from drivers.mbus.manufacturer import encode_manufacturer
from drivers.mbus.records import CI_APPLICATION_ERROR, CI_VARIABLE, Header
from simulators.pty import LINK_OPTION, RUN_OPTION, PtyPair, serve_on_pty

PARIS = ZoneInfo("Europe/Paris")
_FCV = 0x10
_VERSION = 0x35
_MEDIUM_WATER = 0x07


class MbusWaterMeter:
    def __init__(
        self,
        *,
        primary: int = 1,
        secondary: str = "00182007",
        manufacturer: str = "GWF",
        volume_m3: float = 269.0,
        day_flow_m3h: float = 0.4,  # drawn 06:00-22:00 local time
        leak_m3h: float = 0.0,  # drawn all the time
        telegrams: int = 1,  # 2: the answer is split in two telegrams (DIF 0x1F)
        time_scale: float = 1.0,  # simulated seconds per real second, for the volume integration
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo = PARIS,
        link: Path | None = None,
    ) -> None:
        if not 1 <= telegrams <= 2:
            raise ValueError("telegrams: 1 or 2")
        self.primary = primary
        self.secondary = secondary
        self.manufacturer = manufacturer
        self.volume_m3 = volume_m3
        self.due_volume_m3 = volume_m3
        self.day_flow_m3h = day_flow_m3h
        self.leak_m3h = leak_m3h
        self.telegrams = telegrams
        self.time_scale = time_scale
        self._now = now
        self._tz = tz
        self._link = link
        self._last_t: float | None = None
        self._selected = False
        self._last_fcb: dict[int, int] = {}
        self._parts: list[bytes] = []
        self._part = 0
        self._access_no = 0
        self._drop = 0
        self._drop_telegrams = 0
        self._corrupt = 0
        self._app_error, self._app_errors = 0, 0
        self._no_data = 0
        self.requests: list[ShortFrame | LongFrame] = []
        self._reader = TelegramReader()
        self._pty: PtyPair | None = None

    @property
    def port(self) -> str:
        if self._pty is None:
            raise RuntimeError("the meter is not running: use `async with MbusWaterMeter(...)`")
        return self._pty.port

    def drop_replies(self, n: int) -> None:
        """Stay silent for the next n answers of any kind."""
        self._drop += n

    def drop_telegrams(self, n: int) -> None:
        """Stay silent for the next n data telegrams (E5 still sent): the master must repeat its request."""
        self._drop_telegrams += n

    def corrupt_replies(self, n: int) -> None:
        self._corrupt += n

    def application_errors(self, code: int, n: int = 1) -> None:
        """Answer the next n data requests with CI 0x70, application error `code` (0x08: busy)."""
        self._app_error, self._app_errors = code, self._app_errors + n

    def no_data(self, n: int = 1) -> None:
        """Answer the next n data requests with an RSP_UD control frame: CI 0x72 and no data at all."""
        self._no_data += n

    def flow_m3h(self) -> float:
        hour = self._now().astimezone(self._tz).hour
        return self.leak_m3h + (self.day_flow_m3h if 6 <= hour < 22 else 0.0)

    def advance(self) -> None:
        t = time.monotonic()
        if self._last_t is not None:
            self.volume_m3 += self.flow_m3h() * (t - self._last_t) * self.time_scale / 3600.0
        self._last_t = t

    def snapshot(self) -> list[bytes]:
        """The telegram(s) of one answer, from the meter's state now."""
        self.advance()
        if self._app_errors:
            self._app_errors -= 1
            return [encode_long(C_RSP_UD, self.primary, CI_APPLICATION_ERROR, bytes((self._app_error,)))]
        if self._no_data:
            self._no_data -= 1
            return [encode_long(C_RSP_UD, self.primary, CI_VARIABLE)]
        self._access_no = (self._access_no + 1) & 0xFF
        header = Header(self.secondary, self.manufacturer, _VERSION, _MEDIUM_WATER, self._access_no, 0, 0)
        local = self._now().astimezone(self._tz).replace(tzinfo=None)
        first = [
            encode_record(b"\x78", int(self.secondary), Coding.BCD8),
            encode_record(b"\x13", round(self.volume_m3 * 1000), Coding.BCD8),
        ]
        second = [
            encode_record(b"\x3b", round(self.flow_m3h() * 1000), Coding.INT32),
            encode_record(b"\x6d", encode_date_f(local), Coding.INT32),
            encode_record(b"\x13", round(self.due_volume_m3 * 1000), Coding.BCD8, storage=1),
        ]
        address = self.primary
        if self.telegrams == 1:
            return [encode_response(address, header, first + second)]
        return [
            encode_response(address, header, first, more_records_follow=True),
            encode_response(address, header, second),
        ]

    def handle(self, t: ShortFrame | LongFrame) -> bytes | None:
        """The answer to one request, or None when this meter keeps quiet."""
        self.requests.append(t)
        if isinstance(t, LongFrame):
            if t.ci == CI_SELECT and t.a == ADDRESS_SECONDARY:
                self._selected = self._matches(t.data)
                # a selection opens a new exchange: the next REQ_UD2 is never a repeat
                self._last_fcb.pop(ADDRESS_SECONDARY, None)
                self._parts, self._part = [], 0
                return bytes((ACK,)) if self._selected else None
            return None
        mine = t.a == self.primary or (t.a == ADDRESS_SECONDARY and self._selected)
        if not mine:
            return None
        if t.c == C_SND_NKE:
            self._last_fcb.pop(t.a, None)
            self._parts, self._part = [], 0
            return bytes((ACK,))
        if t.c & ~FCB == C_REQ_UD2:
            fcb = t.c & FCB
            repeat = t.c & _FCV and self._last_fcb.get(t.a) == fcb and self._parts
            if not repeat:
                if self._parts and self._part + 1 < len(self._parts):
                    self._part += 1
                else:
                    self._parts, self._part = self.snapshot(), 0
            self._last_fcb[t.a] = fcb
            return self._parts[self._part]
        return None

    def _matches(self, data: bytes) -> bool:
        """Secondary selection: id digits (F = any), manufacturer, version, medium (FF = any)."""
        if len(data) != 8:
            return False
        wanted = data[0:4][::-1].hex()
        if any(w not in ("f", h) for w, h in zip(wanted, self.secondary, strict=True)):
            return False
        man = int.from_bytes(data[4:6], "little")
        return (
            man in (0xFFFF, encode_manufacturer(self.manufacturer))
            and data[6] in (0xFF, _VERSION)
            and data[7] in (0xFF, _MEDIUM_WATER)
        )

    def _on_readable(self) -> None:
        assert self._pty is not None
        for t in self._reader.feed(self._pty.read()):
            if not isinstance(t, ShortFrame | LongFrame):
                continue
            reply = self.handle(t)
            if reply is None:
                continue
            if self._drop:
                self._drop -= 1
                continue
            if self._drop_telegrams and len(reply) > 1:
                self._drop_telegrams -= 1
                continue
            if self._corrupt and len(reply) > 1:
                self._corrupt -= 1
                reply = reply[:-2] + bytes(((reply[-2] + 1) & 0xFF,)) + reply[-1:]
            self._pty.write(reply)

    async def __aenter__(self) -> MbusWaterMeter:
        self._pty = PtyPair(self._link)
        asyncio.get_running_loop().add_reader(self._pty.master, self._on_readable)
        self.advance()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pty is not None:
            asyncio.get_running_loop().remove_reader(self._pty.master)
            self._pty.close()
            self._pty = None


@click.command("mbus")
@click.option("--primary", type=click.IntRange(1, 250), default=1, show_default=True)
@click.option("--secondary", default="00182007", show_default=True, help="8-digit identification number.")
@click.option("--volume-m3", type=click.FloatRange(min=0), default=269.0, show_default=True)
@click.option("--day-flow-m3h", type=click.FloatRange(min=0), default=0.4, show_default=True)
@click.option(
    "--leak-m3h", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Constant leak."
)
@click.option("--telegrams", type=click.IntRange(1, 2), default=1, show_default=True)
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@LINK_OPTION
@RUN_OPTION
def mbus(
    primary: int,
    secondary: str,
    volume_m3: float,
    day_flow_m3h: float,
    leak_m3h: float,
    telegrams: int,
    time_scale: float,
    link: Path | None,
    run_s: float | None,
) -> None:
    """An M-Bus water meter answering on a pty (open it at 8N1: a pty refuses even parity)."""
    if len(secondary) != 8 or not secondary.isdigit():
        raise click.BadParameter("8 digits", param_hint="--secondary")
    serve_on_pty(
        lambda: MbusWaterMeter(
            primary=primary, secondary=secondary, volume_m3=volume_m3, day_flow_m3h=day_flow_m3h,
            leak_m3h=leak_m3h, telegrams=telegrams, time_scale=time_scale, link=link,
        ),
        f"mbus water meter {secondary} (primary {primary})", link, run_s,
    )  # fmt: skip
