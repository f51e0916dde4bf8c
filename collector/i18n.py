"""What a resident reads, in French by default and in English on request: a small message catalog.

A message is a key with one template per language (`str.format` fields). Features add their
own messages at import (`add_messages`, keys prefixed with the feature: "open311.", "report.");
a request's language is `?lang=fr|en`, else the first supported one of its Accept-Language
(RFC 9110 q-values), else French. `Msg` is a message not yet rendered: an error raised deep in a
handler carries one, and the response renders it in the request's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the store and the CLI import this module, never the web app: aiohttp is the app's
    from aiohttp import web

LANGS = ("fr", "en")
DEFAULT_LANG = "fr"
_CATALOG: dict[str, Mapping[str, str]] = {}


def add_messages(messages: Mapping[str, Mapping[str, str]]) -> None:
    """Add messages: key -> {"fr": template, "en": template}. Every language is required; a key
    already added with other templates is a mistake (two features chose the same key)."""
    for key, templates in messages.items():
        missing = [lang for lang in LANGS if lang not in templates]
        if missing:
            raise ValueError(f"message {key!r} has no {', '.join(missing)} template")
        if key in _CATALOG and _CATALOG[key] != templates:
            raise ValueError(f"message {key!r} is already defined otherwise")
        _CATALOG[key] = dict(templates)


def t(key: str, lang: str, /, **values: Any) -> str:
    """The message `key` in `lang` (French if `lang` is not one of LANGS), its fields filled."""
    templates = _CATALOG[key]
    return templates.get(lang, templates[DEFAULT_LANG]).format(**values)


def has(key: str) -> bool:
    return key in _CATALOG


@dataclass(frozen=True, slots=True)
class Msg:
    """A message to render later, in the language of whoever reads it."""

    key: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        return t(self.key, lang, **self.values)


def msg(key: str, /, **values: Any) -> Msg:
    if key not in _CATALOG:
        raise KeyError(f"no message {key!r}")  # at the raise site, not later when rendering an error
    return Msg(key, values)


def accept_language(header: str | None) -> str | None:
    """The supported language an Accept-Language header prefers (q-values honoured), or None."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for order, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang == "*":
            lang = DEFAULT_LANG
        if lang in LANGS and q > 0 and (best is None or (q, -order) > (best[0], -best[1])):
            best = (q, order, lang)
    return None if best is None else best[2]


def request_lang(request: web.Request) -> str:
    """`?lang=` when it names a supported language, else Accept-Language, else French."""
    asked = request.query.get("lang", "").strip().lower()
    if asked in LANGS:
        return asked
    return accept_language(request.headers.get("Accept-Language")) or DEFAULT_LANG
