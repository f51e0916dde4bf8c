"""One OpenAPI 3.1 document for every route the collector serves, at GET /openapi.json.

A route added to the app without its entry here fails tests/collector_web (and an entry
without its route too): add the path to PATHS when you add a route.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector.appkeys import OPERATOR_LOGIN
from collector.params import json_response

Doc = dict[str, Any]

PROBLEM = {"$ref": "#/components/responses/Problem"}
OPEN311_ERROR = {"$ref": "#/components/responses/Open311Error"}
OPEN311_ERROR_BODY = {"content": {"application/json": {"schema": {
    "type": "array", "items": {"$ref": "#/components/schemas/Open311Error"}}}}}


def _schema(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Doc, description: str = "OK", ctype: str = "application/json") -> Doc:
    return {"description": description, "content": {ctype: {"schema": schema}}}


def _path(name: str, description: str, pattern: str | None = None) -> Doc:
    schema: Doc = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _query(name: str, description: str, schema: Doc | None = None, required: bool = False) -> Doc:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


#: the page of a list that grows with the fleet (collector.params.page_of): its answer has total, limit,
#: offset and next (the following page's address, null on the last), or for a JSON array a Link rel="next"
#: header and X-Total-Count
PAGE = [_query("limit", "Page size, 1 to 1000 (default 500)", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("offset", "Rows to skip (default 0)", {"type": "integer", "minimum": 0})]
PAGE_MEMBERS = {"total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
                "next": {"type": ["string", "null"], "description": "The following page's address, null on the last"}}


def _paged(member: str, items: Doc | None = None) -> Doc:
    return _json({"type": "object", "properties": {member: {"type": "array", **({"items": items} if items else {})},
                                                   **PAGE_MEMBERS}})


def _paged_array(description: str) -> Doc:
    return {**_json({"type": "array"}, description), "headers": {
        "Link": {"description": 'The next page: <address>; rel="next" (absent on the last)', "schema": {"type": "string"}},
        "X-Total-Count": {"description": "Rows in all the pages", "schema": {"type": "integer"}}}}


def _op(summary: str, tag: str, responses: Doc, *, params: list[Doc] | None = None, body: Doc | None = None,
        security: list[Doc] | None = None, description: str | None = None) -> Doc:
    if params and "400" not in responses:  # any parameter holding a NUL, at least (collector.params)
        responses = {**responses, "400": OPEN311_ERROR if tag == "Open311" else PROBLEM}
    op: Doc = {"summary": summary, "tags": [tag], "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if security is not None:
        op["security"] = security
    return op


def _ngsi_paths() -> Doc:
    """The NGSI-LD API (collector.ngsi): ETSI GS CIM 009 v1.6, read-only."""
    ld: Doc = {"description": "OK", "content": {"application/json": {"schema": {}}, "application/ld+json": {"schema": {}}},
          "headers": {"Link": {"description": "application/json: the @context (rel=...json-ld#context); "
                                              "queries: rel=next / rel=prev pages", "schema": {"type": "string"}}}}
    entities = {**ld, "content": {t: {"schema": {"type": "array", "items": _schema("NgsiEntity")}}
                                  for t in ("application/json", "application/ld+json")},
                "headers": {**ld["headers"], "NGSILD-Results-Count": {
                    "description": "with count=true: how many entities match", "schema": {"type": "integer"}}}}
    one = {**ld, "content": {t: {"schema": _schema("NgsiEntity")} for t in ("application/json", "application/ld+json")}}
    accept = {"name": "Accept", "in": "header", "required": False, "schema": {"type": "string"},
              "description": "application/json (default: @context in Link) or application/ld+json (@context member)"}
    form = _query("options", "normalized (default), keyValues or concise", {"enum": ["normalized", "keyValues",
                                                                                      "concise"]})
    attrs = _query("attrs", "Comma-separated attribute names to return")
    details = _query("details", "true: full descriptions", {"enum": ["true", "false"]})
    errors = {"400": PROBLEM, "404": PROBLEM, "406": PROBLEM}
    return {
        "/ngsi-ld/v1/entities": {"get": _op("Query NGSI-LD entities", "Open data", {
            "200": entities, "400": PROBLEM, "406": PROBLEM}, params=[
            _query("type", "Comma-separated: Streetlight, StreetlightControlCabinet, StreetlightGroup, "
                           "WaterConsumptionObserved, Device (an unknown type matches nothing)"),
            _query("id", "Comma-separated entity ids"), attrs,
            _query("q", 'NGSI-LD query language, e.g. powerState=="on";powerConsumption>=40'),
            _query("georel", "near;maxDistance==<m> (or minDistance), within, intersects, disjoint, equals"),
            _query("geometry", "Point, LineString, Polygon or MultiPolygon"),
            _query("coordinates", "GeoJSON coordinates of the geometry, e.g. [5.04,47.32]"),
            _query("geoproperty", "Default location"),
            _query("limit", "Page size (0 only with count=true)", {"type": "integer", "minimum": 0, "maximum": 1000,
                                                                    "default": 20}),
            _query("offset", "Page start", {"type": "integer", "minimum": 0, "default": 0}),
            _query("count", "true: NGSILD-Results-Count header", {"enum": ["true", "false"]}),
            form, _query("format", "Same as options (NGSI-LD 1.7)"), accept])},
        "/ngsi-ld/v1/entities/{entity_id}": {"get": _op("One NGSI-LD entity", "Open data", {"200": one, **errors},
            params=[_path("entity_id", "urn:ngsi-ld:<Type>:<gateway>[:<device or group, percent-encoded>]"),
                    attrs, form, _query("format", "Same as options"), accept])},
        "/ngsi-ld/v1/types": {"get": _op("Entity types that have entities", "Open data", {
            "200": _json({"type": ["object", "array"]}), "400": PROBLEM, "406": PROBLEM}, params=[details, accept])},
        "/ngsi-ld/v1/types/{type}": {"get": _op("One entity type: count and attributes", "Open data", {
            "200": _json({"type": "object"}), **errors}, params=[_path("type", "Entity type"), accept])},
        "/ngsi-ld/v1/attributes": {"get": _op("Attributes of the entities", "Open data", {
            "200": _json({"type": ["object", "array"]}), "400": PROBLEM, "406": PROBLEM}, params=[details, accept])},
        "/ngsi-ld/v1/attributes/{attr}": {"get": _op("One attribute and the types carrying it", "Open data", {
            "200": _json({"type": "object"}), **errors}, params=[_path("attr", "Attribute name"), accept])},
    }


GATEWAY_AUTH: list[Doc] = [{"gatewayToken": []}]
OPERATOR_AUTH: list[Doc] = [{"operatorToken": []}]
LIMIT = _query("limit", "How many, newest first", {"type": "integer", "minimum": 1, "maximum": 10000,
                                                     "default": 100})
#: a page of a log newest first (alarm log, command audit: collector.params.log_page): `before` is the cursor
#: the previous page's `next` gives, not an offset (the log grows at its head); the answer has limit, before, next
BEFORE = _query("before", "Resume after this row: the cursor <ms>:<id> of the previous page's next",
                {"type": "string", "pattern": "^[0-9]{1,19}:.+$"})
LOG_MEMBERS = {"limit": {"type": "integer"}, "before": {"type": ["string", "null"]},
               "next": {"type": ["string", "null"], "description": "The following (older) page's address, null on the last"}}


def _log_page(member: str) -> Doc:
    return _json({"type": "object", "properties": {member: {"type": "array"}, **LOG_MEMBERS}})


PERIOD = _path("period", "Bucket size", "^(hour|day)$")
ROLLUP_PARAMS = [PERIOD, _query("from", "First bucket, either period: a date YYYY-MM-DD (a Paris day), a "
                                         "date-time with its zone, or UTC epoch ms", required=True),
                 _query("to", "Last bucket, inclusive, in the same forms (a date: its last hour)", required=True)]
INSEE = _path("insee", "INSEE code of the commune (a former commune's code works too)", r"^(\d{5}|2[AB]\d{3})$")
GATEWAY = _path("gateway", "Gateway name")
ASSET_RANGE = [_query("from", "UTC epoch ms, date-time with zone, or date (default: 24 h before to)"),
               _query("to", "UTC epoch ms, date-time with zone, or date (default: now)")]
EFFICIENCY_PARAMS = [_query("commune", "INSEE code"), _query("from", "YYYY-MM (default: 11 months before to)"),
                     _query("to", "YYYY-MM (default: this month)")]
JURISDICTION = _query("jurisdiction_id", "The commune's INSEE code (a former commune's code works too)")
REQUEST_ID = _path("service_request_id", "Service request id", "^[0-9]+$")
SERVICE_CODE = _path("service_code", "Service code")
REPORT = _path("report", "Service request id", "^[0-9]+$")


def _open311_error(xml: bool) -> Doc:
    if not xml:
        return OPEN311_ERROR
    return {"description": "Open311 errors: <errors><error><code/><description/></error>...</errors>",
            "content": {"text/xml": {"schema": {"type": "string"}}}}


def _open311_ok(schema: Doc, xml: bool, root: str, description: str = "OK") -> Doc:
    if xml:
        return _json({"type": "string"}, f"{description}; the spec's XML, root element <{root}>", "text/xml")
    return _json(schema, description)


def _open311_op(summary: str, xml: bool, ok: tuple[str, Doc], errors: tuple[str, ...], *,
                params: list[Doc] | None = None, body: Doc | None = None, description: str | None = None) -> Doc:
    """A GeoReport operation in one format: every error it lists in that format too (400 always)."""
    failure = _open311_error(xml)
    responses = {ok[0]: ok[1], **{status: failure for status in ("400", *errors)}}
    if "429" in errors:
        responses["429"] = {**failure, "description": "Too many reports from this address or this e-mail lately",
                            "headers": {"Retry-After": {"description": "Seconds until one more report is taken",
                                                        "schema": {"type": "integer", "minimum": 1}}}}
    return _op(summary, "Open311", responses, params=params, body=body, description=description)


def _open311_format(suffix: str) -> Doc:
    xml = suffix == ".xml"
    token = _path("token", "The follow token a POST reply gave (header Citygate-Follow-Token)",
                  "^[A-Za-z0-9_-]+$")
    services = _open311_op("Report types residents can send", xml, ("200", _open311_ok(
        {"type": "array", "items": _schema("Service")}, xml, "services")), ("404",), params=[JURISDICTION])
    definition = _open311_op("A report type's attributes", xml, ("200", _open311_ok(
        _schema("ServiceDefinition"), xml, "service_definition")), ("404",), params=[SERVICE_CODE, JURISDICTION])
    created = _open311_ok({"type": "array", "items": _schema("NewRequestReply")}, xml, "service_requests",
                          "Created, or attached to the open request about the same lamp (same service_request_id)")
    created["headers"] = {
        "Location": {"description": "The request", "schema": {"type": "string"}},
        "Citygate-Follow-Token": {"description": "The reporter's private token to follow the request live "
                                                 "(and to GET tokens/{token})", "schema": {"type": "string"}},
        "Citygate-Follow-URL": {"description": "Where to follow it: requests/{id}/events?token=...",
                                "schema": {"type": "string"}}}
    post = _open311_op("Send a report", xml, ("201", created), ("404", "413", "429"),
                       body={"required": True, "content": {
                           "application/x-www-form-urlencoded": {"schema": _schema("NewRequest")},
                           "application/json": {"schema": _schema("NewRequest")}}},
                       description="jurisdiction_id, service_code and a location (lat+long, address_string or "
                                   "address_id) are required; attribute[code]=value for a service's attributes. "
                                   "Contact fields are stored for operators only and never shown publicly. At "
                                   "most 64 KiB; a number of reports an hour per source address and per e-mail "
                                   "(429 past it).")
    search = _open311_op("Search reports (at most 90 days; default: the last 90 days)", xml, ("200", _open311_ok(
        {"type": "array", "items": _schema("ServiceRequest"), "maxItems": 1000}, xml, "service_requests")),
        ("404",), params=[
        _query("service_request_id", "Comma-separated ids; when given, every other filter is ignored"),
        _query("service_code", "Comma-separated service codes"),
        _query("status", "open, closed or both comma-separated"),
        _query("start_date", "ISO 8601 with zone; with end_date at most 90 days apart (only start_date: the 90 "
                             "days after it)", {"type": "string", "format": "date-time"}),
        _query("end_date", "ISO 8601 with zone (no start_date and no end_date: the last 90 days)",
               {"type": "string", "format": "date-time"}),
        JURISDICTION])
    one = _open311_op("One report", xml, ("200", _open311_ok(
        {"type": "array", "items": _schema("ServiceRequest"), "maxItems": 1}, xml, "service_requests")),
        ("404",), params=[REQUEST_ID, JURISDICTION])
    from_token = _open311_op("The report a token belongs to", xml, ("200", _open311_ok(
        {"type": "array", "items": _schema("TokenReply"), "maxItems": 1}, xml, "service_requests")),
        ("404",), params=[token, JURISDICTION])
    return {
        f"/open311/v2/services{suffix}": {"get": services},
        "/open311/v2/services/{service_code}" + suffix: {"get": definition},
        f"/open311/v2/requests{suffix}": {"get": search, "post": post},
        "/open311/v2/requests/{service_request_id}" + suffix: {"get": one},
        "/open311/v2/tokens/{token}" + suffix: {"get": from_token},
    }


def _open311_paths() -> Doc:
    out: Doc = {}
    for suffix in ("", ".json", ".xml"):
        out.update(_open311_format(suffix))
    for suffix in (".json", ".xml"):
        xml = suffix == ".xml"
        discovery = {"get": _op("Service Discovery: the GeoReport v2 endpoint, its formats and changeset",
                                "Open311", {"200": _open311_ok(_schema("Discovery"), xml, "discovery"),
                                            "400": _open311_error(xml)})}
        out[f"/open311/discovery{suffix}"] = discovery
        out[f"/open311/v2/discovery{suffix}"] = discovery
    out["/open311/follow/{service_request_id}"] = {"get": _op(
        "The resident's page of a report (French, or English by ?lang=en or Accept-Language)", "Open311", {
            "200": _json({"type": "string"}, "The page", "text/html"), "404": OPEN311_ERROR},
        params=[REQUEST_ID, _query("lang", "fr or en", {"enum": ["fr", "en"]})])}
    out["/open311/v2/requests/{service_request_id}/events"] = {"get": _op(
        "Follow a report live (its reporters only)", "Open311", {
            "200": _json({"type": "string"}, "Server-Sent Events: `status` with the request and its internal "
                         "state, at once and at each change", "text/event-stream"),
            "401": OPEN311_ERROR, "403": OPEN311_ERROR, "404": OPEN311_ERROR},
        params=[REQUEST_ID, _query("token", "The follow token given when the report was sent (or send it as a "
                                            "bearer token)")])}
    return out



def _vehicle_paths() -> Doc:
    vehicle = _path("vehicle", "Vehicle name (a police vehicle is 404 without the police role)")
    window = [_query("from", "Epoch ms (default: 7 days before to)"), _query("to", "Epoch ms (default: now)")]
    ok = {"200": _json({"type": "object"}), "404": PROBLEM}
    return {
        "/api/v1/vehicles": {"get": _op("Service vehicles and their latest position (police ones: police role only)",
                                        "Vehicles", {"200": _paged("vehicles")}, params=PAGE)},
        "/api/v1/vehicles/{vehicle}": {"get": _op("One vehicle and its latest position", "Vehicles", ok,
                                                  params=[vehicle])},
        "/api/v1/vehicles/{vehicle}/trips": {"get": _op("Trips: distance, duration, idle time, cycles", "Vehicles",
                                                        {**ok, "400": PROBLEM}, params=[vehicle, *window])},
        "/api/v1/vehicles/{vehicle}/rounds": {"get": _op("A refuse vehicle's rounds and the streets they served",
                                                         "Vehicles", {**ok, "400": PROBLEM}, params=[vehicle, *window])},
        "/opendata/v1/waste/collected.json": {"get": _op(
            "Streets collected per day by the waste rounds, published after a delay (no vehicle, no position)",
            "Open data", {"200": _json({"type": "object"}), "400": PROBLEM, "404": PROBLEM},
            params=[_query("commune", "INSEE code"), _query("from", "YYYY-MM-DD"), _query("to", "YYYY-MM-DD")])},
    }

PATHS: Doc = {
    # -- ingest and reads (collector.app)
    "/api/v1/batches": {"post": _op("Upload a batch of readings (gzip or zstd JSON)", "Ingest", {
        "200": _json(_schema("BatchReply")), "400": PROBLEM, "401": PROBLEM, "403": PROBLEM, "413": PROBLEM,
        "415": PROBLEM}, security=GATEWAY_AUTH,
        body={"required": True, "content": {"application/json": {"schema": _schema("Batch")}}})},
    "/api/v1/gateways": {"get": _op("Gateways with their last-seen time, a page at a time by name", "Reads", {
        "200": _paged("gateways", _schema("GatewayInfo"))}, params=PAGE)},
    "/api/v1/gateways/{gateway}/devices/{device}/samples": {"get": _op("A device's latest samples", "Reads", {
        "200": _json({"type": "object"}), "400": PROBLEM, "404": PROBLEM},
        params=[GATEWAY, _path("device", "Device name"), LIMIT])},
    "/api/v1/gateways/{gateway}/events": {"get": _op("A gateway's latest events", "Reads", {
        "200": _json({"type": "object"}), "400": PROBLEM, "404": PROBLEM}, params=[GATEWAY, LIMIT])},
    "/api/v1/gateways/{gateway}/rollups/{period}": {"get": _op("A gateway's rollups", "Reads", {
        "200": _json(_schema("Rollups")), "400": PROBLEM, "404": PROBLEM}, params=[GATEWAY, *ROLLUP_PARAMS])},
    "/api/v1/communes": {"get": _op("The territory's communes and former communes", "Reads", {
        "200": _json({"type": "object"})})},
    "/api/v1/communes/{insee}/rollups/{period}": {"get": _op("A commune's rollups", "Reads", {
        "200": _json(_schema("Rollups")), "400": PROBLEM, "404": PROBLEM}, params=[INSEE, *ROLLUP_PARAMS])},
    "/api/v1/rollups/{period}": {"get": _op("The metropolis's rollups (sum of its communes)", "Reads", {
        "200": _json(_schema("Rollups")), "400": PROBLEM, "404": PROBLEM}, params=ROLLUP_PARAMS)},
    # -- control plane (collector.control.routes)
    "/api/v1/control/presence": {"get": _op("Every gateway's MQTT presence, a page at a time by name", "Control", {
        "200": _paged("gateways"), "401": PROBLEM}, security=OPERATOR_AUTH, params=PAGE)},
    "/api/v1/control/alarms": {"get": _op("The alarm log, newest first, a page at a time", "Control", {
        "200": _log_page("alarms"), "400": PROBLEM, "401": PROBLEM}, security=OPERATOR_AUTH, params=[
        _query("status", "open, acknowledged or cleared"), _query("gateway", "Gateway name"), LIMIT, BEFORE])},
    "/api/v1/control/alarms/{alarm}/{action}": {"post": _op("Acknowledge or clear an alarm", "Control", {
        "200": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "404": PROBLEM, "409": PROBLEM},
        security=OPERATOR_AUTH, params=[_path("alarm", "Alarm id", "^[0-9]+$"),
                                        _path("action", "What to do", "^(acknowledge|clear)$")],
        body={"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"note": {"type": "string", "maxLength": 500}}}}}})},
    "/api/v1/control/commands": {
        "post": _op("Send a command to a gateway or every gateway of a commune", "Control", {
            "202": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "404": PROBLEM, "503": PROBLEM},
            security=OPERATOR_AUTH, body={"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action"], "properties": {
                    "gateway": {"type": "string"}, "commune": {"type": "string"}, "action": {"type": "string"},
                    "args": {"type": "object"}, "valid_s": {"type": "number"},
                    "reason": {"type": "string", "maxLength": 500}}}}}}),
        "get": _op("The command audit log, newest first, a page at a time", "Control", {
            "200": _log_page("commands"), "400": PROBLEM, "401": PROBLEM}, security=OPERATOR_AUTH,
            params=[LIMIT, BEFORE])},
    "/api/v1/control/commands/{command}": {"get": _op("One command and its acknowledgements", "Control", {
        "200": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "404": PROBLEM}, security=OPERATOR_AUTH,
        params=[_path("command", "Command id"), _query("wait_s", "Long-poll until final, seconds", {
            "type": "integer", "minimum": 0, "maximum": 60})])},
    "/api/v1/control/junctions": {"get": _op("Each junction's controller: its mode and plan", "Control", {
        "200": _paged("junctions"), "401": PROBLEM}, security=OPERATOR_AUTH, params=PAGE)},
    "/api/v1/control/junctions/{junction}/mode": {"post": _op(
        "Flashing amber, dark or back to normal, with a reason (supervisors; never a colour or a stage)", "Control", {
            "202": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "403": PROBLEM, "404": PROBLEM,
            "503": PROBLEM}, security=OPERATOR_AUTH, params=[_path("junction", "Junction id, as its counts name it")],
        body={"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["mode", "reason"], "additionalProperties": False, "properties": {
                "mode": {"enum": ["yellow_flash", "dark", "normal"]}, "reason": {"type": "string", "maxLength": 500},
                "duration_s": {"type": "integer", "minimum": 60, "maximum": 65535}}}}}})},
    # -- residents' reports (collector.reports.routes)
    **_open311_paths(),
    "/api/v1/reports": {"get": _op("The work queue: reports with their reporters' contact details, newest first, "
                                   "and the total", "Reports (operators)", {
        "200": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "404": PROBLEM}, security=OPERATOR_AUTH,
        params=[_query("state", "Comma-separated: received, dispatched, in_progress, resolved"),
                _query("commune", "INSEE code"), _query("service", "Comma-separated service codes"),
                _query("assigned", "An operator's name, `me`, or `none` (unassigned)"), LIMIT,
                _query("offset", "Reports to skip (paging)", {"type": "integer", "minimum": 0})])},
    "/api/v1/reports/{report}": {"get": _op("One report, its reporters and history", "Reports (operators)", {
        "200": _json({"type": "object"}), "401": PROBLEM, "404": PROBLEM}, security=OPERATOR_AUTH, params=[REPORT])},
    "/api/v1/reports/{report}/state": {"post": _op("Move a report to a state", "Reports (operators)", {
        "200": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "404": PROBLEM, "409": PROBLEM},
        security=OPERATOR_AUTH, params=[REPORT], body={"required": True, "content": {"application/json": {
            "schema": {"type": "object", "required": ["state"], "additionalProperties": False, "properties": {
                "state": {"enum": ["received", "dispatched", "in_progress", "resolved"]},
                "note": {"type": "string", "maxLength": 1000},
                "expected_datetime": {"type": "string", "format": "date-time"},
                "from_state": {"enum": ["received", "dispatched", "in_progress", "resolved"]}}}}}},
        description="A move the lifecycle allows (the same state with a note: the public note only); 409 if it "
                    "does not, or if the report is no longer in `from_state`")},
    "/api/v1/reports/{report}/assign": {"post": _op("Assign a report to an operator (null: to nobody)",
                                                    "Reports (operators)", {
        "200": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "403": PROBLEM, "404": PROBLEM},
        security=OPERATOR_AUTH, params=[REPORT], body={"required": True, "content": {"application/json": {
            "schema": {"type": "object", "required": ["operator"], "additionalProperties": False, "properties": {
                "operator": {"type": ["string", "null"]}}}}}})},
    # -- control-centre page (collector.dashboard)
    "/": {"get": _op("Redirect to the control-centre page", "Control centre", {"302": {"description": "Found"}})},
    "/control": {"get": _op("Redirect to the control-centre page (with its slash)", "Control centre", {
        "301": {"description": "Moved Permanently: /control/, with the same query"}})},
    "/control/": {"get": _op("The control-centre page", "Control centre", {
        "200": _json({"type": "string"}, "HTML", "text/html")})},
    "/control/assets/{path}": {"get": _op("The page's scripts, style sheets, images and vendored libraries", "Control centre", {
        "200": {"description": "The asset"}, "304": {"description": "Unchanged (If-None-Match)"}, "404": PROBLEM},
        params=[_path("path", "A file under the page's assets (shell.js, vendor/leaflet/leaflet.js ...)")])},
    "/control/api/me": {"get": _op("Who is there: the operator's name and roles, and whether the page asks for a login",
                                   "Control centre", {"200": _json({"type": "object"})})},
    "/control/api/summary": {"get": _op("The metropolis at a glance", "Control centre", {
        "200": _json({"type": "object"})})},
    "/control/api/communes/{insee}": {"get": _op("One commune and a page of its cabinets", "Control centre", {
        "200": _paged("cabinets"), "404": PROBLEM}, params=[INSEE, _query(
            "limit", "Cabinets a page, 1 to 1000 (default 1000)", {"type": "integer", "minimum": 1, "maximum": 1000}),
            PAGE[1]])},
    "/control/api/communes/{insee}/stream": {"get": _op("One commune, live: its document once, then what changed",
        "Control centre", {"200": _json({"type": "string"}, "Server-Sent Events (gzip when asked, flushed at each "
                           "event): `commune` (GET /control/api/communes/{insee}'s document, every cabinet) at once, "
                           "then `delta`: the members that changed, `cabinets` only those new or changed (keyed by "
                           "name), `removed` the names gone, `order` every name when the order moved",
                           "text/event-stream"), "404": PROBLEM}, params=[INSEE])},
    "/control/api/cabinets/{gateway}": {"get": _op("One cabinet, its devices and events", "Control centre", {
        "200": _json({"type": "object"}), "404": PROBLEM}, params=[GATEWAY])},
    # -- operators' alarms (collector.alarms.routes)
    "/api/v1/alarms": {"get": _op("Alarms, one per cause, with counts per state, severity, commune and kind", "Alarms", {
        "200": _json({"type": "object"}), "401": PROBLEM}, params=[
        _query("state", "active (default), all, or a comma-separated list of open, acknowledged, cleared"),
        _query("commune", "INSEE code"), _query("severity", "major or critical"), _query("kind", "The cause's code"),
        _query("gateway", "Gateway name"), _query("limit", "Page size, 1 to 500", {"type": "integer"}),
        _query("offset", "Alarms to skip", {"type": "integer"})])},
    "/api/v1/alarms/{alarm}": {"get": _op("One alarm with its devices, history, comments and audit", "Alarms", {
        "200": _json({"type": "object"}), "401": PROBLEM, "404": PROBLEM},
        params=[_path("alarm", "Alarm id", "^[0-9]+$")])},
    "/api/v1/alarms/{alarm}/{action}": {"post": _op("Acknowledge, assign, comment on or clear an alarm (operator)",
        "Alarms", {"200": _json({"type": "object"}), "400": PROBLEM, "401": PROBLEM, "403": PROBLEM, "404": PROBLEM,
                   "409": PROBLEM}, security=OPERATOR_AUTH,
        params=[_path("alarm", "Alarm id", "^[0-9]+$"), _path("action", "What to do", "^(ack|assign|comment|clear)$")],
        body={"required": False, "content": {"application/json": {"schema": {"type": "object", "properties": {
            "comment": {"type": "string", "maxLength": 1000}, "operator": {"type": "string"}}}}}})},
    "/control/api/stream": {"get": _op("The summary, live", "Control centre", {
        "200": _json({"type": "string"}, "Server-Sent Events (gzip when asked, flushed at each event): `summary` "
                     "at once and at each change (with delta=1: once, then `summary-delta`, the members that "
                     "changed, `communes` only those that changed, keyed by insee), `change` {topic} when a "
                     "feature's topic changed", "text/event-stream")},
        params=[_query("delta", "1: the summary once, then only what changed", {"enum": ["0", "1"]})])},
    # -- the map (collector.dashboard.map): columns of cabinets and lamps, then deltas
    "/control/api/map/config": {"get": _op("The map's tile URL (none: a plain background), communes and states",
                                           "Control centre", {"200": _json({"type": "object"})})},
    "/control/api/map/layers": {"get": _op(
        "Every cabinet and lamp (own position or the cabinet's: positionSource) with its state, and the other layers; "
        "the lamps and their states in pages of one snapshot (stamp, layout, total, limit, offset, next), the other "
        "layers and the cabinets with the first page", "Control centre", {
            "200": _json({"type": "object"}), "400": PROBLEM,
            "410": PROBLEM},
        params=[_query("layers", "Comma-separated: cabinets, lamps, junctions, cameras, parking, vehicles (default all)"),
                _query("limit", "Lamps a page, 1 to 20000 (default 10000)",
                       {"type": "integer", "minimum": 1, "maximum": 20000}),
                _query("offset", "Lamps to skip (default 0)", {"type": "integer", "minimum": 0}),
                _query("stamp", "The snapshot of the first page (its stamp; next carries it)",
                       {"type": "integer", "minimum": 0})])},
    "/control/api/map/states": {"get": _op(
        "The cabinets' and lamps' states: only those changed since `since` when this instance holds it, else all",
        "Control centre", {"200": _json({"type": "object"})}, params=[_query(
            "since", "The stamp of an earlier answer", {"type": "integer", "minimum": 0})])},
    # -- asset pages (collector.dashboard.assets_api): from/to are epoch ms, zoned date-times or dates
    "/control/api/lamps/{gateway}/{device}": {"get": _op(
        "A lamp: commanded vs actual level, power, voltage; energy and burn hours per day; faults; program",
        "Control centre", {"200": _json({"type": "object"}), "404": PROBLEM},
        params=[GATEWAY, _path("device", "Lamp device"), *ASSET_RANGE])},
    "/control/api/cabinets/{gateway}/charts": {"get": _op(
        "A cabinet: its lamps, energy per day, supply voltage, alarms, groups and program", "Control centre",
        {"200": _json({"type": "object"}), "404": PROBLEM}, params=[GATEWAY, *ASSET_RANGE])},
    "/control/api/junctions/{gateway}/{device}": {"get": _op(
        "A junction: current mode and plan, its changes, the plans it ran, commands and events", "Control centre",
        {"200": _json({"type": "object"}), "404": PROBLEM},
        params=[GATEWAY, _path("device", "Signal controller device"), *ASSET_RANGE])},
    "/control/api/junctions/{junction}": {"get": _op(
        "The same, of the junction named in its counts (the map's junction id)", "Control centre",
        {"200": _json({"type": "object"}), "404": PROBLEM},
        params=[_path("junction", "Junction id, as its counts name it"), *ASSET_RANGE])},
    "/control/api/communes/{insee}/charts": {"get": _op(
        "A commune's energy per day against the previous period and the all-night baseline", "Control centre",
        {"200": _json({"type": "object"}), "404": PROBLEM},
        params=[INSEE, _query("from", "YYYY-MM-DD (default 29 days before to)"),
                _query("to", "YYYY-MM-DD (default today)")])},
    # -- the public efficiency page and its open data (collector.efficiency)
    "/efficiency": {"get": _op("Redirect to the efficiency page", "Open data", {
        "301": {"description": "Moved Permanently: /efficiency/"}})},
    "/efficiency/": {"get": _op("The city's lighting efficiency, a public page", "Open data", {
        "200": _json({"type": "string"}, "HTML", "text/html")})},
    "/efficiency/assets/{path}": {"get": _op("The efficiency page's script, style and chart library", "Open data", {
        "200": {"description": "The asset"}, "404": PROBLEM}, params=[_path("path", "efficiency.js, vendor/...")])},
    "/opendata/v1/efficiency.json": {"get": _op(
        "Per commune and month: energy against the all-night baseline, euros and CO2, availability, repairs, "
        "residents' reports", "Open data", {"200": _json({"type": "object"}), "400": PROBLEM, "404": PROBLEM},
        params=EFFICIENCY_PARAMS)},
    "/opendata/v1/efficiency.csv": {"get": _op(
        "The same as CSV", "Open data", {
            "200": _json({"type": "string"}, "CSV with a header row (units in it); format=excel-fr: UTF-8 with "
                                             "BOM, `;` separator, decimal comma", "text/csv"),
            "400": PROBLEM, "404": PROBLEM},
        params=[*EFFICIENCY_PARAMS, _query("format", "csv (default) or excel-fr",
                                            {"enum": ["csv", "excel-fr"]})])},
    # -- open data (collector.opendata, collector.ngsi)
    "/opendata/v1/communes/daily.json": {"get": _op("Per commune and day: energy, burn hours, lamp faults, water",
                                                     "Open data", {"200": _json({"type": "object"}),
                                                                   "400": PROBLEM, "404": PROBLEM},
                                                     params=[_query("commune", "INSEE code"),
                                                             _query("from", "YYYY-MM-DD (default 31 days ago)"),
                                                             _query("to", "YYYY-MM-DD (default today)")])},
    "/opendata/v1/communes/daily.csv": {"get": _op("The same as CSV", "Open data", {
        "200": _json({"type": "string"}, "RFC 4180 CSV, a header row naming each column with its unit "
                                         "(energy_kwh (kWh) ...)", "text/csv"), "400": PROBLEM, "404": PROBLEM},
        params=[_query("commune", "INSEE code"), _query("from", "YYYY-MM-DD"), _query("to", "YYYY-MM-DD")])},
    # -- on-street parking (collector.parking.routes)
    "/api/v1/parking/now": {"get": _op("Occupancy per street and zone now, and open overstays", "Parking", {
        "200": _json({"type": "object"})})},
    "/api/v1/parking/spaces": {"get": _op("Each space: state since when, its sensor's battery and radio", "Parking", {
        "200": _paged_array("A page of the spaces, by id")}, params=[_query("street", "Street id"), *PAGE])},
    **{f"/api/v1/parking/{period}": {"get": _op(f"Mean occupancy, coverage and changes per street or zone, {what}",
                                                "Parking", {"200": _json({"type": "object"}), "400": PROBLEM},
                                                params=[_query("by", "street (default) or zone"),
                                                        _query("from", "YYYY-MM-DD"), _query("to", "YYYY-MM-DD")])}
       for period, what in (("hourly", "per hour"), ("daily", "per day, with turnover"))},
    "/opendata/v1/parking/hourly.csv": {"get": _op("Hourly occupancy per street (CSV)", "Open data", {
        "200": _json({"type": "string"}, "RFC 4180 CSV with a header row", "text/csv"), "400": PROBLEM},
        params=[_query("from", "YYYY-MM-DD"), _query("to", "YYYY-MM-DD")])},
    # -- traffic counts (collector.traffic.routes)
    "/api/v1/traffic/junctions": {"get": _op("Each junction's last hour of counts and its faulty detectors", "Traffic",
                                             {"200": _paged_array("A page of the junctions")}, params=PAGE)},
    "/api/v1/traffic/junctions/{junction}/rollups": {"get": _op(
        "Counts per detector, lane, approach or junction per quarter hour, hour or day; flagged buckets", "Traffic",
        {"200": _json({"type": "object"}), "404": PROBLEM},
        params=[_path("junction", "Junction id"), _query("level", "detector, lane, approach or junction"),
                _query("period", "15min, hour or day"), _query("from", "YYYY-MM-DD"), _query("to", "YYYY-MM-DD")])},
    "/api/v1/traffic/junctions/{junction}/profile": {"get": _op("A junction's flow per quarter hour of a day", "Traffic",
        {"200": _json({"type": "object"}), "404": PROBLEM},
        params=[_path("junction", "Junction id"), _query("date", "YYYY-MM-DD (Europe/Paris)")])},
    "/opendata/v1/traffic/{junction}/{day}.csv": {"get": _op("Counts per lane and interval of a junction and day (CSV)",
        "Open data", {"200": _json({"type": "string"}, "RFC 4180 CSV, a header row naming each column with its unit",
                                   "text/csv"), "404": PROBLEM},
        params=[_path("junction", "Junction id"), _path("day", "YYYY-MM-DD (Europe/Paris)")])},
    # -- camera health (collector.cameras.routes): operators only, never in open data
    "/api/v1/cameras": {"get": _op("Each camera's status, open faults, firmware, clock drift and place; per cabinet "
                                   "and commune (of every camera; the cameras and their cabinets a page at a time)",
                                   "Cameras", {"200": _paged("cameras"), "404": PROBLEM},
                                   params=[_query("commune", "INSEE code"), _query("gateway", "Gateway name"), *PAGE])},
    "/api/v1/cameras/{gateway}/{device}/site": {"put": _op("Where a camera stands (operators only)", "Cameras", {
        "200": _json({"type": "object"}), "404": PROBLEM},
        params=[_path("gateway", "Gateway name"), _path("device", "Camera id")],
        body={"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["location"],
              "properties": {"location": {"type": "string"}, "lat": {"type": "number"}, "lon": {"type": "number"}}}}}})},
    # -- service vehicles (collector.vehicles.routes): a police vehicle's data for the police role only
    **_vehicle_paths(),
    **_ngsi_paths(),
    # -- operations
    "/metrics": {"get": _op("Prometheus metrics", "Operations", {
        "200": _json({"type": "string"}, "Prometheus text format", "text/plain")})},
    "/openapi.json": {"get": _op("This document", "Operations", {"200": _json({"type": "object"})})},
}

COMPONENTS: Doc = {
    "securitySchemes": {
        "gatewayToken": {"type": "http", "scheme": "bearer", "description": "citygate-collector gateway add"},
        "operatorToken": {"type": "http", "scheme": "bearer", "description": "citygate-collector operator add"},
    },
    "responses": {
        "Problem": _json({"$ref": "#/components/schemas/Problem"}, "RFC 9457 problem", "application/problem+json"),
        "Open311Error": _json({"type": "array", "items": {"$ref": "#/components/schemas/Open311Error"}},
                              "Open311 errors"),
    },
    "schemas": {
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "pointer": {"type": "string"}, "parameter": {"type": "string"}}},
        "Open311Error": {"type": "object", "required": ["code", "description"], "properties": {
            "code": {"type": "integer"}, "description": {"type": "string"}}},
        "Batch": {"type": "object", "required": ["v", "gateway", "records"], "properties": {
            "v": {"const": 1}, "gateway": {"type": "string"}, "commune": {"type": ["string", "null"]},
            "records": {"type": "array", "minItems": 1, "items": {"type": "object", "required": [
                "seq", "kind", "device", "ts_ms"], "properties": {
                "seq": {"type": "integer"}, "kind": {"enum": ["sample", "event"]}, "device": {"type": "string"},
                "ts_ms": {"type": "integer"}, "values": {"type": "object"}, "code": {"type": "string"},
                "severity": {"enum": ["info", "minor", "major", "critical"]}, "detail": {"type": "object"}}}}}},
        "BatchReply": {"type": "object", "properties": {"ack_seq": {"type": "integer"},
                                                        "stored": {"type": "integer"},
                                                        "duplicates": {"type": "integer"}}},
        "GatewayInfo": {"type": "object", "properties": {
            "name": {"type": "string"}, "commune": {"type": "string"}, "cabinet": {"type": ["string", "null"]},
            "lat": {"type": ["number", "null"]}, "lon": {"type": ["number", "null"]},
            "created_ms": {"type": "integer"}, "last_seen_ms": {"type": ["integer", "null"]},
            "last_seq": {"type": ["integer", "null"]}}},
        "Rollups": {"type": "object", "properties": {"period": {"enum": ["hour", "day"]}, "buckets": {
            "type": "array", "items": {"type": "object", "properties": {
                "bucket": {"type": ["integer", "string"]}, "energy_kwh": {"type": "number"},
                "burn_h": {"type": "number"}, "lamps_on": {"type": "integer"}, "lamps_faulty": {"type": "integer"},
                "water_m3": {"type": "number"}, "alarms": {"type": "integer"}, "samples": {"type": "integer"},
                "events": {"type": "integer"}}}}}},
        "Service": {"type": "object", "properties": {
            "service_code": {"type": "string"}, "service_name": {"type": "string"},
            "description": {"type": "string"}, "metadata": {"type": "boolean"},
            "type": {"enum": ["realtime", "batch", "blackbox"]}, "keywords": {"type": "string"},
            "group": {"type": "string"}}},
        "ServiceDefinition": {"type": "object", "properties": {"service_code": {"type": "string"}, "attributes": {
            "type": "array", "items": {"type": "object", "properties": {
                "variable": {"type": "boolean"}, "code": {"type": "string"}, "datatype": {"enum": [
                    "string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]},
                "required": {"type": "boolean"}, "datatype_description": {"type": ["string", "null"]},
                "order": {"type": "integer", "minimum": 1}, "description": {"type": "string"},
                "values": {"type": "array", "items": {"type": "object", "properties": {
                    "key": {"type": "string"}, "name": {"type": "string"}}}}}}}}},
        "NewRequest": {"type": "object", "required": ["jurisdiction_id", "service_code"], "properties": {
            "jurisdiction_id": {"type": "string"}, "service_code": {"type": "string"},
            "lat": {"type": "string"}, "long": {"type": "string"}, "address_string": {"type": "string"},
            "address_id": {"type": "string"}, "zipcode": {"type": "string"},
            "description": {"type": "string", "maxLength": 4000}, "media_url": {"type": "string"},
            "attribute[lamp_id]": {"type": "string"},
            "attribute[symptom]": {"enum": ["off", "flashing", "day_on", "damaged"]}, "first_name": {"type": "string"},
            "last_name": {"type": "string"}, "email": {"type": "string"}, "phone": {"type": "string"},
            "device_id": {"type": "string"}, "account_id": {"type": "string"}}},
        "NewRequestReply": {"type": "object", "additionalProperties": False, "properties": {
            "service_request_id": {"type": "string"}, "service_notice": {"type": ["string", "null"]},
            "account_id": {"type": "null"}}},
        "TokenReply": {"type": "object", "additionalProperties": False, "properties": {
            "service_request_id": {"type": "string"}, "token": {"type": "string"}}},
        "Discovery": {"type": "object", "properties": {
            "changeset": {"type": "string"}, "contact": {"type": "string"}, "key_service": {"type": "string"},
            "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                "specification": {"const": "http://wiki.open311.org/GeoReport_v2"}, "url": {"type": "string"},
                "changeset": {"type": "string"}, "type": {"enum": ["production", "test"]},
                "formats": {"type": "array", "items": {"enum": ["text/xml", "application/json"]}}}}}}},
        "ServiceRequest": {"type": "object", "properties": {
            "service_request_id": {"type": "string"}, "status": {"enum": ["open", "closed"]},
            "status_notes": {"type": ["string", "null"]}, "service_name": {"type": "string"},
            "service_code": {"type": "string"}, "description": {"type": ["string", "null"]},
            "agency_responsible": {"type": ["string", "null"]}, "service_notice": {"type": ["string", "null"]},
            "requested_datetime": {"type": "string", "format": "date-time"},
            "updated_datetime": {"type": "string", "format": "date-time"},
            "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
            "address": {"type": ["string", "null"]}, "address_id": {"type": ["string", "null"]},
            "zipcode": {"type": ["string", "null"]}, "lat": {"type": ["number", "null"]},
            "long": {"type": ["number", "null"]}, "media_url": {"type": ["string", "null"]}}},
        "NgsiEntity": {"type": "object", "required": ["id", "type"], "properties": {
            "id": {"type": "string", "pattern": "^urn:ngsi-ld:"}, "type": {"type": "string"},
            "@context": {"type": "array", "items": {"type": "string"}}}},
    },
}


_FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["token"], "properties": {
        "token": {"type": "string", "description": "The operator's token"},
        "next": {"type": "string", "description": "A page of the control centre to go back to"}}}}}}
#: served with `serve --operator-login` only (collector.access)
LOGIN_PATHS: Doc = {
    "/control/login": {
        "get": _op("The operators' login form", "Control centre", {
            "200": _json({"type": "string"}, "HTML", "text/html")}, params=[_query("next", "Page to go back to")]),
        "post": _op("Log in: sets the session cookie", "Control centre", {
            "303": {"description": "Logged in: back to the page asked for, with the session cookie citygate_operator"},
            "401": _json({"type": "string"}, "Unknown token: the form again", "text/html"),
            "403": PROBLEM, "429": PROBLEM}, body=_FORM),
    },
    "/control/logout": {"post": _op("Log out: ends the session", "Control centre", {
        "303": {"description": "To the login form"}, "403": PROBLEM})},
}
_OPERATOR_SESSION: Doc = {"operatorSession": {
    "type": "apiKey", "in": "cookie", "name": "citygate_operator",
    "description": "Set by POST /control/login (serve --operator-login); HttpOnly, SameSite=Strict"}}


def document(operator_login: bool = False) -> Doc:
    """The whole HTTP API. With `operator_login`, the control centre's login routes and cookie,
    and every /control/ and /api/v1/ route (but the batches') for operators only."""
    paths, components = PATHS, COMPONENTS
    if operator_login:
        paths = {path: {m: _for_operators(path, op) for m, op in item.items()} for path, item in PATHS.items()}
        paths.update(LOGIN_PATHS)
        components = {**COMPONENTS, "securitySchemes": {**COMPONENTS["securitySchemes"], **_OPERATOR_SESSION}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "citygate collector", "version": "1",
                 "description": "Ingest, reads, control plane, residents' reports (Open311 GeoReport v2), "
                                "control-centre page, open data (CSV, JSON, NGSI-LD) and metrics. "
                                "See docs/collector-api.md."},
        "paths": paths,
        "components": components,
    }


def _for_operators(path: str, op: Doc) -> Doc:
    """`op` as served with --operator-login: an operator's token or session, unless it has its own
    security (the batches' gateway token, the control plane's operator token) or is public."""
    if op.get("security") is not None or not path.startswith(("/control/", "/api/v1/")):
        return op
    return {**op, "security": [*OPERATOR_AUTH, {"operatorSession": []}],
            "responses": {**op["responses"], "401": PROBLEM}}


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(document(request.app.get(OPERATOR_LOGIN, False)))


def add_openapi_route(app: web.Application) -> None:
    app.router.add_get("/openapi.json", get_openapi)
