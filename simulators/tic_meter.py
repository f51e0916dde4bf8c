"""A simulated Linky meter writing TIC frames (historic or standard mode) into a pty.

Its energy indexes integrate the cabinet's load over real elapsed time, the tariff period follows
the local hour (off-peak 22:00-06:00 with the "HC" option), and it can corrupt groups, insert
line noise and abort frames with EOT, so the driver's resynchronisation is exercised end to end.

    async with TicMeter(mode=Mode.STANDARD, load_w=lambda: lamps_w()) as meter:
        ... open meter.port at 8N1 (a pty refuses 7E1) ...
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

import click

from drivers.tic.codec import Mode, encode_group
from simulators.pty import LINK_OPTION, RUN_OPTION, PtyPair, serve_on_pty

PARIS = ZoneInfo("Europe/Paris")


class TicMeter:
    def __init__(
        self,
        *,
        mode: Mode = Mode.HISTORIC,
        meter_id: str = "021861348497",
        load_w: float | Callable[[], float] = 800.0,
        energy_wh: float = 12_345_678.0,
        option: str = "BASE",  # or "HC" (off-peak / peak indexes)
        phases: int = 1,  # or 3: a three-phase meter, the load shared equally by the phases
        period_s: float = 1.5,
        corrupt_rate: float = 0.0,  # probability that a group is sent with a wrong checksum
        noise_rate: float = 0.0,  # probability of line noise between two frames
        abort_rate: float = 0.0,  # probability that a frame is cut short by EOT
        seed: int | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo = PARIS,
        link: Path | None = None,
    ) -> None:
        if option not in ("BASE", "HC"):
            raise ValueError(f'option {option!r}: "BASE" or "HC"')
        if phases not in (1, 3):
            raise ValueError(f"phases {phases!r}: 1 or 3")
        self.phases = phases
        self.mode = mode
        self.meter_id = meter_id
        self._load = load_w if callable(load_w) else (lambda: float(load_w))
        self.option = option
        self.period_s = period_s
        self.corrupt_rate, self.noise_rate, self.abort_rate = corrupt_rate, noise_rate, abort_rate
        self._rng = random.Random(seed)
        self._now = now
        self._tz = tz
        self._link = link
        # energy per tariff index (Wh, float so small loads still accumulate)
        self.indexes = {"HC": energy_wh / 2, "HP": energy_wh / 2} if option == "HC" else {"BASE": energy_wh}
        self._last_t: float | None = None
        self.frames_sent = 0
        self.corrupted_groups = 0
        self.aborted_frames = 0
        self._pty: PtyPair | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> str:
        if self._pty is None:
            raise RuntimeError("the meter is not running: use `async with TicMeter(...)`")
        return self._pty.port

    @property
    def energy_wh(self) -> float:
        return sum(self.indexes.values())

    def period(self) -> str:
        """Current tariff period: "BASE", or "HC"/"HP" by local hour."""
        if self.option == "BASE":
            return "BASE"
        hour = self._now().astimezone(self._tz).hour
        return "HC" if hour >= 22 or hour < 6 else "HP"

    def advance(self) -> None:
        """Integrate the load since the last call into the current period's index."""
        t = time.monotonic()
        if self._last_t is not None:
            self.indexes[self.period()] += max(0.0, self._load()) * (t - self._last_t) / 3600.0
        self._last_t = t

    def groups(self) -> list[tuple[str, str | None, str]]:
        """(label, horodate, data) of the next frame, from the current state."""
        load = max(0.0, self._load())
        va = load / 0.95
        volts = 230 + self._rng.randint(-3, 3)
        amps = round(va / volts)
        period = self.period()
        if self.mode is Mode.HISTORIC:
            g: list[tuple[str, str | None, str]] = [
                ("ADCO", None, self.meter_id),
                ("OPTARIF", None, "BASE" if self.option == "BASE" else "HC.."),
                ("ISOUSC", None, "45"),
            ]
            if self.option == "BASE":
                g.append(("BASE", None, f"{int(self.indexes['BASE']):09d}"))
            else:
                g += [
                    ("HCHC", None, f"{int(self.indexes['HC']):09d}"),
                    ("HCHP", None, f"{int(self.indexes['HP']):09d}"),
                ]
            g.append(("PTEC", None, "TH.." if period == "BASE" else f"{period}.."))
            if self.phases == 1:
                g += [("IINST", None, f"{amps:03d}"), ("IMAX", None, "090")]
            else:  # CPT_54E §6.1.2: per-phase currents, IMAXx always 60 A on Linky, PMAX, PPOT
                phase_amps = f"{round(va / 3 / volts):03d}"
                g += [(f"IINST{n}", None, phase_amps) for n in (1, 2, 3)]
                g += [(f"IMAX{n}", None, "060") for n in (1, 2, 3)]
                g.append(("PMAX", None, f"{round(va * 1.2):05d}"))
            g += [
                ("PAPP", None, f"{round(va, -1):05.0f}"),
                ("HHPHC", None, "A"),
                ("MOTDETAT", None, "000000"),
            ]
            if self.phases == 3:
                g.append(("PPOT", None, "00"))
            return g
        local = self._now().astimezone(self._tz)
        dst = local.dst()
        horodate = ("E" if dst else "H") + local.strftime("%y%m%d%H%M%S")
        tariff_index = 2 if period == "HP" else 1
        stge = (1 << 17) | ((tariff_index - 1) << 10) | ((tariff_index - 1) << 14)
        easf = [self.indexes["BASE"]] if self.option == "BASE" else [self.indexes["HC"], self.indexes["HP"]]
        g = [
            ("ADSC", None, self.meter_id),
            ("VTIC", None, "02"),
            ("DATE", horodate, ""),
            ("NGTF", None, f"{'BASE' if self.option == 'BASE' else 'H PLEINE/CREUSE':<16}"),
            (
                "LTARF",
                None,
                f"{'BASE' if period == 'BASE' else ('HEURE CREUSE' if period == 'HC' else 'HEURE PLEINE'):<16}",
            ),
            ("EAST", None, f"{int(self.energy_wh):09d}"),
        ]
        g += [(f"EASF{i:02d}", None, f"{int(v):09d}") for i, v in enumerate(easf, start=1)]
        if self.phases == 1:
            g += [
                ("IRMS1", None, f"{amps:03d}"),
                ("URMS1", None, f"{volts:03d}"),
                ("PREF", None, "09"),
                ("PCOUP", None, "09"),
                ("SINSTS", None, f"{round(va):05d}"),
                ("SMAXSN", horodate, f"{round(va * 1.2):05d}"),
            ]
        else:
            g += self._three_phase_standard(va, volts, horodate)
        g += [
            ("STGE", None, f"{stge:08X}"),
            ("MSG1", None, f"{'PAS DE MESSAGE':<32}"),
            ("NTARF", None, f"{tariff_index:02d}"),
            ("RELAIS", None, "000"),
        ]
        return g

    def _three_phase_standard(
        self, va: float, volts: int, horodate: str
    ) -> list[tuple[str, str | None, str]]:
        """CPT_54E §6.2.2's three-phase groups, in the table's order, the load shared equally."""
        phase_va = round(va / 3)
        phases = (1, 2, 3)
        g: list[tuple[str, str | None, str]] = [
            (f"IRMS{n}", None, f"{round(phase_va / volts):03d}") for n in phases
        ]
        g += [(f"URMS{n}", None, f"{volts:03d}") for n in phases]
        g += [("PREF", None, "12"), ("PCOUP", None, "12"), ("SINSTS", None, f"{round(va):05d}")]
        g += [(f"SINSTS{n}", None, f"{phase_va:05d}") for n in phases]
        g.append(("SMAXSN", horodate, f"{round(va * 1.2):05d}"))
        g += [(f"SMAXSN{n}", horodate, f"{round(phase_va * 1.2):05d}") for n in phases]
        g.append(("SMAXSN-1", horodate, f"{round(va * 1.1):05d}"))
        g += [(f"SMAXSN{n}-1", horodate, f"{round(phase_va * 1.1):05d}") for n in phases]
        g.append(("CCASN", horodate, f"{round(va * 0.95):05d}"))
        g += [(f"UMOY{n}", horodate, f"{volts:03d}") for n in phases]
        return g

    def next_frame(self) -> bytes:
        """The bytes of one frame (with the configured faults), the indexes advanced to now."""
        self.advance()
        parts = [b"\x02"]
        for label, horodate, data in self.groups():
            raw = encode_group(label, data, self.mode, horodate)
            if self._rng.random() < self.corrupt_rate:
                raw = _corrupt(raw)
                self.corrupted_groups += 1
            parts.append(raw)
        if self._rng.random() < self.abort_rate:
            self.aborted_frames += 1
            return b"".join(parts[: max(2, len(parts) // 2)]) + b"\x04"
        parts.append(b"\x03")
        frame = b"".join(parts)
        if self._rng.random() < self.noise_rate:
            frame = bytes(self._rng.randrange(256) for _ in range(self._rng.randint(1, 12))) + frame
        return frame

    async def _talk(self) -> None:
        assert self._pty is not None
        while True:
            self._pty.write(self.next_frame())
            self.frames_sent += 1
            await asyncio.sleep(self.period_s)

    async def __aenter__(self) -> TicMeter:
        self._pty = PtyPair(self._link)
        self._task = asyncio.create_task(self._talk(), name="tic-meter")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._pty is not None:
            self._pty.close()
            self._pty = None


def _corrupt(group: bytes) -> bytes:
    """Move the label's first byte by 1: the checksum no longer holds (a sum off by 64 would go unseen)."""
    b = bytearray(group)
    b[1] = b[1] + 1 if b[1] < 0x7E else b[1] - 1
    return bytes(b)


@click.command("tic")
@click.option("--mode", type=click.Choice(["historic", "standard"]), default="historic", show_default=True)
@click.option(
    "--load-w", type=click.FloatRange(min=0), default=800.0, show_default=True, help="Cabinet load."
)
@click.option(
    "--option", type=click.Choice(["BASE", "HC"]), default="BASE", show_default=True, help="Tariff option."
)
@click.option("--phases", type=click.Choice(["1", "3"]), default="1", show_default=True, help="Meter phases.")
@click.option("--period", "period_s", type=click.FloatRange(min=0.01), default=1.5, show_default=True)
@click.option(
    "--corrupt-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of groups with a bad checksum."
)
@click.option(
    "--noise-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of frames preceded by noise."
)
@click.option("--abort-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of frames cut by EOT.")
@click.option("--seed", type=int, default=None)
@LINK_OPTION
@RUN_OPTION
def tic(
    mode: str,
    load_w: float,
    option: str,
    phases: str,
    period_s: float,
    corrupt_rate: float,
    noise_rate: float,
    abort_rate: float,
    seed: int | None,
    link: Path | None,
    run_s: float | None,
) -> None:
    """A Linky meter writing TIC frames into a pty (open it at 8N1: a pty refuses 7E1)."""
    serve_on_pty(
        lambda: TicMeter(
            mode=Mode(mode), load_w=load_w, option=option, phases=int(phases), period_s=period_s, corrupt_rate=corrupt_rate,
            noise_rate=noise_rate, abort_rate=abort_rate, seed=seed, link=link,
        ),
        f"tic meter ({mode})", link, run_s,
    )  # fmt: skip
