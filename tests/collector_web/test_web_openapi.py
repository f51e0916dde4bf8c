"""/openapi.json documents exactly the routes the collector app serves, and is well formed."""

from __future__ import annotations

import re

from web_testkit import Web

from collector.app import create_app
from collector.store import Store

METHODS = {"get", "post", "put", "patch", "delete"}


def served_routes(store: Store, *, operator_login: bool = False) -> set[tuple[str, str]]:
    app = create_app(store, operator_login=operator_login)
    return {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
            if r.method != "HEAD" and r.resource is not None}


async def test_every_route_is_documented_and_every_documented_route_exists(web: Web) -> None:
    reply = await web.get("/openapi.json")
    assert reply.status == 200 and reply.content_type == "application/json"
    doc = reply.doc
    assert doc["openapi"].startswith("3.1")
    documented = {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}
    served = served_routes(web.store)
    assert served - documented == set(), f"routes missing from collector/openapi.py: {sorted(served - documented)}"
    assert documented - served == set(), f"documented but not served: {sorted(documented - served)}"
    # the test can see a missing route: the ingest route is in both sets
    assert ("post", "/api/v1/batches") in served & documented


async def test_the_document_is_consistent(web: Web) -> None:
    doc = (await web.get("/openapi.json")).doc
    refs = set(re.findall(r'"\$ref":\s*"#/components/(\w+)/(\w+)"', (await web.get("/openapi.json")).text))
    for kind, name in refs:
        assert name in doc["components"][kind], f"dangling $ref {kind}/{name}"
    for path, item in doc["paths"].items():
        wanted = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, f"{method.upper()} {path}: path parameters {declared} != {wanted}"
            assert op["responses"] and op["summary"], f"{method.upper()} {path}"
            for p in op.get("parameters", []):
                assert p["in"] != "path" or p["required"] is True
            for scheme in op.get("security", []):
                assert set(scheme) <= set(doc["components"]["securitySchemes"])


async def test_with_operator_login_the_login_routes_and_the_session_are_documented(store: Store) -> None:
    from collector.openapi import document

    doc = document(operator_login=True)
    documented = {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}
    assert documented == served_routes(store, operator_login=True)
    assert doc["components"]["securitySchemes"]["operatorSession"]["in"] == "cookie"
    summary = doc["paths"]["/control/api/summary"]["get"]
    assert {"operatorSession": []} in summary["security"] and "401" in summary["responses"]
    assert doc["paths"]["/api/v1/batches"]["post"]["security"] == [{"gatewayToken": []}]
    assert "security" not in doc["paths"]["/opendata/v1/communes/daily.json"]["get"]
    assert "security" not in document()["paths"]["/control/api/summary"]["get"]
