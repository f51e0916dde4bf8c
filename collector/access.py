"""Operators only (`serve --operator-login`): the control-centre page and the read API ask who is there.

Without the option the page and the read API need no login, for a collector on the operators'
own network. With it:

- `/control/...` (the page, its assets, its JSON and its live stream) and every `/api/v1/...`
  route need an operator: `Authorization: Bearer <operator token>` (`citygate-collector operator
  add`), or the session cookie the login form sets. A browser asking for the page without one
  is sent to `/control/login`; anything else gets a 401 problem document.
- `GET /control/login` is a form asking for the operator token; `POST /control/login` checks it,
  opens a session and sets the cookie `citygate_operator` (HttpOnly, SameSite=Strict, 12 h, Secure
  when the request came over TLS), then goes back to the page asked for (a path of the control
  centre only: never elsewhere). `POST /control/logout` ends the session on the server.
- Open data, NGSI-LD, Open311 (residents), the OpenAPI document, /metrics and the gateways'
  batch endpoint (their own tokens) are as without the option.

Roles (with or without the option): some data is for operators holding a role only, whatever
else they may read. A feature declares the names (gateways, vehicles) whose data needs a role
(`add_restricted`: collector.vehicles makes a police vehicle's gateway and name need `police`);
`role_guard` answers 404, as for a name that does not exist, to every request of any route that
names one of them, in its path or its query, unless the operator holds the role. Routes that list
across names must leave the restricted ones out themselves (collector.vehicles does);
tests/vehicles/test_vehicle_privacy.py calls every route of the app to catch one that does not.

Ranks (with or without the option): viewer, operator, supervisor, each holding the rights of the
ones before it (collector.credentials.LEVELS; an operator holding none is an `operator`).
`require_role(request, role)` is every route's check: reads need a viewer, lighting commands and
the handling of alarms and reports an operator, traffic commands a supervisor; 401 if nobody is
known, 403 `forbidden-role` if the operator's rank is too low. `role_floor` (every app) applies
the least of it to every route of `/api/v1/` and `/control/`, so that none is left unchecked:
a read needs a viewer, anything else an operator; routes ask for more themselves. Without
`--operator-login` reads stay open to anyone as before (no rank is asked of an anonymous read),
while every write still needs an operator's token, with its rank: the page, without a login,
is read-only. A write authenticated by the session cookie must come from this site (`Origin`).

The cookie holds a random session id, never the operator's token: a stolen cookie is worth 12 h
at most and ends at logout, and the token is typed once. The store keeps the id's SHA-256 with
its expiry, so every collector instance on the store knows every session, and removing or
rotating the operator ends them all at once.

Behind a reverse proxy that terminates TLS, `serve --trusted-proxy ADDRESS` names the proxy: only
from those addresses are `X-Forwarded-Proto` (is it TLS: the cookie's Secure), `X-Forwarded-Host`
(the Origin check) and `X-Forwarded-For` (who failed to log in) believed.

Login and logout refuse a POST whose `Origin` is another site (403): no page elsewhere can log a
browser in or out. A browser sends `Origin` with every POST; a client that sends none (curl) is
not a cross-site request and is let through. After LOGIN_FAILURES failed logins from one address
within LOGIN_WINDOW_S, the next logins from it get 429 with `Retry-After` until the oldest failure
leaves the window: 5 guesses per 15 minutes. Counted per collector instance, in memory.
"""

from __future__ import annotations

import html
import ipaddress
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import quote

from aiohttp import web

from citygate_wire.common import PATH, now_ms
from collector.appkeys import OPERATOR_LOGIN, STORE
from collector.credentials import DEFAULT_LEVEL, LEVELS
from collector.i18n import LANGS, add_messages, request_lang, t
from collector.params import bearer_owner, bearer_token, unauthorized
from collector.problem import Handler, Problem
from collector.tokens import hash_token

log = logging.getLogger("citygate.collector.access")

COOKIE = "citygate_operator"
SESSION_S = 12 * 3600
LOGIN, LOGOUT = "/control/login", "/control/logout"
HOME = "/control/"
_PROTECTED = ("/control/", "/api/v1/")
_OPEN = frozenset({LOGIN, LOGOUT, PATH})
MAX_TOKEN_LEN = 200
CONTROL_REALM = "citygate-control"
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 15 * 60
#: addresses whose failures are remembered; past it the oldest are forgotten (memory stays bounded)
MAX_TRACKED = 10_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple[Network, ...])


def parse_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """`--trusted-proxy` values (addresses or networks, 10.0.0.0/8); ValueError names a bad one."""
    nets = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is no IP address or network") from None
    return tuple(nets)


class FailedLogins:
    """Failed logins per source address in a sliding window (one event loop: no lock)."""

    def __init__(self, limit: int = LOGIN_FAILURES, window_s: float = LOGIN_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str, now: float) -> float | None:
        """Seconds until `address` may try again, or None if it may now."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures[0] + self.window_s - now if len(failures) >= self.limit else None

    def failed(self, address: str, now: float) -> None:
        failures = self._failures.pop(address, None) or deque(maxlen=self.limit)
        failures.append(now)
        self._failures[address] = failures  # re-inserted: the dict's order is the age of the last failure
        if len(self._failures) > MAX_TRACKED:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


LOGIN_LIMITER = web.AppKey("login_limiter", FailedLogins)

#: names (of gateways, vehicles ...) whose data needs a role: name -> role; several features may add theirs
RestrictedNames = Callable[[web.Application], Awaitable[Mapping[str, str]]]
RESTRICTED = web.AppKey("restricted_names", list[RestrictedNames])
_ROLES = web.RequestKey("operator_roles", frozenset)  # the operator's roles, looked up once a request
_NAME = web.RequestKey("operator_name", tuple)  # (the operator's name or None,), looked up once a request
#: what require_role returns for an anonymous read of a collector without --operator-login
ANONYMOUS = "anonymous"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def _trusted(request: web.Request, address: str | None) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in net for net in request.app.get(TRUSTED_PROXIES, ()))


def _forwarded(request: web.Request, header: str) -> str | None:
    """The last value a trusted proxy set in `header` (the proxy appends its own), else None."""
    if not _trusted(request, request.remote):
        return None
    values = [v.strip() for v in ",".join(request.headers.getall(header, [])).split(",") if v.strip()]
    return values[-1] if values else None


def client_address(request: web.Request) -> str:
    """The address a request comes from: behind trusted proxies, the last hop of X-Forwarded-For
    that is not one of them (hops further left are whatever the client chose to write)."""
    remote = request.remote or "unknown"
    if not _trusted(request, remote):
        return remote
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(request, hop):
            return hop if _ip(hop) is not None else remote
    return remote


def over_tls(request: web.Request) -> bool:
    return request.secure or (_forwarded(request, "X-Forwarded-Proto") or "").lower() == "https"


def site_origin(request: web.Request) -> str:
    """This site as its clients reach it (behind trusted proxies, as they forwarded it): scheme://host."""
    host = _forwarded(request, "X-Forwarded-Host") or request.host
    return f"{'https' if over_tls(request) else 'http'}://{host}"


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        return
    own = site_origin(request)
    if origin.lower() != own.lower():
        log.warning("control centre: refused a %s from %s with Origin %r", request.path, client_address(request),
                    origin[:100])
        raise Problem(403, "foreign-origin", "Forbidden",
                      f"{request.path} takes a form of this site only, not one from {origin[:100]!r}")


def protected(path: str) -> bool:
    return path.startswith(_PROTECTED) and path not in _OPEN


async def operator_name(request: web.Request) -> str | None:
    """The operator a request comes from (bearer token or session cookie), or None."""
    if _NAME not in request:
        request[_NAME] = (await _lookup_operator(request),)
    name: str | None = request[_NAME][0]
    return name


async def _lookup_operator(request: web.Request) -> str | None:
    store = request.app[STORE]
    token = bearer_token(request)
    if token is not None:
        if not token or len(token) > MAX_TOKEN_LEN:
            return None
        found: str | None = await store.operator_for_token(hash_token(token))
        return found
    session = request.cookies.get(COOKIE, "")
    if not session or len(session) > MAX_TOKEN_LEN:
        return None
    return await store.session_operator(hash_token(session), now_ms())


async def operator(request: web.Request) -> str:
    """The operator owning the request's bearer token (the control plane's API), or Problem 401."""
    return await bearer_owner(request, CONTROL_REALM, "operator", request.app[STORE].operator_for_token)


async def operator_roles(request: web.Request) -> frozenset[str]:
    """The roles of the operator a request comes from (bearer token or session cookie); none for anyone else."""
    if _ROLES not in request:
        name = await operator_name(request)
        request[_ROLES] = frozenset() if name is None else await request.app[STORE].operator_roles(name)
    roles: frozenset[str] = request[_ROLES]
    return roles


async def has_role(request: web.Request, role: str) -> bool:
    return role in await operator_roles(request)


def rank(roles: frozenset[str]) -> str:
    """The highest of LEVELS among `roles`; DEFAULT_LEVEL if it holds none."""
    held = [level for level in LEVELS if level in roles]
    return held[-1] if held else DEFAULT_LEVEL


def holds(roles: frozenset[str], role: str) -> bool:
    """Whether `roles` grant `role`: a rank by the hierarchy, a feature role (police) by name."""
    if role in LEVELS:
        return LEVELS.index(rank(roles)) >= LEVELS.index(role)
    return role in roles


def effective_roles(roles: frozenset[str]) -> list[str]:
    """Every role `roles` grant, the ranks below the operator's own included (what the page is told)."""
    level = rank(roles)
    return [*LEVELS[:LEVELS.index(level) + 1], *sorted(roles.difference(LEVELS))]


async def require_role(request: web.Request, role: str, *, identified: bool = False) -> str:
    """The name of the operator the request comes from, if it holds `role` (viewer, operator,
    supervisor: supervisor holds operator holds viewer; or a feature role such as police, by name).
    Problem 401 if nobody is known (a bearer token nobody holds, no login), 403 `forbidden-role` if
    the operator lacks it. Without --operator-login a read (`viewer`) is open to anyone, as before:
    an anonymous one gets ANONYMOUS, unless `identified` (the control plane's routes, which always
    needed an operator's token). A write authenticated by the session cookie must come from this
    site (403 `foreign-origin` otherwise)."""
    name = await operator_name(request)
    if name is None:
        if (not identified and bearer_token(request) is None and role == LEVELS[0]
                and not request.app.get(OPERATOR_LOGIN, False)):
            return ANONYMOUS
        raise unauthorized(CONTROL_REALM, f"{request.path} is for operators holding the {role} role: send "
                           "Authorization: Bearer <operator token>"
                           + (f", or log in at {LOGIN}" if request.app.get(OPERATOR_LOGIN, False) else ""))
    roles = await operator_roles(request)
    if not holds(roles, role):
        raise Problem(403, "forbidden-role", "Forbidden",
                      f"{request.method} {request.path} needs the {role} role; operator {name} is {rank(roles)}",
                      needed=role, rank=rank(roles))
    if request.method not in _READS and bearer_token(request) is None:
        _check_origin(request)  # the cookie came with it: only this site's page may use it
    return name


def needed_rank(request: web.Request) -> str | None:
    """The least rank a request needs (role_floor): None for a route open to all (outside the
    operators' prefixes, the gateways' batches, login and logout)."""
    if not protected(request.path):
        return None
    return LEVELS[0] if request.method in _READS else LEVELS[1]


@web.middleware
async def role_floor(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route of the operators' prefixes checked at least this much (see the module)."""
    if request.match_info.http_exception is not None:
        # no route for this method and path: the router's 404 or 405 says so, whoever asks (the
        # OpenAPI document, public, lists the routes anyway)
        return await handler(request)
    needed = needed_rank(request)
    # without --operator-login reads are open as before, whatever Authorization header comes with them
    if needed is not None and (needed != LEVELS[0] or request.app.get(OPERATOR_LOGIN, False)):
        await require_role(request, needed)
    return await handler(request)


def install_role_floor(app: web.Application) -> None:
    """Check every route of the app for a rank (role_floor), once; collector.control's routes install it."""
    if role_floor not in app.middlewares:
        app.middlewares.append(role_floor)


def add_restricted(app: web.Application, names: RestrictedNames) -> None:
    """Make the data of the names `names(app)` returns readable only with their role (role_guard)."""
    if RESTRICTED not in app:
        app[RESTRICTED] = []
        app.middlewares.append(role_guard)
    app[RESTRICTED].append(names)


def _mentioned(request: web.Request) -> set[str]:
    """Every name a request may be about: path parameters and query values, and their parts (an NGSI-LD
    id `urn:ngsi-ld:Device:GW:DEVICE` names its gateway)."""
    values = [*request.match_info.values(), *request.query.values()]
    found = set(values)
    for v in values:
        found.update(p for p in v.replace("/", ":").replace(",", ":").split(":") if p)
    return found


@web.middleware
async def role_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    mentioned = _mentioned(request)
    if mentioned:
        for names in request.app.get(RESTRICTED, []):
            restricted = await names(request.app)
            needed = {restricted[n] for n in mentioned if n in restricted}
            if needed and not needed <= await operator_roles(request):
                raise Problem(404, "not-found", "Not Found", f"{request.path}: no such resource")
    return await handler(request)


@web.middleware
async def operators_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not protected(request.path) or await operator_name(request) is not None:
        return await handler(request)
    if request.method in ("GET", "HEAD") and request.path == HOME:
        return _see_other(f"{LOGIN}?next={quote(request.path_qs, safe='')}")
    raise unauthorized("citygate", "the control centre is for operators: send Authorization: Bearer <operator token>, "
                       f"or log in at {LOGIN}")


def add_login_routes(app: web.Application) -> None:
    app[LOGIN_LIMITER] = FailedLogins()
    app.router.add_get(LOGIN, login_form)
    app.router.add_post(LOGIN, login)
    app.router.add_post(LOGOUT, logout)


def safe_next(target: str | None) -> str:
    """Where to go after the login: a page of the control centre, never another site, and nothing but
    visible ASCII (a CR/LF would split the Location header: the server would drop the connection)."""
    if (not target or not target.startswith(HOME) or "//" in target or "\\" in target
            or not all("!" <= c <= "~" for c in target)):
        return HOME
    return target


_FORM = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title><link rel="icon" href="data:,">
<style>
body {{ font: 16px system-ui, sans-serif; display: grid; place-items: center; min-height: 90vh; margin: 0;
       background: #f3f5f7; color: #1b2733; }}
form {{ background: #fff; padding: 2rem 2.5rem; border-radius: 8px; box-shadow: 0 2px 10px #0002; width: min(22rem, 92vw);
        box-sizing: border-box; }}
h1 {{ font-size: 1.3rem; margin: 0 0 1rem; }}
label {{ display: block; margin-bottom: .4rem; }}
input[type=password] {{ width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; min-height: 44px; }}
button {{ margin-top: 1rem; padding: .5rem 1.2rem; font: inherit; min-height: 44px; }}
p.error {{ color: #b00020; }}
</style></head>
<body><form method="post" action="{action}">
<h1>{heading}</h1>
{error}<label for="token">{label}</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">{button}</button>
</form></body></html>
"""
#: the language the page chose (shell.js sets it at each switch): the form speaks it too
LANG_COOKIE = "cg_lang"
add_messages({
    "login.title": {"fr": "citygate : connexion", "en": "citygate: log in"},
    "login.heading": {"fr": "Centre de contrôle citygate", "en": "citygate control centre"},
    "login.label": {"fr": "Jeton d'opérateur", "en": "Operator token"},
    "login.button": {"fr": "Se connecter", "en": "Log in"},
    "login.unknown": {"fr": "Jeton inconnu.", "en": "Unknown token."},
})


def form_lang(request: web.Request) -> str:
    """`?lang=`, else the page's choice (its cookie), else Accept-Language, else French."""
    asked = request.query.get("lang", "").strip().lower()
    chosen = request.cookies.get(LANG_COOKIE, "")
    return asked if asked in LANGS else chosen if chosen in LANGS else request_lang(request)


def _form(request: web.Request, next_path: str, error: str = "", status: int = 200) -> web.Response:
    lang = form_lang(request)
    text = _FORM.format(action=LOGIN, next=html.escape(next_path), lang=lang, title=t("login.title", lang),
                        heading=t("login.heading", lang), label=t("login.label", lang), button=t("login.button", lang),
                        error=f'<p class="error" role="alert">{html.escape(t(error, lang))}</p>\n' if error else "")
    return web.Response(status=status, text=text, content_type="text/html",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


async def login_form(request: web.Request) -> web.Response:
    return _form(request, safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.Response:
    _check_origin(request)
    source = client_address(request)
    limiter = request.app[LOGIN_LIMITER]
    wait = limiter.retry_after(source, time.monotonic())
    if wait is not None:
        raise Problem(429, "too-many-logins", "Too Many Requests",
                      f"{limiter.limit} failed logins from {source}: try again in {wait:.0f} s",
                      headers={"Retry-After": str(max(1, round(wait)))})
    form = await request.post()
    token = str(form.get("token", "")).strip()
    target = safe_next(str(form.get("next", "")) or None)
    store = request.app[STORE]
    name = None
    if token and len(token) <= MAX_TOKEN_LEN:
        name = await store.operator_for_token(hash_token(token))
    session = secrets.token_urlsafe(32)
    now = now_ms()
    if name is None or not await store.open_session(name, hash_token(session), now, now + SESSION_S * 1000, source):
        limiter.failed(source, time.monotonic())
        log.warning("control centre: refused a login from %s", source)
        return _form(request, target, "login.unknown", status=401)
    limiter.succeeded(source)
    log.info("control centre: operator %s logged in from %s", name, source)
    response = _see_other(target)
    response.set_cookie(COOKIE, session, max_age=SESSION_S, path="/", httponly=True, samesite="Strict",
                        secure=over_tls(request))
    return response


async def logout(request: web.Request) -> web.Response:
    _check_origin(request)
    session = request.cookies.get(COOKIE, "")
    if session and len(session) <= MAX_TOKEN_LEN:
        store = request.app[STORE]
        name = await store.close_session(hash_token(session))
        if name is not None:
            source = client_address(request)
            await store.audit(f"operator:{name}", "operator.logout", name, f"from {source}", now_ms())
            log.info("control centre: operator %s logged out from %s", name, source)
    response = _see_other(LOGIN)
    response.del_cookie(COOKIE, path="/", secure=over_tls(request), httponly=True, samesite="Strict")
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
