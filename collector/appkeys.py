"""The keys under which the collector app holds what its routes share (Home Assistant's `const.py`).

Below every route module: collector.app assembles the app and imports the routes; the routes import
these keys and never the app back.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from citygate_wire.batch import Batch
from collector.control.link import ControlLink
from collector.model import Gateway, IngestResult
from collector.store import Store
from collector.territory import Territory

STORE = web.AppKey("store", Store)
OPERATOR_LOGIN = web.AppKey("operator_login", bool)
TERRITORY = web.AppKey("territory", Territory)
MAX_BODY = web.AppKey("max_body_bytes", int)
MAX_FUTURE_MS = web.AppKey("max_future_ms", int)
#: Called after each stored batch (metrics, live updates): must not block, must not raise.
IngestListener = Callable[[Gateway, Batch, IngestResult], None]
INGEST_LISTENERS = web.AppKey("ingest_listeners", list[IngestListener])
#: the MQTT link of the control plane, when `serve` runs one (collector.control.routes.attach_link)
LINK = web.AppKey("control_link", ControlLink)
