"""The NGSI-LD query language (`q=`) and geo-queries (`georel=`), ETSI GS CIM 009 v1.6 §4.9 and §4.10:
pure parsing and matching over normalized entities, no I/O.

    q        = or-term; or-term = and-term *("|" and-term); and-term = factor *(";" factor)
    factor   = "(" or-term ")" / attribute [operator value]
    operator = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "!~="
    value    = number / "quoted string" / date-time / date / time / true / false / URI,
               a comma list of those (== and != only) or a range `low..high` (== and != only)

A bare attribute matches an entity that has it. `a.b` reaches the sub-attribute (or `observedAt`,
`unitCode`) b of attribute a, `a[k]` the member k of a's JSON value. ";" binds tighter than "|"
(the specification's precedence). An array value matches when one of its members does.
Date-times compare as instants, whatever their offset.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import orjson


class QueryError(ValueError):
    """A q or geo-query that is not the specification's grammar: what and where."""


# -- q ---------------------------------------------------------------------------------------

Scalar = float | str | bool | datetime | date | time
MAX_Q = 4096
_NAME = r"[A-Za-z_@][A-Za-z0-9_@:\-]*"
_ATTR = re.compile(rf"{_NAME}(?:\.{_NAME}|\[{_NAME}\])*")
_PART = re.compile(rf"\.({_NAME})|\[({_NAME})\]")
_OPS = ("!~=", "~=", "==", "!=", ">=", "<=", ">", "<")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?Z?$")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\"'()|;,]+$")


@dataclass(frozen=True, slots=True)
class Range:
    low: Scalar
    high: Scalar


@dataclass(frozen=True, slots=True)
class Term:
    path: tuple[str, ...]  # attribute, then sub-attributes ("." ) or value members ("[k]", prefixed "[")
    op: str | None = None
    values: tuple[Scalar, ...] = ()
    range: Range | None = None
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # ";" (and) or "|" (or)
    items: tuple[Query, ...]


Query = Term | Logic


def parse_q(text: str) -> Query:
    """The parsed query, or QueryError."""
    if not text:
        raise QueryError("q is empty")
    if len(text) > MAX_Q:
        raise QueryError(f"q is {len(text)} characters long: at most {MAX_Q}")
    parser = _Parser(text)
    query = parser.or_term()
    if parser.pos != len(text):
        raise QueryError(f"q: unexpected {text[parser.pos:parser.pos + 20]!r} at {parser.pos}")
    return query


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def or_term(self) -> Query:
        items = [self.and_term()]
        while self._take("|"):
            items.append(self.and_term())
        return items[0] if len(items) == 1 else Logic("|", tuple(items))

    def and_term(self) -> Query:
        items = [self.factor()]
        while self._take(";"):
            items.append(self.factor())
        return items[0] if len(items) == 1 else Logic(";", tuple(items))

    def factor(self) -> Query:
        if self._take("("):
            self.depth += 1
            if self.depth > 32:
                raise QueryError("q: parentheses nested deeper than 32")
            inner = self.or_term()
            if not self._take(")"):
                raise QueryError(f"q: ')' expected at {self.pos}")
            self.depth -= 1
            return inner
        m = _ATTR.match(self.text, self.pos)
        if m is None:
            raise QueryError(f"q: an attribute name expected at {self.pos}")
        self.pos = m.end()
        path = _path(m.group())
        op = next((o for o in _OPS if self.text.startswith(o, self.pos)), None)
        if op is None:
            return Term(path)
        self.pos += len(op)
        raw = self._value_text()
        if op in ("~=", "!~="):
            try:
                return Term(path, op, pattern=re.compile(_unquote(raw)))
            except re.error as exc:
                raise QueryError(f"q: {raw!r} is not a regular expression: {exc}") from None
        if op in ("==", "!=") and ".." in raw and not raw.startswith('"'):
            low, _, high = raw.partition("..")
            return Term(path, op, range=Range(_value(low), _value(high)))
        values = tuple(_value(v) for v in _split_list(raw))
        if len(values) > 1 and op not in ("==", "!="):
            raise QueryError(f"q: a list of values goes with == or != only, not {op}")
        return Term(path, op, values)

    def _take(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def _value_text(self) -> str:
        """The raw value up to the next `;`, `|` or `)` outside quotes."""
        start, quoted, i = self.pos, False, self.pos
        while i < len(self.text):
            c = self.text[i]
            if c == "\\" and quoted:
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif not quoted and c in ";|)":
                break
            i += 1
        if quoted:
            raise QueryError(f"q: unterminated string at {start}")
        self.pos = i
        if i == start:
            raise QueryError(f"q: a value expected at {start}")
        return self.text[start:i]


def _path(attr: str) -> tuple[str, ...]:
    head = re.match(_NAME, attr)
    assert head is not None  # _ATTR matched
    parts = [head.group()]
    for m in _PART.finditer(attr, head.end()):
        parts.append(m.group(1) if m.group(1) is not None else "[" + m.group(2))
    return tuple(parts)


def _split_list(raw: str) -> list[str]:
    out, start, quoted = [], 0, False
    for i, c in enumerate(raw):
        if c == '"' and (i == 0 or raw[i - 1] != "\\"):
            quoted = not quoted
        elif c == "," and not quoted:
            out.append(raw[start:i])
            start = i + 1
    out.append(raw[start:])
    return out


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return raw


def _value(raw: str) -> Scalar:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return _unquote(raw)
    if raw in ("true", "false"):
        return raw == "true"
    if _NUMBER.match(raw):
        number = float(raw)
        if not math.isfinite(number):
            raise QueryError(f"q: {raw!r} is out of range")
        return number
    try:
        if _DATETIME.match(raw):
            return datetime.fromisoformat(raw)
        if _DATE.match(raw):
            return date.fromisoformat(raw)
        if _TIME.match(raw):
            return time.fromisoformat(raw.removesuffix("Z"))
    except ValueError:
        raise QueryError(f"q: {raw!r} is no valid date or time") from None
    if _URI.match(raw):
        return raw
    raise QueryError(f"q: {raw!r} is neither a number, a quoted string, a date, true/false nor a URI")


def matches(query: Query, entity: dict[str, Any]) -> bool:
    """Whether the normalized `entity` satisfies `query`."""
    if isinstance(query, Logic):
        if query.op == ";":
            return all(matches(q, entity) for q in query.items)
        return any(matches(q, entity) for q in query.items)
    targets = _targets(entity, query.path)
    if query.op is None:
        return bool(targets)
    if query.op in ("!=", "!~="):  # holds when the attribute exists and none of its values is equal (matches)
        return bool(targets) and not any(_compare(_negated(query), t) for t in targets)
    return any(_compare(query, t) for t in targets)


def _negated(term: Term) -> Term:
    return Term(term.path, "==" if term.op == "!=" else "~=", term.values, term.range, term.pattern)


def _targets(entity: dict[str, Any], path: Sequence[str]) -> list[Any]:
    """The plain values `path` names in `entity` (an array's members each)."""
    node: Any = entity.get(path[0])
    if not isinstance(node, dict):
        return []
    for part in path[1:]:
        if part.startswith("["):
            value = _plain(node) if isinstance(node, dict) and "type" in node else node
            node = value.get(part[1:]) if isinstance(value, dict) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return []
    value = _plain(node) if isinstance(node, dict) and node.get("type") in ("Property", "Relationship",
                                                                            "GeoProperty") else node
    values = value if isinstance(value, list) else [value]
    return [_literal(v) for v in values]


def _plain(attr: dict[str, Any]) -> Any:
    return attr.get("object") if attr.get("type") == "Relationship" else attr.get("value")


def _literal(v: Any) -> Any:
    """A JSON-LD typed literal ({"@type": "DateTime", "@value": ...}) as its instant; others as they are."""
    if isinstance(v, dict) and "@value" in v:
        v = v["@value"]
    if isinstance(v, str) and _DATETIME.match(v):
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            return v
    return v


def _compare(term: Term, actual: Any) -> bool:
    if term.pattern is not None:
        return isinstance(actual, str) and term.pattern.search(actual) is not None
    if term.range is not None:
        return _ordered(actual, term.range.low, ">=") and _ordered(actual, term.range.high, "<=")
    if term.op in ("==", "!="):
        return any(_equal(actual, v) for v in term.values)
    return _ordered(actual, term.values[0], term.op or "")


def _comparable(actual: Any, wanted: Scalar) -> tuple[Any, Any] | None:
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return (actual, wanted) if isinstance(actual, bool) and isinstance(wanted, bool) else None
    if isinstance(wanted, float):
        return (float(actual), wanted) if isinstance(actual, int | float) else None
    if isinstance(wanted, datetime):
        if isinstance(actual, datetime) and (actual.tzinfo is None) == (wanted.tzinfo is None):
            return actual, wanted
        return None
    if isinstance(wanted, date):
        if isinstance(actual, datetime):
            return actual.date(), wanted
        return (date.fromisoformat(actual), wanted) if isinstance(actual, str) and _DATE.match(actual) else None
    if isinstance(wanted, time):
        return (time.fromisoformat(actual.removesuffix("Z")), wanted) if isinstance(actual, str) and \
            _TIME.match(actual) else None
    return (actual, wanted) if isinstance(actual, str) else None


def _equal(actual: Any, wanted: Scalar) -> bool:
    pair = _comparable(actual, wanted)
    return pair is not None and bool(pair[0] == pair[1])


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _ordered(actual: Any, wanted: Scalar, op: str) -> bool:
    pair = _comparable(actual, wanted)
    if pair is None or isinstance(wanted, bool):
        return False
    return _ORDER[op](pair[0], pair[1])


# -- geo-queries -------------------------------------------------------------------------------

GEORELS = ("near", "within", "contains", "intersects", "equals", "disjoint", "overlaps")
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class GeoQuery:
    georel: str
    geometry: str
    coordinates: Any
    max_distance: float | None = None
    min_distance: float | None = None
    geoproperty: str = "location"

    def bbox(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) holding every point that can match, so that a store can leave the
        rest unread; None when no box does (disjoint, minDistance only, near a pole)."""
        if self.georel == "near":
            if self.max_distance is None:
                return None
            lon, lat = self.coordinates[0], self.coordinates[1]
            # a great circle of length d moves latitude by at most d/R; longitude by about d/(R cos lat):
            # 10 % more covers the circle's bend at any city's latitude
            dlat = math.degrees(self.max_distance / EARTH_RADIUS_M) * 1.1 + 1e-6
            cos = math.cos(math.radians(min(90.0, abs(lat) + dlat)))
            if cos < 0.05:
                return None
            dlon = dlat / cos
            return lon - dlon, lat - dlat, lon + dlon, lat + dlat
        if self.georel in ("within", "intersects", "equals", "contains"):
            points = list(_positions(self.coordinates))
            return (min(p[0] for p in points), min(p[1] for p in points), max(p[0] for p in points),
                    max(p[1] for p in points))
        return None


def parse_geo(georel: str | None, geometry: str | None, coordinates: str | None,
              geoproperty: str | None = None) -> GeoQuery | None:
    """None when no geo-query is asked; QueryError (naming the parameter) when one is asked badly."""
    if georel is None and geometry is None and coordinates is None:
        return None
    if georel is None or geometry is None or coordinates is None:
        raise QueryError("a geo-query needs georel, geometry and coordinates together")
    rel, *mods = georel.split(";")
    if rel not in GEORELS:
        raise QueryError(f"georel {rel!r}: one of {', '.join(GEORELS)}")
    max_d = min_d = None
    for mod in mods:
        key, sep, raw = mod.partition("==")
        if not sep or key not in ("maxDistance", "minDistance") or rel != "near":
            raise QueryError(f"georel {georel!r}: near takes maxDistance==<m> or minDistance==<m>, others nothing")
        if not _NUMBER.match(raw) or float(raw) < 0 or not math.isfinite(float(raw)):
            raise QueryError(f"georel {georel!r}: {key} is a distance in metres, >= 0")
        if key == "maxDistance":
            max_d = float(raw)
        else:
            min_d = float(raw)
    if rel == "near" and max_d is None and min_d is None:
        raise QueryError("georel near needs maxDistance==<m> or minDistance==<m>")
    try:
        coords = orjson.loads(coordinates)
    except orjson.JSONDecodeError:
        raise QueryError(f"coordinates {coordinates[:40]!r} is not a JSON array") from None
    _check_geometry(geometry, coords)
    if rel == "near" and geometry != "Point":
        raise QueryError("georel near takes a Point geometry")
    if rel == "within" and geometry not in ("Polygon", "MultiPolygon"):
        raise QueryError("georel within takes a Polygon or MultiPolygon geometry")
    prop = geoproperty or "location"
    if not re.fullmatch(_NAME, prop):
        raise QueryError(f"geoproperty {prop[:40]!r} is no attribute name")
    return GeoQuery(rel, geometry, coords, max_d, min_d, prop)


def _positions(c: Any) -> Iterator[Sequence[float]]:
    if c and isinstance(c[0], int | float):
        yield c
        return
    for part in c:
        yield from _positions(part)


def _position(p: Any) -> bool:
    return (isinstance(p, list) and len(p) in (2, 3)
            and all(isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in p)
            and -180 <= p[0] <= 180 and -90 <= p[1] <= 90)


def _ring(r: Any) -> bool:
    return isinstance(r, list) and len(r) >= 4 and all(_position(p) for p in r) and r[0] == r[-1]


def _check_geometry(geometry: str, c: Any) -> None:
    ok = {
        "Point": lambda: _position(c),
        "LineString": lambda: isinstance(c, list) and len(c) >= 2 and all(_position(p) for p in c),
        "Polygon": lambda: isinstance(c, list) and len(c) >= 1 and all(_ring(r) for r in c),
        "MultiPolygon": lambda: isinstance(c, list) and len(c) >= 1 and all(
            isinstance(p, list) and len(p) >= 1 and all(_ring(r) for r in p) for p in c),
    }.get(geometry)
    if ok is None:
        raise QueryError(f"geometry {geometry!r}: Point, LineString, Polygon or MultiPolygon")
    if not ok():
        raise QueryError(f"coordinates are not those of a GeoJSON {geometry} (longitude, latitude in degrees; "
                         "a polygon's rings closed, at least 4 positions)")


def distance_m(a: Sequence[float], b: Sequence[float]) -> float:
    """Great-circle distance between two [lon, lat] positions (haversine, mean Earth radius)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _in_ring(p: Sequence[float], ring: Sequence[Sequence[float]]) -> bool:
    x, y, inside = p[0], p[1], False
    for (x1, y1, *_), (x2, y2, *_) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _in_polygon(p: Sequence[float], rings: Sequence[Any]) -> bool:
    return _in_ring(p, rings[0]) and not any(_in_ring(p, hole) for hole in rings[1:])


def geo_matches(geo: GeoQuery, entity: dict[str, Any]) -> bool:
    """Whether the entity's point (its only geometry kind) stands in relation `geo`."""
    attr = entity.get(geo.geoproperty)
    value = attr.get("value") if isinstance(attr, dict) else None
    if not isinstance(value, dict) or value.get("type") != "Point" or not _position(value.get("coordinates")):
        return False
    p = value["coordinates"]
    if geo.georel == "near":
        d = distance_m(p, geo.coordinates)
        return (geo.max_distance is None or d <= geo.max_distance) and (geo.min_distance is None
                                                                        or d >= geo.min_distance)
    inside = _covers(geo, p)
    if geo.georel == "disjoint":
        return not inside
    if geo.georel in ("within", "intersects"):
        return inside
    if geo.georel in ("equals", "contains"):  # a point contains, or equals, a point only
        return geo.geometry == "Point" and list(p[:2]) == list(geo.coordinates[:2])
    return False  # overlaps: a point overlaps nothing (same dimension, neither inside the other)


def _covers(geo: GeoQuery, p: Sequence[float]) -> bool:
    if geo.geometry == "Point":
        return list(p[:2]) == list(geo.coordinates[:2])
    if geo.geometry == "Polygon":
        return _in_polygon(p, geo.coordinates)
    if geo.geometry == "MultiPolygon":
        return any(_in_polygon(p, poly) for poly in geo.coordinates)
    return any(_on_segment(p, a, b) for a, b in itertools.pairwise(geo.coordinates))


def _on_segment(p: Sequence[float], a: Sequence[float], b: Sequence[float]) -> bool:
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    return abs(cross) < 1e-12 and min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and \
        min(a[1], b[1]) <= p[1] <= max(a[1], b[1])
