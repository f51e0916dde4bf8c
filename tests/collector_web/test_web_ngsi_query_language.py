"""The NGSI-LD query language and geo-queries (collector.ngsi_query), pure: properties over generated
values, against the grammar and semantics of ETSI GS CIM 009 v1.6 §4.9-4.10."""

from __future__ import annotations

import math
import operator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.ngsi_query import (
    GeoQuery,
    Logic,
    QueryError,
    Term,
    distance_m,
    geo_matches,
    matches,
    parse_geo,
    parse_q,
)

OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
numbers = st.integers(-10**6, 10**6) | st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))
instants = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def entity(**attrs: object) -> dict:
    return {"id": "urn:ngsi-ld:T:x", "type": "T", **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}


def number(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


@given(x=numbers, v=numbers, op=st.sampled_from(sorted(OPS)))
def test_a_comparison_on_numbers_is_the_comparison(x: float, v: float, op: str) -> None:
    assert matches(parse_q(f"p{op}{number(v)}"), entity(p=x)) == OPS[op](x, float(number(v)))


@given(x=numbers, a=numbers, b=numbers)
def test_a_range_holds_its_bounds(x: float, a: float, b: float) -> None:
    low, high = sorted((float(number(a)), float(number(b))))
    q = f"p=={number(low)}..{number(high)}"
    assert matches(parse_q(q), entity(p=x)) == (low <= x <= high)
    assert matches(parse_q(q.replace("==", "!=")), entity(p=x)) == (not low <= x <= high)


@given(x=instants, v=instants, op=st.sampled_from(sorted(OPS)), hours=st.integers(-14, 14))
def test_date_times_compare_as_instants_whatever_their_offset(x: datetime, v: datetime, op: str, hours: int) -> None:
    written = v.astimezone(timezone(timedelta(hours=hours))).isoformat()
    stored = {"@type": "DateTime", "@value": x.isoformat().replace("+00:00", "Z")}
    assert matches(parse_q(f"d{op}{written}"), entity(d=stored)) == OPS[op](x, v)


@given(a=st.booleans(), b=st.booleans(), c=st.booleans())
def test_and_binds_tighter_than_or_and_parentheses_group(a: bool, b: bool, c: bool) -> None:
    e = entity(a=a, b=b, c=c)
    assert matches(parse_q("a==true|b==true;c==true"), e) == (a or (b and c))
    assert matches(parse_q("(a==true|b==true);c==true"), e) == ((a or b) and c)
    assert matches(parse_q("a==true;b==true|c==true"), e) == ((a and b) or c)


@given(members=st.lists(st.sampled_from(["light", "energy", "power", "humidity"]), max_size=4),
       wanted=st.sampled_from(["light", "energy", "power", "humidity"]))
def test_an_array_matches_when_one_member_does(members: list[str], wanted: str) -> None:
    assert matches(parse_q(f'p=="{wanted}"'), entity(p=members)) == (wanted in members)


@given(st.text(max_size=60))
def test_any_text_parses_or_is_a_query_error(text: str) -> None:
    try:
        query = parse_q(text)
    except QueryError:
        return
    assert isinstance(query, Term | Logic)
    matches(query, entity(p=1, s="x"))


def test_the_grammar() -> None:
    assert parse_q('powerState=="on"') == Term(("powerState",), "==", ("on",))
    assert parse_q("a.observedAt>=2026-01-01T00:00:00Z").path == ("a", "observedAt")
    assert parse_q("a[b]==1").path == ("a", "[b")
    assert matches(parse_q("a[b]==1"), entity(a={"b": 1})) and not matches(parse_q("a[b]==2"), entity(a={"b": 1}))
    assert matches(parse_q("a.observedAt>2026-01-01T00:00:00Z"), {
        "a": {"type": "Property", "value": 1, "observedAt": "2026-03-01T00:00:00Z"}})
    assert matches(parse_q("r==urn:ngsi-ld:X:1"), {"r": {"type": "Relationship", "object": "urn:ngsi-ld:X:1"}})
    assert not matches(parse_q("p!=1"), entity(q=1))  # "!=" needs the attribute
    for bad in ("", "p==", "p=='x'", "p==x", '(p==1', "p==1)", "p==1;;q==2", "p>1,2", "p==2026-02-30",
                "(" * 40 + "p==1" + ")" * 40, "p" * 5000):
        with pytest.raises(QueryError):
            parse_q(bad)


@given(lon=st.floats(-179, 179), lat=st.floats(-80, 80), dlon=st.floats(-1, 1), dlat=st.floats(-1, 1))
def test_near_is_the_great_circle_distance(lon: float, lat: float, dlon: float, dlat: float) -> None:
    a, b = [lon, lat], [lon + dlon, lat + dlat]
    d = distance_m(a, b)
    assert math.isclose(d, distance_m(b, a), rel_tol=1e-9, abs_tol=1e-6)
    point = {"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": b}}}
    assert geo_matches(GeoQuery("near", "Point", a, max_distance=d + 0.01), point)
    if d > 1:
        assert not geo_matches(GeoQuery("near", "Point", a, max_distance=d * 0.99), point)
        assert geo_matches(GeoQuery("near", "Point", a, min_distance=d * 0.99), point)


@given(x=st.floats(0, 10), y=st.floats(0, 10))
def test_within_a_polygon_with_a_hole(x: float, y: float) -> None:
    square = [[[0, 0], [8, 0], [8, 8], [0, 8], [0, 0]], [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]]
    point = {"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [x, y]}}}
    on_edge = x in (0, 8, 2, 4) or y in (0, 8, 2, 4)
    if not on_edge:
        inside = 0 < x < 8 and 0 < y < 8 and not (2 < x < 4 and 2 < y < 4)
        assert geo_matches(GeoQuery("within", "Polygon", square), point) == inside
        assert geo_matches(GeoQuery("disjoint", "Polygon", square), point) == (not inside)


def test_geo_query_parameters() -> None:
    assert parse_geo(None, None, None) is None
    q = parse_geo("near;maxDistance==2000", "Point", "[5.04,47.32]")
    assert q is not None and (q.max_distance, q.coordinates) == (2000.0, [5.04, 47.32])
    for args in (("near", "Point", "[5,47]"), ("near;maxDistance==x", "Point", "[5,47]"),
                 ("within", "Point", "[5,47]"), ("near;maxDistance==1", "Point", "[500,47]"),
                 ("near;maxDistance==1", "Circle", "[5,47]"), ("within", "Polygon", "[[[0,0],[1,0],[0,0]]]"),
                 ("near;maxDistance==1", "Point", "nope"), ("near;maxDistance==1", None, "[5,47]"),
                 ("within;maxDistance==1", "Polygon", "[[[0,0],[1,0],[1,1],[0,0]]]")):
        with pytest.raises(QueryError):
            parse_geo(*args)


@given(lon=st.floats(-179, 179), lat=st.floats(-70, 70), bearing=st.floats(0, 2 * math.pi),
       d=st.floats(0, 50_000), frac=st.floats(0, 1))
def test_the_bounding_box_holds_every_point_near_matches(lon: float, lat: float, bearing: float, d: float,
                                                         frac: float) -> None:
    """The store reads only the gateways in the box: it must never leave out a point that matches."""
    # a point at distance frac*d along the great circle at that bearing (the direct geodesic problem)
    delta, phi1, lam1 = frac * d / 6_371_008.8, math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(bearing))
    lam2 = lam1 + math.atan2(math.sin(bearing) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * math.sin(phi2))
    point = [math.degrees(lam2), math.degrees(phi2)]
    geo = GeoQuery("near", "Point", [lon, lat], max_distance=d)
    box = geo.bbox()
    assert box is not None
    entity = {"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": point}}}
    if geo_matches(geo, entity):
        assert box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3], (box, point)
