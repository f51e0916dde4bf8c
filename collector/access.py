"""Operators only (`serve --operator-login`): the control-centre page and the read API ask who is there.

Without the option the page and the read API need no login, for a collector on the operators'
own network. With it:

- `/control/...` (the page, its assets, its JSON and its live stream) and every `/api/v1/...`
  route need an operator: `Authorization: Bearer <operator token>` (`citygate-collector operator
  add`), or the session cookie the login form sets. A browser asking for the page without one
  is sent to `/control/login`; anything else gets a 401 problem document.
- `GET /control/login` is a form asking for the operator token; `POST /control/login` checks it
  and sets the cookie `citygate_operator` (HttpOnly, SameSite=Strict, Secure over HTTPS, 12 h),
  then goes back to the page asked for (a path of the control centre only: never elsewhere).
  `POST /control/logout` clears it.
- Open data, NGSI-LD, Open311 (residents), the OpenAPI document, /metrics and the gateways'
  batch endpoint (their own tokens) are as without the option.

The cookie holds the operator's token itself (it is what the operator typed): the store checks
it as it checks a bearer token, so revoking the operator revokes the session, and several
collector instances need no shared secret.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from citygate_wire.common import PATH
from collector.app import STORE
from collector.problem import Problem
from collector.tokens import hash_token

log = logging.getLogger("citygate.collector.access")

COOKIE = "citygate_operator"
SESSION_S = 12 * 3600
LOGIN, LOGOUT = "/control/login", "/control/logout"
HOME = "/control/"
_PROTECTED = ("/control/", "/api/v1/")
_OPEN = frozenset({LOGIN, LOGOUT, PATH})
MAX_TOKEN_LEN = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def protected(path: str) -> bool:
    return path.startswith(_PROTECTED) and path not in _OPEN


async def operator_name(request: web.Request) -> str | None:
    """The operator a request comes from (bearer token or session cookie), or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else request.cookies.get(COOKIE, "")
    if not token or len(token) > MAX_TOKEN_LEN:
        return None
    name: str | None = await request.app[STORE].operator_for_token(hash_token(token))
    return name


@web.middleware
async def operators_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not protected(request.path) or await operator_name(request) is not None:
        return await handler(request)
    if request.method in ("GET", "HEAD") and request.path == HOME:
        return _see_other(f"{LOGIN}?next={quote(request.path_qs, safe='')}")
    raise Problem(401, "unauthorized", "Unauthorized",
                  "the control centre is for operators: send Authorization: Bearer <operator token>, "
                  f"or log in at {LOGIN}", headers={"WWW-Authenticate": 'Bearer realm="citygate"'})


def add_login_routes(app: web.Application) -> None:
    app.router.add_get(LOGIN, login_form)
    app.router.add_post(LOGIN, login)
    app.router.add_post(LOGOUT, logout)


def safe_next(target: str | None) -> str:
    """Where to go after the login: a page of the control centre, never another site."""
    if not target or not target.startswith(HOME) or "//" in target or "\\" in target:
        return HOME
    return target


_FORM = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>citygate: connexion</title>
<style>
body {{ font: 16px system-ui, sans-serif; display: grid; place-items: center; min-height: 90vh; margin: 0;
       background: #f3f5f7; color: #1b2733; }}
form {{ background: #fff; padding: 2rem 2.5rem; border-radius: 8px; box-shadow: 0 2px 10px #0002; width: 22rem; }}
h1 {{ font-size: 1.3rem; margin: 0 0 1rem; }}
label {{ display: block; margin-bottom: .4rem; }}
input[type=password] {{ width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; }}
button {{ margin-top: 1rem; padding: .5rem 1.2rem; font: inherit; }}
p.error {{ color: #b00020; }}
</style></head>
<body><form method="post" action="{action}">
<h1>Centre de contrôle citygate</h1>
{error}<label for="token">Jeton d'opérateur</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">Se connecter</button>
</form></body></html>
"""


def _form(next_path: str, error: str = "", status: int = 200) -> web.Response:
    text = _FORM.format(action=LOGIN, next=html.escape(next_path),
                        error=f'<p class="error" role="alert">{html.escape(error)}</p>\n' if error else "")
    return web.Response(status=status, text=text, content_type="text/html",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


async def login_form(request: web.Request) -> web.Response:
    return _form(safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form.get("token", "")).strip()
    target = safe_next(str(form.get("next", "")) or None)
    name = None
    if token and len(token) <= MAX_TOKEN_LEN:
        name = await request.app[STORE].operator_for_token(hash_token(token))
    if name is None:
        log.warning("control centre: refused a login from %s", request.remote)
        return _form(target, "Jeton inconnu.", status=401)
    log.info("control centre: operator %s logged in from %s", name, request.remote)
    response = _see_other(target)
    response.set_cookie(COOKIE, token, max_age=SESSION_S, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)
    return response


async def logout(request: web.Request) -> web.Response:
    response = _see_other(LOGIN)
    response.del_cookie(COOKIE, path="/")
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
