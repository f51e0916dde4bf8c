"""The agent: journal, bus pollers, uploader and feature services, supervised in one event loop.

Every record a driver accepts goes to the journal first; observers (lighting feedback,
analytics) see it only once it and those before it are committed. Of a bus's samples the journal
keeps what its report policies select (drivers.reporting); the observers see every poll
(edge_agent.live_feed). A bus or service that crashes is logged and restarted after a pause, so
one faulty driver never stops the others, nor the uploader.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from citygate_wire.aio import await_chain, stop_tasks
from drivers.base import Bus
from drivers.model import Record, Sample
from drivers.reporting import ReportsByException
from edge_agent.clock import Clock, SystemClock
from edge_agent.config import AgentConfig
from edge_agent.health import JOURNAL, UPLOADER, HealthMonitor, bus_loop, limits_for
from edge_agent.journal import Journal
from edge_agent.lighting.overrides import DirectLamps, LampOverrides, LightingOverrides
from edge_agent.live_feed import LiveFeed
from edge_agent.localapi import LocalApi, LocalApiContext
from edge_agent.sdnotify import Notifier, watch, watchdog_interval_s
from edge_agent.service import AgentContext, Lighting, Reporting, Service, Services
from edge_agent.uploader import Uploader

log = logging.getLogger("citygate.agent")

#: Feature services built from parsed config sections: section name -> "module:function(section_cfg) -> Service".
SERVICES: dict[str, str] = {
    "mqtt": "edge_agent.control:service",
    "analytics": "edge_agent.analytics:service",
    "lighting": "edge_agent.lighting.service:make_service",
    "positions": "edge_agent.positions:service",
}

RESTART_DELAY_S = 5.0
#: After SIGTERM the agent leaves within this many seconds, whatever a task does (systemd would kill it later).
STOP_GRACE_S = 20.0
EXIT_STOP_TIMEOUT = 70  # EX_SOFTWARE


@dataclass
class Agent:
    config: AgentConfig
    clock: Clock = field(default_factory=SystemClock)
    journal: Journal = field(init=False)
    uploader: Uploader = field(init=False)
    context: AgentContext = field(init=False)
    services: list[Service] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    healthy: dict[str, float] = field(default_factory=dict)
    health: HealthMonitor = field(init=False)
    notifier: Notifier = field(default_factory=Notifier.from_env)
    #: built from the config's bus tables; nothing is opened before run()
    buses: list[Bus] = field(init=False)
    live: LiveFeed = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        self.buses = [spec.build() for spec in cfg.buses]
        self.journal = Journal(
            cfg.journal.path(cfg.gateway), max_records=cfg.journal.max_records, synchronous=cfg.journal.synchronous
        )
        self.uploader = Uploader(cfg.gateway, cfg.uplink, self.journal, self.clock)
        self.uploader.heartbeat = lambda: self.tick(UPLOADER)
        self.health = HealthMonitor(self.healthy, self.buses, self.journal, limits_for(cfg))
        self.health.problems[UPLOADER] = self.uploader.stall
        self.context = AgentContext(
            gateway_id=cfg.gateway.id,
            commune=cfg.gateway.commune,
            state_dir=cfg.gateway.state_dir,
            clock=self.clock,
            buses={bus.name: bus for bus in self.buses},
            emit=self.emit,
            config_file=cfg.file,
        )
        self.live = LiveFeed(lambda record: self.journal.append(record), self._notify)
        self.journal.observers.append(self._committed)
        for name, target in SERVICES.items():
            if name in cfg.sections:
                module, func = target.split(":")
                factory: Callable[[object], Service] = getattr(importlib.import_module(module), func)
                self.services.append(factory(cfg.sections[name]))
        features = {service.name: service for service in self.services}
        lighting = features.get("lighting")
        self.context.services = Services(
            journal=self.journal,
            uploader=self.uploader,
            lighting=lighting if isinstance(lighting, Lighting) else None,
            reporting={name: s for name, s in features.items() if isinstance(s, Reporting)},
            features=features,
        )

    def local_api_context(self) -> LocalApiContext:
        """The parts of the agent the technician's local API reads and drives."""
        cfg, services = self.config, self.context.services
        lamps: LampOverrides = (LightingOverrides(services.lighting) if services.lighting is not None
                                else DirectLamps(self.buses, self.clock, self.emit))
        return LocalApiContext(
            config=cfg.local_api, config_file=cfg.file, gateway_id=cfg.gateway.id, commune=cfg.gateway.commune,
            uplink_url=cfg.uplink.url, clock=self.clock, buses=self.buses, journal=self.journal,
            uplink=lambda: self.uploader.state, health=self.health, services=services, lamps=lamps,
            emit=self.emit, subscribe=self.context.subscribe, started_at=self.started_at,
        )

    def emit(self, record: Record) -> None:
        self.live.emit(record, (record,))

    def tick(self, loop: str) -> None:
        """`loop` made progress (edge_agent.health judges the silences)."""
        self.healthy[loop] = time.monotonic()

    def _committed(self, record: Record) -> None:
        self.tick(JOURNAL)
        self.live.committed(record)

    def _notify(self, record: Record) -> None:
        for observer in self.context.observers:
            try:
                observer(record)
            except Exception:
                log.exception("observer %r failed on a record of %s", observer, record.device)

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Run until cancelled; on the way out flush the journal and close every bus."""
        self.context.state_dir.mkdir(parents=True, exist_ok=True)
        async with self.journal, LocalApi(self.local_api_context()):
            loops: dict[str, Callable[[], Awaitable[None]]] = {
                **{f"bus {bus.name}": self._bus_runner(bus) for bus in self.buses},
                "uploader": self.uploader.run,
                "watchdog": lambda: watch(self.health, self.notifier, watchdog_interval_s()),
                **{f"service {service.name}": self._service_runner(service) for service in self.services},
            }
            tasks = [asyncio.create_task(self._supervise(name, start), name=name) for name, start in loops.items()]
            try:
                log.info(
                    "agent %s started: %d bus(es), %d service(s), uplink %s",
                    self.config.gateway.id, len(self.buses), len(self.services), self.config.uplink.url,
                )
                if ready is not None:
                    ready()
                await asyncio.wait(tasks)  # supervised: they end only when cancelled
            finally:
                await stop_tasks(tasks)
                for bus in self.buses:
                    with contextlib.suppress(Exception):
                        await bus.aclose()

    def _bus_runner(self, bus: Bus) -> Callable[[], Awaitable[None]]:
        loop = bus_loop(bus.name)
        reporter = bus.reporter() if isinstance(bus, ReportsByException) else None
        select = reporter.select if reporter else None  # all its policies "every": nothing to select

        def sink(record: Record) -> None:
            self.tick(loop)
            kept = select(record) if select is not None and isinstance(record, Sample) else (record,)
            self.live.emit(record, kept)

        return lambda: bus.run(sink)

    def _service_runner(self, service: Service) -> Callable[[], Awaitable[None]]:
        return lambda: service.run(self.context)

    async def _supervise(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await start()
                log.error("%s stopped by itself; restarting in %.0f s", name, RESTART_DELAY_S)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s crashed; restarting in %.0f s", name, RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)


async def run_agent(config: AgentConfig, clock: Clock | None = None) -> None:
    """Run the agent in the current loop until SIGTERM or SIGINT."""
    agent = Agent(config, clock or SystemClock())
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def ready() -> None:
        agent.notifier.send("READY=1", "STATUS=running")

    def stop() -> None:
        agent.notifier.send("STOPPING=1", "STATUS=stopping")
        task.cancel()
        loop.call_later(STOP_GRACE_S, force_exit)

    def force_exit() -> None:
        # A task that does not finish when cancelled (a library waiting on a dead peer) must not keep
        # the agent from stopping: name it, with its stack, then leave. Committed records are on disk.
        for stuck in asyncio.all_tasks(loop):
            if stuck is not task and not stuck.done():
                log.error("still running %.0f s after the stop: %s, awaiting:\n  %s",
                          STOP_GRACE_S, stuck.get_name(), "\n  ".join(await_chain(stuck.get_coro())))
        logging.shutdown()
        os._exit(EXIT_STOP_TIMEOUT)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    with contextlib.suppress(asyncio.CancelledError):
        await agent.run(ready=ready)
    log.info("agent %s stopped", config.gateway.id)
