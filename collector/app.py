"""The collector's aiohttp application, assembled here and nowhere else.

`create_app(store)` builds the app from every feature's `add_*_routes` (batch ingest, the read
API, the control plane, live updates, metrics, residents' reports, the control-centre page, open
data, NGSI-LD and the OpenAPI document of every route). Routes reach what they share through the
keys of collector.appkeys (`request.app[STORE]`) and never import this module.
`start(app, host, port)` serves it the way it must be served (aiohttp's own request
decompression off: collector.body bounds the inflated size itself).
"""

from __future__ import annotations

import os

from aiohttp import web

from collector.access import add_login_routes, operators_only
from collector.alarms.routes import add_alarm_routes
from collector.appkeys import INGEST_LISTENERS, MAX_BODY, MAX_FUTURE_MS, OPERATOR_LOGIN, STORE, TERRITORY
from collector.cameras.routes import add_camera_routes
from collector.control.routes import add_control_routes
from collector.dashboard.assets_api import add_asset_routes
from collector.dashboard.map import add_map_routes
from collector.dashboard.routes import add_dashboard_routes, add_stream_topic
from collector.ingest import add_ingest_routes
from collector.live import install_changes
from collector.metrics import install_metrics
from collector.ngsi import add_ngsi_routes
from collector.openapi import add_openapi_route
from collector.opendata import add_opendata_routes
from collector.params import refuse_nul
from collector.parking.routes import add_parking_routes
from collector.problem import problem_middleware
from collector.reads import add_read_routes
from collector.reports.routes import TOPIC as REPORTS_TOPIC
from collector.reports.routes import add_report_routes
from collector.store import Store
from collector.territory import Territory, load_territory
from collector.traffic.routes import add_traffic_routes
from collector.vehicles.routes import add_vehicle_routes

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # decompressed; the agent's batches are about 2 MB
#: How far ahead of the collector's clock a record may be dated: gateways keep time by NTP, so more
#: is a broken clock (a sample dated 2099 would count every later one as late). $CITYGATE_MAX_FUTURE_S.
DEFAULT_MAX_FUTURE_S = 300.0


def create_app(
    store: Store, *, territory: Territory | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    operator_login: bool = False, max_future_s: float | None = None,
) -> web.Application:
    """The collector app; `territory` defaults to configs/territory.json (or $CITYGATE_TERRITORY).
    `operator_login`: the control-centre page and the read API for operators only (collector.access).
    `max_future_s`: how far ahead of now a record may be dated; defaults to $CITYGATE_MAX_FUTURE_S or
    DEFAULT_MAX_FUTURE_S."""
    middlewares = [problem_middleware, refuse_nul]
    if operator_login:
        middlewares.append(operators_only)
    app = web.Application(middlewares=middlewares)
    app[OPERATOR_LOGIN] = operator_login
    app[STORE] = store
    app[TERRITORY] = territory or load_territory()
    app[MAX_BODY] = max_body_bytes
    app[MAX_FUTURE_MS] = int(1000 * (max_future_from_env() if max_future_s is None else max_future_s))
    app[INGEST_LISTENERS] = []
    add_ingest_routes(app)
    add_read_routes(app)
    add_control_routes(app)
    install_changes(app)
    install_metrics(app)
    add_report_routes(app)
    add_stream_topic(app, REPORTS_TOPIC)  # the control page's reports view hears of each change
    add_dashboard_routes(app)
    add_alarm_routes(app)
    add_map_routes(app)
    add_asset_routes(app)
    add_opendata_routes(app)
    add_parking_routes(app)
    add_traffic_routes(app)
    add_vehicle_routes(app)
    add_camera_routes(app)
    add_ngsi_routes(app)
    add_openapi_route(app)
    if operator_login:
        add_login_routes(app)
    return app


def max_future_from_env() -> float:
    """$CITYGATE_MAX_FUTURE_S (seconds, >= 0), or DEFAULT_MAX_FUTURE_S; ValueError says what is wrong."""
    raw = os.environ.get("CITYGATE_MAX_FUTURE_S")
    if raw is None:
        return DEFAULT_MAX_FUTURE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 365 * 86_400:
        raise ValueError(f"CITYGATE_MAX_FUTURE_S={raw!r}: expected seconds between 0 and one year")
    return value


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 8080) -> tuple[web.AppRunner, str]:
    """Serve `app`; return the runner (to `cleanup()`) and the base URL with the real port (port 0 picks one)."""
    runner = web.AppRunner(app, auto_decompress=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound}"
