"""What the collector serves besides ingest, the read API and the control plane, installed by
create_app: live updates, metrics, residents' reports, the control-centre page, open data and
the OpenAPI document of every route (collector/openapi.py)."""

from __future__ import annotations

from aiohttp import web

from collector.dashboard.routes import add_dashboard_routes
from collector.live import install_changes
from collector.metrics import install_metrics
from collector.ngsi import add_ngsi_routes
from collector.openapi import add_openapi_route
from collector.opendata import add_opendata_routes
from collector.reports.routes import add_report_routes


def install_features(app: web.Application) -> None:
    install_changes(app)
    install_metrics(app)
    add_report_routes(app)
    add_dashboard_routes(app)
    add_opendata_routes(app)
    add_ngsi_routes(app)
    add_openapi_route(app)
