"""The cameras of one street cabinet: alive, serving their streams, their clock right, untampered.

citygate never fetches, stores or relays an image or a video frame: RTSP is asked OPTIONS and
DESCRIBE only (never SETUP or PLAY), and ONVIF for its device information, clock and events.
Config keys, samples and events: drivers/cameras/README.md.

One task per camera polls it (ONVIF clock and identity, then each stream) on `interval_s`,
backing off when it does not answer; one task per ONVIF camera holds a PullPoint subscription;
one judge (`health.HealthJudge`) decides which events go out, once per camera and fault, and
turns a cabinet whose cameras all go dark together into one cabinet-level event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from citygate_wire.common import now_ms
from drivers.base import DeviceState
from drivers.cameras import client, faultstore, onvif, timesource
from drivers.cameras.config import CameraConfig, CamerasConfig, StreamConfig, parse
from drivers.cameras.events import interpret
from drivers.cameras.health import HealthJudge
from drivers.errors import DecodeError, DeviceError
from drivers.model import Event, RecordSink, Sample, Severity, Value
from drivers.registry import Driver

log = logging.getLogger("citygate.cameras")

IDENTITY_EVERY_S = 6 * 3600.0  # device information again (a firmware update shows within hours)
RENEW_EVERY_S = 300.0
SUBSCRIPTION_S = 600
UNSUBSCRIBE_S = 1.0
ONVIF_FAILURE = "camera_onvif_failure"
STREAM_UNAVAILABLE = "camera_stream_unavailable"
STREAM_CHANGED = "camera_stream_changed"
CLOCK_DRIFT = "camera_clock_drift"
IDENTIFIED = "camera_identified"
EARLIEST_TRUSTED_YEAR = 2020


@dataclasses.dataclass
class _Watch:
    cfg: CameraConfig
    state: DeviceState
    drift_s: float | None = None
    info: onvif.DeviceInfo | None = None
    info_at: float = -IDENTITY_EVERY_S
    events_path: str | None = None
    streams_ok: int = 0
    next_sample: float = 0.0
    identified: bool = False
    stream_misses: dict[str, int] = dataclasses.field(default_factory=dict)  # path -> polls in a row unanswered
    http_digest: client.DigestSession = dataclasses.field(default_factory=client.DigestSession)
    rtsp_digest: dict[str, client.DigestSession] = dataclasses.field(default_factory=dict)  # by stream path

    def camera_now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.drift_s or 0.0)


class CameraBus:
    def __init__(self, cfg: CamerasConfig) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.watches = {c.id: _Watch(c, DeviceState(c.id, cfg.name, c.host)) for c in cfg.cameras}
        self.judge = HealthJudge(cfg.name, list(self.watches), int(cfg.group_window_s * 1000))
        #: the gateway's time source, from `time_source` when the bus runs; None: its clock is trusted from 2020 on
        self.time_sync: timesource.TimeSync | None = None
        self._sink: RecordSink = lambda record: None
        self._reasons: dict[str, str] = {}

    def states(self) -> list[DeviceState]:
        return [dataclasses.replace(w.state, errors=dict(w.state.errors)) for w in self.watches.values()]

    async def read(self, device: str) -> Sample:
        w = self.watches.get(device)
        if w is None:
            raise DeviceError(device, f"not a camera of bus {self.name!r}")
        reason = await self._poll(w)
        if reason is not None:
            raise DeviceError(device, reason)
        return Sample(device, now_ms(), self._values(w))

    async def run(self, sink: RecordSink) -> None:
        self._sink = sink
        if self.time_sync is None:
            self.time_sync = timesource.load(self.cfg.time_source)
        if self.cfg.faults_file is not None and (saved := faultstore.load(self.cfg.faults_file)) is not None:
            self.judge.restore(saved)
        async with asyncio.TaskGroup() as tg:
            for w in self.watches.values():
                tg.create_task(self._watch(w))
                if w.cfg.onvif_port:
                    tg.create_task(self._listen(w))
            tg.create_task(self._tick())

    async def aclose(self) -> None:
        return None

    # -- emission -------------------------------------------------------------------------------
    def _emit(self, *events: Event | None) -> None:
        emitted = False
        for ev in events:
            if ev is not None:
                log.info("camera %s: %s %s", ev.device, ev.code, ev.detail)
                self._sink(ev)
                emitted = True
        if emitted and self.cfg.faults_file is not None:  # faults open and close rarely: write at each
            faultstore.save(self.cfg.faults_file, self.judge.snapshot())

    def _clock_trusted(self) -> bool:
        if datetime.now(UTC).year < EARLIEST_TRUSTED_YEAR:
            return False
        return self.time_sync is None or self.time_sync.is_synchronized()

    # -- the poller of one camera ---------------------------------------------------------------
    async def _tick(self) -> None:
        period = min(max(self.cfg.group_window_s / 4, 0.02), 15.0)
        while True:
            self._emit(*self.judge.tick(now_ms(), self._reasons))
            await asyncio.sleep(period)

    async def _watch(self, w: _Watch) -> None:
        st = w.state
        while True:
            reason = await self._poll(w)
            ts = now_ms()
            if reason is None:
                st.state, st.consecutive_failures, st.last_error = "ok", 0, None
                self._emit(*self.judge.reachable(w.cfg.id, ts))
                if not w.identified:  # once a run: how the collector learns which devices are cameras
                    w.identified = True
                    self._emit(Event(w.cfg.id, ts, IDENTIFIED, Severity.INFO, _identity(w)))
                delay = self.cfg.interval_s
            else:
                st.consecutive_failures += 1
                st.last_error = reason
                self._reasons[w.cfg.id] = reason
                over = st.consecutive_failures - self.cfg.retries
                if over >= 0:
                    st.state = "failing"
                    self.judge.unreachable(w.cfg.id, ts)
                delay = min(self.cfg.interval_s * 2 ** max(over, 0), self.cfg.max_backoff_s)
            values = self._values(w, reachable=reason is None)  # the technician's `devices` sees every poll
            if time.monotonic() >= w.next_sample:  # the journal one sample per sample_interval_s
                w.next_sample = time.monotonic() + self.cfg.sample_interval_s
                self._sink(Sample(w.cfg.id, ts, values))
            await asyncio.sleep(delay)

    def _values(self, w: _Watch, reachable: bool = True) -> dict[str, Value]:
        values: dict[str, Value] = {"reachable": reachable, "streams": len(w.cfg.streams),
                                    "streams_ok": w.streams_ok if reachable else 0,
                                    "clock_drift_s": None if w.drift_s is None else round(w.drift_s, 1)}
        if w.info is not None:
            values.update(manufacturer=w.info.manufacturer, model=w.info.model, firmware=w.info.firmware)
        w.state.last_values, w.state.last_ts_ms = values, now_ms()
        return values

    async def _poll(self, w: _Watch) -> str | None:
        """One round of a camera; the reason it is unreachable, or None if anything of it answered."""
        answered = False
        reasons: list[str] = []
        if w.cfg.onvif_port:
            try:
                await self._ask_onvif(w)
                answered = True
                self._emit(self.judge.clear(w.cfg.id, ONVIF_FAILURE, now_ms()))
            except client.Unreachable as exc:
                self._count(w, "timeout")
                reasons.append(f"ONVIF: {exc}")
            except (DecodeError, onvif.SoapFault) as exc:
                answered = True
                self._count(w, "onvif_error")
                self._emit(self.judge.open_fault(w.cfg.id, ONVIF_FAILURE, Severity.MINOR, now_ms(),
                                                 {"reason": str(exc)[:200]}))
        unreached: list[tuple[StreamConfig, str]] = []
        ok = 0
        for s in w.cfg.streams:
            try:
                probe = await client.probe_stream(w.cfg.host, s.port, s.path, self.cfg.timeout_s, w.cfg.credentials,
                                                  w.rtsp_digest.setdefault(s.path, client.DigestSession()))
            except client.Unreachable as exc:
                self._count(w, "timeout")
                w.stream_misses[s.path] = w.stream_misses.get(s.path, 0) + 1
                unreached.append((s, str(exc)))
                continue
            except DecodeError as exc:
                probe = client.StreamProbe(0, "", error=str(exc))
            answered = True
            w.stream_misses[s.path] = 0
            ok += self._judge_stream(w, s, probe)
        w.streams_ok = ok
        if not answered:
            return "; ".join(reasons + [f"RTSP {s.path}: {why}" for s, why in unreached])
        # a port that does not answer while ONVIF does: the stream is down after the retries (a single
        # miss is most often the whole camera going down between the two requests)
        for s, why in unreached:
            if w.stream_misses[s.path] < self.cfg.retries:
                continue
            self._emit(self.judge.open_fault(w.cfg.id, STREAM_UNAVAILABLE, Severity.MAJOR, now_ms(),
                                             {"stream": s.path, "rtsp_status": None, "reason": why}, s.path))
        return None

    def _count(self, w: _Watch, what: str) -> None:
        w.state.errors[what] = w.state.errors.get(what, 0) + 1

    def _judge_stream(self, w: _Watch, s: StreamConfig, probe: client.StreamProbe) -> int:
        cam, ts = w.cfg.id, now_ms()
        if probe.status != 200:
            self._count(w, "rtsp_error")
            reason = probe.error or probe.reason[:80]
            self._emit(self.judge.open_fault(cam, STREAM_UNAVAILABLE, Severity.MAJOR, ts,
                                             {"stream": s.path, "rtsp_status": probe.status or None,
                                              "reason": reason}, s.path))
            return 0
        self._emit(self.judge.clear(cam, STREAM_UNAVAILABLE, ts, s.path, {"stream": s.path, "rtsp_status": 200}))
        found: dict[str, Any]
        if probe.error is not None:
            found = {"sdp_error": probe.error[:200]}
        elif probe.video:
            v = probe.video[0]
            found = {"codec": v.codec, "width": v.width, "height": v.height}
        else:
            found = {"codec": None, "width": None, "height": None}
        expected = {"codec": s.codec, "width": s.width, "height": s.height}
        differs = any(want is not None and found.get(k) != want for k, want in expected.items())
        if differs:
            self._emit(self.judge.open_fault(cam, STREAM_CHANGED, Severity.MINOR, ts, {
                "stream": s.path, "expected": {k: v for k, v in expected.items() if v is not None},
                "found": found}, s.path))
        else:
            self._emit(self.judge.clear(cam, STREAM_CHANGED, ts, s.path, {"stream": s.path, "found": found}))
        return 1

    # -- ONVIF ----------------------------------------------------------------------------------
    async def _soap(self, w: _Watch, op: str, path: str | None = None, *, to: str | None = None,
                    arg: int = 0, auth: bool = True, timeout_s: float | None = None) -> bytes:
        cfg = w.cfg
        maker = client.BodyMaker(op, cfg.credentials if auth else None, w.camera_now, to, arg)
        return await client.soap_call(cfg.host, cfg.onvif_port, path or cfg.onvif_path, maker,
                                      timeout_s or self.cfg.timeout_s, cfg.credentials, w.http_digest)

    async def _ask_onvif(self, w: _Watch) -> None:
        t0 = time.time()
        answer = await self._soap(w, "GetSystemDateAndTime", auth=False)
        t1 = time.time()
        camera = onvif.parse_system_date_and_time(answer).timestamp() + 0.5  # ONVIF gives whole seconds
        w.drift_s = camera - (t0 + t1) / 2
        self._judge_drift(w)
        if time.monotonic() - w.info_at >= IDENTITY_EVERY_S or w.state.state != "ok":
            info = onvif.parse_device_information(await self._soap(w, "GetDeviceInformation"))
            if w.info is not None and info.firmware != w.info.firmware:
                self._emit(Event(w.cfg.id, now_ms(), "camera_firmware_changed", Severity.INFO,
                                 {"from": w.info.firmware, "to": info.firmware}))
            w.info, w.info_at = info, time.monotonic()
            caps = onvif.parse_capabilities(await self._soap(w, "GetCapabilities"))
            w.events_path = _path_of(caps.events) if caps.events else None

    def _judge_drift(self, w: _Watch) -> None:
        if w.drift_s is None or not self._clock_trusted():
            return  # an untrusted gateway clock cannot judge the camera's
        drift = round(w.drift_s, 1)
        if abs(drift) > self.cfg.drift_max_s:
            self._emit(self.judge.open_fault(w.cfg.id, CLOCK_DRIFT, Severity.MINOR, now_ms(),
                                             {"drift_s": drift, "max_s": self.cfg.drift_max_s}))
        else:
            self._emit(self.judge.clear(w.cfg.id, CLOCK_DRIFT, now_ms(), detail={"drift_s": drift}))

    async def _listen(self, w: _Watch) -> None:
        """Hold a PullPoint subscription while the camera answers; each fault topic to its event."""
        while True:
            if w.events_path is None or self.judge.is_down(w.cfg.id) or w.state.state != "ok":
                await asyncio.sleep(min(self.cfg.interval_s, 5.0))
                continue
            try:
                await self._pull_loop(w, w.events_path)
            except (client.Unreachable, DecodeError, onvif.SoapFault) as exc:
                self._count(w, "events_error")
                log.debug("camera %s: PullPoint lost (%s)", w.cfg.id, exc)
                await asyncio.sleep(self.cfg.interval_s)

    async def _pull_loop(self, w: _Watch, events_path: str) -> None:
        address = onvif.parse_subscription(
            await self._soap(w, "CreatePullPointSubscription", events_path, arg=SUBSCRIPTION_S))
        path = _path_of(address)
        renew_at = time.monotonic() + RENEW_EVERY_S
        pull_s = self.cfg.pull_timeout_s
        try:
            while not self.judge.is_down(w.cfg.id):
                answer = await self._soap(w, "PullMessages", path, to=address, arg=max(1, round(pull_s)),
                                          timeout_s=pull_s + self.cfg.timeout_s)
                for note in onvif.parse_pull_messages(answer):
                    self._signal(w, note)
                if time.monotonic() >= renew_at:
                    onvif.parse_ok(await self._soap(w, "Renew", path, to=address, arg=SUBSCRIPTION_S), "Renew")
                    renew_at = time.monotonic() + RENEW_EVERY_S
        except asyncio.CancelledError:
            # the agent stops: give the subscription back (a camera holds a few), in a bounded second
            with contextlib.suppress(client.Unreachable, DecodeError, onvif.SoapFault):
                await self._soap(w, "Unsubscribe", path, to=address, timeout_s=UNSUBSCRIBE_S)
            raise

    def _signal(self, w: _Watch, note: onvif.Notification) -> None:
        sig = interpret(note)
        if sig is None:
            return
        ts, detail = now_ms(), {"topic": note.topic, "source": sig.source}
        if sig.active:
            self._emit(self.judge.open_fault(w.cfg.id, sig.code, sig.severity, ts, detail, sig.source))
        else:
            self._emit(self.judge.clear(w.cfg.id, sig.code, ts, sig.source, detail))


def _identity(w: _Watch) -> dict[str, Any]:
    out: dict[str, Any] = {"streams": len(w.cfg.streams), "onvif": bool(w.cfg.onvif_port)}
    if w.info is not None:
        out.update(manufacturer=w.info.manufacturer, model=w.info.model, firmware=w.info.firmware)
    return out


def _path_of(url: str) -> str:
    """The path and query of an XAddr: the request goes to the configured host and port (a camera
    behind NAT advertises an address the gateway cannot reach)."""
    parts = urlsplit(url.strip())
    path = parts.path or "/"
    if any(c in path for c in " \r\n") or len(path) > 512:
        raise DecodeError(f"unusable service address path {path[:60]!r}")
    return path + (f"?{parts.query}" if parts.query else "")


def build(cfg: CamerasConfig) -> CameraBus:
    return CameraBus(cfg)


DRIVER: Driver[CamerasConfig] = Driver(parse=parse, build=build)
