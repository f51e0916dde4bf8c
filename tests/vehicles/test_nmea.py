"""The NMEA codec: byte vectors, the same fields as pynmea2 from the same sentences, and a hostile receiver."""

from __future__ import annotations

import datetime as dt

import pynmea2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.gnss.nmea import (
    GGA,
    GSA,
    RMC,
    VTG,
    ChecksumError,
    FormatError,
    NmeaError,
    NmeaStream,
    Unsupported,
    checksum,
    encode,
    parse_sentence,
)
from simulators.gps import sentences

GGA_LINE = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
RMC_LINE = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
VTG_LINE = b"$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48"
GSA_LINE = b"$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39"


def test_the_four_sentences_decode_to_typed_fields() -> None:
    gga = parse_sentence(GGA_LINE)
    assert isinstance(gga, GGA)
    assert (gga.talker, gga.time_ms, gga.quality, gga.satellites, gga.hdop, gga.altitude_m) == (
        "GP", (12 * 3600 + 35 * 60 + 19) * 1000, 1, 8, 0.9, 545.4)
    assert gga.lat == pytest.approx(48 + 7.038 / 60) and gga.lon == pytest.approx(11 + 31 / 60)
    rmc = parse_sentence(RMC_LINE)
    assert isinstance(rmc, RMC) and rmc.valid and rmc.date == dt.date(1994, 3, 23)
    assert (rmc.speed_kn, rmc.course_deg) == (22.4, 84.4)
    vtg = parse_sentence(VTG_LINE)
    assert isinstance(vtg, VTG) and (vtg.course_deg, vtg.speed_kn, vtg.speed_kmh) == (54.7, 5.5, 10.2)
    gsa = parse_sentence(GSA_LINE)
    assert isinstance(gsa, GSA) and gsa.fix_type == 3 and gsa.satellites == (4, 5, 9, 12, 24)
    assert (gsa.pdop, gsa.hdop, gsa.vdop) == (2.5, 1.3, 2.1)


def test_south_and_west_are_negative_and_every_talker_is_read() -> None:
    for talker in ("GP", "GN", "GL", "GA"):
        s = parse_sentence(encode(f"{talker}GGA,000001.00,3351.000,S,07040.500,W,2,12,0.7,12.0,M,,M,,"))
        assert isinstance(s, GGA) and s.talker == talker
        assert s.lat == pytest.approx(-(33 + 51 / 60)) and s.lon == pytest.approx(-(70 + 40.5 / 60))


def test_a_wrong_checksum_is_refused_before_any_field_is_read() -> None:
    with pytest.raises(ChecksumError):
        parse_sentence(GGA_LINE.replace(b"*47", b"*48"))
    with pytest.raises(ChecksumError):
        parse_sentence(GGA_LINE.replace(b"545.4", b"545.5"))


@pytest.mark.parametrize("line, error", [
    (b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", FormatError),  # no checksum
    (encode("GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), FormatError),  # 67 minutes
    (encode("GPGGA,123519,9107.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), FormatError),  # 91 degrees
    (encode("GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), FormatError),  # hemisphere
    (encode("GPGGA,123519,4807.038,N,01131.000,E,1,08,nan,545.4,M,46.9,M,,"), FormatError),  # float("nan")
    (encode("GPGGA,123519,4807.038,N,01131.000,E,1,08,1_0,545.4,M,46.9,M,,"), FormatError),  # float("1_0")
    (encode("GPGGA,256019,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), FormatError),  # 25 h
    (encode("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,310294,003.1,W"), FormatError),  # 31 Feb
    (encode("GPRMC,123519,X,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"), FormatError),  # status
    (encode("GPGSA,A,7,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"), FormatError),  # fix type 7
    (encode("GPGGA,123519,4807.038,N"), FormatError),  # too few fields
    (encode("GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00"), Unsupported),
    (encode("BDGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), Unsupported),
    (encode("PUBX,00,081350.00,4717.113210,N"), Unsupported),
])
def test_what_cannot_be_used_is_a_precise_error(line: bytes, error: type[NmeaError]) -> None:
    with pytest.raises(error):
        parse_sentence(line)


def test_the_stream_resynchronises_on_garbage_and_cut_sentences() -> None:
    s = NmeaStream()
    out = s.feed(b"\x00\xffnoise\r\n$GPGGA,1235" + b"$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48\r\n" + GGA_LINE[:20])
    assert isinstance(out[0], FormatError) and isinstance(out[1], VTG) and len(out) == 2
    out = s.feed(GGA_LINE[20:] + b"x" * 500 + b"\r\n")
    assert isinstance(out[0], GGA) and isinstance(out[1], FormatError)


def test_checksum_is_the_xor_of_the_body() -> None:
    for body in (b"", b"A", b"GPGGA,1", bytes(range(1, 128))):
        x = 0
        for b in body:
            x ^= b
        assert checksum(body) == x


# -- against pynmea2 ------------------------------------------------------------------------------

lat_st = st.floats(min_value=-89.99, max_value=89.99, allow_nan=False)
lon_st = st.floats(min_value=-179.99, max_value=179.99, allow_nan=False)
time_st = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2068, 12, 31))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(talker=st.sampled_from(["GP", "GN", "GL", "GA"]), when=time_st, lat=lat_st, lon=lon_st,
       speed=st.floats(min_value=0, max_value=250), course=st.floats(min_value=0, max_value=359.9),
       sats=st.integers(min_value=0, max_value=24), hdop=st.floats(min_value=0.5, max_value=50), fix=st.booleans())
def test_every_field_agrees_with_pynmea2(talker: str, when: dt.datetime, lat: float, lon: float, speed: float,
                                         course: float, sats: int, hdop: float, fix: bool) -> None:
    bodies = sentences(talker, when, (lat, lon) if fix else None, speed_kmh=speed, course=course,
                       satellites=sats, hdop=hdop)
    for body in bodies:
        line = encode(body)
        mine = parse_sentence(line)
        ref = pynmea2.parse(line.decode().strip(), check=True)
        assert_same(mine, ref)


def assert_same(mine: object, ref: pynmea2.NMEASentence) -> None:
    def t_ms(t: dt.time | None) -> int | None:
        return None if t is None else ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000

    def num(v: object) -> float | None:
        return None if v in (None, "") else float(str(v))

    assert mine.talker == ref.talker  # type: ignore[attr-defined]
    if isinstance(mine, GGA):
        assert (mine.time_ms, mine.quality, mine.satellites, mine.hdop, mine.altitude_m) == (
            t_ms(ref.timestamp), ref.gps_qual, int(ref.num_sats), num(ref.horizontal_dil), num(ref.altitude))
        assert_position(mine.lat, mine.lon, ref)
    elif isinstance(mine, RMC):
        assert (mine.time_ms, mine.valid, mine.speed_kn, mine.course_deg, mine.date) == (
            t_ms(ref.timestamp), ref.status == "A", num(ref.spd_over_grnd), num(ref.true_course), ref.datestamp)
        assert_position(mine.lat, mine.lon, ref)
    elif isinstance(mine, VTG):
        assert (mine.course_deg, mine.speed_kn, mine.speed_kmh) == (
            num(ref.true_track), num(ref.spd_over_grnd_kts), num(ref.spd_over_grnd_kmph))
    else:
        assert isinstance(mine, GSA)
        ref_prns = tuple(int(getattr(ref, f"sv_id{i:02d}")) for i in range(1, 13) if getattr(ref, f"sv_id{i:02d}"))
        assert (mine.fix_type, mine.satellites, mine.pdop, mine.hdop, mine.vdop) == (
            int(ref.mode_fix_type), ref_prns, num(ref.pdop), num(ref.hdop), num(ref.vdop))


def assert_position(lat: float | None, lon: float | None, ref: pynmea2.NMEASentence) -> None:
    if not ref.lat:
        assert lat is None and lon is None
        return
    assert lat == pytest.approx(ref.latitude, abs=1e-9) and lon == pytest.approx(ref.longitude, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="$*"), max_size=40),
       st.integers(min_value=0, max_value=119), st.integers(min_value=0, max_value=20))
def test_a_corrupted_sentence_is_either_refused_by_both_or_read_alike(noise: str, at: int, drop: int) -> None:
    """Characters spliced into a valid sentence, or cut from it, with the checksum made right again:
    where this codec accepts the result, pynmea2 reads the same fields."""
    line = GGA_LINE.strip() if at % 2 else RMC_LINE
    body = line[1:-3].decode()
    cut = at % (len(body) + 1)
    mutated = encode(body[:cut] + noise + body[cut + drop:])
    try:
        mine = parse_sentence(mutated)
    except NmeaError:
        return
    ref = pynmea2.parse(mutated.decode().strip(), check=True)
    assert_same(mine, ref)


# -- a hostile receiver ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=200),
    st.sampled_from([GGA_LINE, RMC_LINE + b"\r\n", VTG_LINE + b"\n", GSA_LINE + b"\r\n", b"$", b"*", b",", b"\n"]),
    st.text(alphabet="$GPNAMCRVTS,.*0123456789-\r\nEW", max_size=120).map(str.encode),
), max_size=12))
def test_no_bytes_make_the_stream_raise(chunks: list[bytes]) -> None:
    s = NmeaStream()
    for chunk in chunks:
        for item in s.feed(chunk):
            assert isinstance(item, GGA | RMC | VTG | GSA | NmeaError)
    assert len(s._buf) <= 160  # bounded, whatever the line


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.,-ANSEWVMKT", max_size=90))
def test_any_body_with_a_right_checksum_decodes_or_is_refused(fields: str) -> None:
    for kind in ("GPGGA,", "GNRMC,", "GAVTG,", "GLGSA,"):
        try:
            parse_sentence(encode(kind + fields))
        except NmeaError:
            pass
