"""Open data as an NGSI-LD API (ETSI GS CIM 009 v1.6, read-only): the Smart Data Models entities of
collector.ngsi_entities.

    GET /ngsi-ld/v1/entities?type=T[,U][&id=][&q=][&attrs=][&georel=&geometry=&coordinates=][&geoproperty=]
                            [&limit=20&offset=0][&count=true][&options=keyValues|concise|normalized]
    GET /ngsi-ld/v1/entities/{id}[?attrs=][&options=]
    GET /ngsi-ld/v1/types[?details=true]      GET /ngsi-ld/v1/types/{type}
    GET /ngsi-ld/v1/attributes[?details=true] GET /ngsi-ld/v1/attributes/{attr}

`Accept: application/json` (or none, or */*) gets application/json and the @context in a Link
header; `application/ld+json` gets the @context member; anything else 406. Errors are problem
details with the specification's types (https://uri.etsi.org/ngsi-ld/errors/BadRequestData ...).

Scale: a type is read from the store in keyset-paged chunks of ngsi_entities.CHUNK rows, built,
filtered by q/georel/id/attrs, and the read stops once the page (offset + limit) and one more
entity are found; `count=true` reads to the end. A geo-query reads only the gateways whose place
falls in its bounding box. Memory stays one chunk whatever the city's size; time grows with
offset + limit for a query that matches much, and with the whole type for a rare q match or a
count (34,000 lamps on SQLite, measured: first page 0.04 s, a full read 2.3 s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from collector.appkeys import STORE, TERRITORY
from collector.ngsi_entities import (
    ALL_MODELS_CONTEXT,
    ATTRIBUTES,
    CONTEXTS,
    CORE_CONTEXT,
    TYPES,
    Builder,
    Entity,
)
from collector.ngsi_query import GeoQuery, Query, QueryError, geo_matches, matches, parse_geo, parse_q
from collector.params import int_param, storable
from collector.problem import Problem, problem_response

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
DEFAULT_LIMIT = 20  # the specification's default page size
MAX_LIMIT = 1000
JSON, JSON_LD = "application/json", "application/ld+json"
CONTEXT_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
FORMS = ("normalized", "keyValues", "concise")


class NgsiProblem(Problem):
    """A problem whose type is one of the NGSI-LD error types (`slug`: BadRequestData, ResourceNotFound ...)."""

    def response(self) -> web.Response:
        body = {"type": ERRORS + self.slug, "title": self.title, "status": self.status, "detail": self.detail,
                **self.extra}
        return problem_response(self.status, body, self.headers)


def bad(parameter: str, detail: str) -> NgsiProblem:
    return NgsiProblem(400, "BadRequestData", "Bad request data", detail, parameter=parameter)


def not_found(detail: str) -> NgsiProblem:
    return NgsiProblem(404, "ResourceNotFound", "Resource not found", detail)


def add_ngsi_routes(app: web.Application) -> None:
    app.router.add_get("/ngsi-ld/v1/entities", get_entities)
    app.router.add_get("/ngsi-ld/v1/entities/{entity_id}", get_entity)
    app.router.add_get("/ngsi-ld/v1/types", get_types)
    app.router.add_get("/ngsi-ld/v1/types/{type}", get_type)
    app.router.add_get("/ngsi-ld/v1/attributes", get_attributes)
    app.router.add_get("/ngsi-ld/v1/attributes/{attr}", get_attribute)


# -- representations -------------------------------------------------------------------------

def media_type(request: web.Request) -> str:
    """application/json or application/ld+json, by the Accept header's preference; 406 for neither."""
    raw = request.headers.get("Accept", "").strip()
    if not raw:
        return JSON
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(raw.split(",")):
        name, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            key, _, value = p.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        chosen = {JSON_LD: JSON_LD, JSON: JSON, "*/*": JSON, "application/*": JSON}.get(name.lower())
        if chosen is not None and q > 0:
            ranked.append((-q, i, chosen))
    if not ranked:
        # the specification names no type for 406: InvalidRequest is its nearest (the request asks the impossible)
        raise NgsiProblem(406, "InvalidRequest", "Not acceptable",
                          f"Accept {raw[:100]!r}: this API answers application/json or application/ld+json")
    return min(ranked)[2]


def form(request: web.Request) -> str:
    """normalized, keyValues or concise, from `options` (and the 1.7 `format`)."""
    chosen = set()
    for name in ("options", "format"):
        for option in (request.query.get(name) or "").split(","):
            if not option:
                continue
            if option not in FORMS:
                raise bad(name, f"{name} {option!r}: one of {', '.join(FORMS)}")
            chosen.add(option)
    if len(chosen) > 1:
        raise bad("options", f"options: {' and '.join(sorted(chosen))} exclude each other")
    return chosen.pop() if chosen else "normalized"


def check_representation(request: web.Request) -> None:
    """Refuse a bad Accept or options before reading anything."""
    media_type(request)
    form(request)


def key_values(entity: Entity) -> Entity:
    """The simplified form: each attribute as its bare value (a typed literal as its plain value)."""
    out: Entity = {}
    for k, v in entity.items():
        if isinstance(v, dict) and v.get("type") in ("Property", "GeoProperty"):
            out[k] = _plain_literal(v["value"])
        elif isinstance(v, dict) and v.get("type") == "Relationship":
            out[k] = v["object"]
        else:
            out[k] = v
    return out


def _plain_literal(value: Any) -> Any:
    return value["@value"] if isinstance(value, dict) and "@value" in value else value


def concise(entity: Entity) -> Entity:
    """The concise form (NGSI-LD 1.6): no attribute `type`; an attribute holding nothing but its value
    is that value, unless it is a JSON object that is no GeoJSON geometry or typed literal."""
    out: Entity = {}
    for k, v in entity.items():
        if not isinstance(v, dict) or v.get("type") not in ("Property", "GeoProperty", "Relationship"):
            out[k] = v
            continue
        rest = {m: x for m, x in v.items() if m != "type"}
        value = rest.get("value")
        bare = list(rest) == ["value"] and (not isinstance(value, dict) or v["type"] == "GeoProperty"
                                            or "@value" in value)
        out[k] = value if bare else rest
    return out


def _context(kinds: Iterable[str]) -> str:
    distinct = set(kinds)
    return CONTEXTS[distinct.pop()] if len(distinct) == 1 else ALL_MODELS_CONTEXT


def render(request: web.Request, entities: list[Entity], kinds: Iterable[str], *, single: bool = False,
           headers: dict[str, str] | None = None) -> web.Response:
    media, shape = media_type(request), form(request)
    convert = {"keyValues": key_values, "concise": concise}.get(shape)
    out = [convert(e) if convert else dict(e) for e in entities]
    headers = dict(headers or {})
    if media == JSON_LD:
        for e in out:
            e["@context"] = [CONTEXTS[e["type"]], CORE_CONTEXT]
    else:
        headers["Link"] = ", ".join(filter(None, [f"<{_context(kinds)}>; {CONTEXT_REL}", headers.get("Link")]))
    body = out[0] if single else out
    return web.Response(body=orjson.dumps(body), content_type=media, headers=headers)


# -- queries -------------------------------------------------------------------------------------

def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    try:
        return int_param(request, name, default, lo, hi)
    except Problem as exc:
        raise bad(name, exc.detail) from None


def _list(request: web.Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    items = [x.strip() for x in raw.split(",")]
    if not all(items):
        raise bad(name, f"{name} {raw[:60]!r}: a comma-separated list without empty items")
    return items


def _boolean(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise bad(name, f"{name} is true or false, got {raw[:40]!r}")
    return raw == "true"


def _q(request: web.Request) -> Query | None:
    raw = request.query.get("q")
    try:
        return None if raw is None else parse_q(raw)
    except QueryError as exc:
        raise bad("q", str(exc)) from None


def _geo(request: web.Request) -> GeoQuery | None:
    g = request.query
    try:
        return parse_geo(g.get("georel"), g.get("geometry"), g.get("coordinates"), g.get("geoproperty"))
    except QueryError as exc:
        raise bad("georel", str(exc)) from None


def _select(entity: Entity, attrs: list[str] | None) -> Entity | None:
    """The entity cut to `attrs`; None when it has none of them (the specification leaves it out)."""
    if attrs is None:
        return entity
    kept = {k: v for k, v in entity.items() if k in attrs}
    return {"id": entity["id"], "type": entity["type"], **kept} if kept else None


async def _chain(builder: Builder, kinds: list[str], geo: GeoQuery | None) -> AsyncIterator[Entity]:
    box = geo.bbox() if geo is not None and geo.geoproperty == "location" else None
    gateways = await builder.gateways_in(box) if box is not None else None
    for kind in kinds:
        async for e in builder.stream(kind, gateways):
            yield e


async def get_entities(request: web.Request) -> web.Response:
    kinds = _list(request, "type")
    ids = _list(request, "id")
    attrs = _list(request, "attrs")
    query, geo = _q(request), _geo(request)
    if kinds is None and ids is None and attrs is None and query is None and geo is None:
        raise bad("type", "a query names at least one of type, id, attrs, q or a geo-query")
    count = _boolean(request, "count")
    limit = _int(request, "limit", DEFAULT_LIMIT, 0 if count else 1, MAX_LIMIT)
    offset = _int(request, "offset", 0, 0, 2**31)
    check_representation(request)
    wanted = [k for k in TYPES if kinds is None or k in kinds]  # an unknown type matches no entity
    if ids is not None:
        wanted = [k for k in wanted if any(i.startswith(f"urn:ngsi-ld:{k}:") for i in ids)]
    builder = Builder(request.app[STORE], request.app[TERRITORY])
    page: list[Entity] = []
    seen, more = 0, False
    async for entity in _chain(builder, wanted, geo):
        if ids is not None and entity["id"] not in ids:
            continue
        if (query is not None and not matches(query, entity)) or (geo is not None and not geo_matches(geo, entity)):
            continue
        selected = _select(entity, attrs)
        if selected is None:
            continue
        if seen >= offset + limit:
            more = True
            if not count:
                break
        elif seen >= offset:
            page.append(selected)
        seen += 1
    headers = {}
    if count:
        headers["NGSILD-Results-Count"] = str(seen)
    links = []
    if more and limit > 0:  # a count-only page (limit=0) has no next: it would be itself
        links.append(f'<{request.rel_url.update_query(offset=offset + limit, limit=limit)}>; rel="next"')
    if offset > 0 and limit > 0:
        links.append(f'<{request.rel_url.update_query(offset=max(0, offset - limit), limit=limit)}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return render(request, page, [e["type"] for e in page] or wanted, headers=headers)


def parse_entity_id(raw: str) -> tuple[str, str, str | None]:
    """(type, gateway, device or group name) of one of our ids; 404 for an id no entity of ours can have."""
    if ":" not in raw or not raw.split(":", 1)[0].isalpha():
        raise bad("entity_id", f"{raw[:100]!r} is not a URI: an entity id is urn:ngsi-ld:<Type>:...")
    parts = raw.split(":")
    if len(parts) not in (4, 5) or parts[:2] != ["urn", "ngsi-ld"] or parts[2] not in CONTEXTS:
        raise not_found(f"no entity {raw[:200]!r}")
    device = unquote(parts[4]) if len(parts) == 5 else None
    if device is not None and not storable(device):
        raise bad("entity_id", f"entity_id {raw[:100]!r}: the device name holds a NUL")
    return parts[2], parts[3], device


async def get_entity(request: web.Request) -> web.Response:
    raw = request.match_info["entity_id"]
    attrs = _list(request, "attrs")
    check_representation(request)
    kind, gateway, device = parse_entity_id(raw)
    builder = Builder(request.app[STORE], request.app[TERRITORY])
    found = await builder.by_id(kind, gateway, device)
    if found is None:
        raise not_found(f"no entity {raw[:200]!r}")
    selected = _select(found, attrs)
    if selected is None:
        raise not_found(f"entity {raw[:200]!r} has none of the attributes {', '.join(attrs or [])}")
    return render(request, [selected], [kind], single=True)


# -- types and attributes --------------------------------------------------------------------------

def attribute_type(name: str) -> str:
    return "GeoProperty" if name == "location" else "Relationship" if name.startswith("ref") else "Property"


async def _existing_types(builder: Builder) -> list[str]:
    out = []
    for kind in TYPES:
        async for _ in builder.stream(kind):
            out.append(kind)
            break
    return out


def _plain_json(request: web.Request, doc: Any) -> web.Response:
    """Types and attributes: their documents carry the core context only."""
    if media_type(request) == JSON_LD:
        doc = [{**d, "@context": CORE_CONTEXT} for d in doc] if isinstance(doc, list) else {**doc,
                                                                                           "@context": CORE_CONTEXT}
        return web.Response(body=orjson.dumps(doc), content_type=JSON_LD)
    return web.Response(body=orjson.dumps(doc), content_type=JSON,
                        headers={"Link": f"<{CORE_CONTEXT}>; {CONTEXT_REL}"})


async def get_types(request: web.Request) -> web.Response:
    details = _boolean(request, "details")
    media_type(request)
    kinds = await _existing_types(Builder(request.app[STORE], request.app[TERRITORY]))
    if details:
        return _plain_json(request, [{"id": k, "type": "EntityType", "typeName": k,
                                      "attributeNames": list(ATTRIBUTES[k])} for k in kinds])
    return _plain_json(request, {"id": "urn:ngsi-ld:EntityTypeList:citygate", "type": "EntityTypeList",
                                 "typeList": kinds})


async def get_type(request: web.Request) -> web.Response:
    kind = request.match_info["type"]
    media_type(request)
    if kind not in TYPES:
        raise not_found(f"no entity of type {kind[:100]!r}")
    count, names = 0, set[str]()
    async for e in Builder(request.app[STORE], request.app[TERRITORY]).stream(kind):
        count += 1
        names.update(k for k in e if k not in ("id", "type"))
    if not count:
        raise not_found(f"no entity of type {kind!r} yet")
    return _plain_json(request, {
        "id": kind, "type": "EntityTypeInfo", "typeName": kind, "entityCount": count,
        "attributeDetails": [{"id": n, "type": "Attribute", "attributeName": n, "attributeTypes": [attribute_type(n)]}
                             for n in sorted(names)]})


async def _attributes(request: web.Request) -> dict[str, list[str]]:
    """attribute -> the existing types that carry it (their declared attributes: no full read)."""
    out: dict[str, list[str]] = {}
    for kind in await _existing_types(Builder(request.app[STORE], request.app[TERRITORY])):
        for name in ATTRIBUTES[kind]:
            out.setdefault(name, []).append(kind)
    return dict(sorted(out.items()))


def _attribute_doc(name: str, kinds: list[str]) -> dict[str, Any]:
    return {"id": name, "type": "Attribute", "attributeName": name, "attributeTypes": [attribute_type(name)],
            "typeNames": kinds}


async def get_attributes(request: web.Request) -> web.Response:
    details = _boolean(request, "details")
    media_type(request)
    found = await _attributes(request)
    if details:
        return _plain_json(request, [_attribute_doc(n, k) for n, k in found.items()])
    return _plain_json(request, {"id": "urn:ngsi-ld:AttributeList:citygate", "type": "AttributeList",
                                 "attributeList": list(found)})


async def get_attribute(request: web.Request) -> web.Response:
    name = request.match_info["attr"]
    media_type(request)
    found = await _attributes(request)
    if name not in found:
        raise not_found(f"no entity has an attribute {name[:100]!r}")
    return _plain_json(request, _attribute_doc(name, found[name]))
