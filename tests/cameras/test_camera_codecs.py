"""The camera codecs on byte vectors and under hypothesis: a hostile camera gets a DecodeError, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.cameras import digest, onvif, wire
from drivers.cameras.events import interpret
from drivers.cameras.health import MAX_OPEN, HealthJudge
from drivers.cameras.sdp import VideoStream, parse_sdp
from drivers.errors import DecodeError
from drivers.model import Severity
from simulators import camera_soap as soap

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- SDP ------------------------------------------------------------------------------------------

AXIS_SDP = (b"v=0\r\no=- 123 1 IN IP4 10.0.0.5\r\ns=Session streamed with GStreamer\r\nt=0 0\r\n"
            b"m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n"
            b"a=framesize:96 1920-1080\r\na=control:rtsp://10.0.0.5/axis-media/media.amp/stream=0\r\n"
            b"m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000/1\r\n")
HIK_SDP = (b"v=0\no=- 1 1 IN IP4 0.0.0.0\ns=Media Presentation\nt=0 0\nm=video 0 RTP/AVP 96\n"
           b"a=rtpmap:96 H265/90000\na=x-dimensions:2560,1440\na=control:trackID=1\n")


def test_sdp_vectors_give_codec_and_resolution_of_the_video_only() -> None:
    assert parse_sdp(AXIS_SDP) == [VideoStream("H264", 1920, 1080,
                                               "rtsp://10.0.0.5/axis-media/media.amp/stream=0")]
    assert parse_sdp(HIK_SDP) == [VideoStream("H265", 2560, 1440, "trackID=1")]
    mjpeg = b"v=0\r\nm=video 0 RTP/AVP 26\r\na=cliprect:0,0,480,640\r\n"
    assert parse_sdp(mjpeg) == [VideoStream("JPEG", 640, 480, None)]


def _ue(v: int) -> str:
    code = bin(v + 1)[2:]
    return "0" * (len(code) - 1) + code


def _sps(width: int, height: int) -> str:
    """A baseline-profile H.264 SPS for this size (cropping to the size), base64 as in sprop-parameter-sets."""
    import base64
    mbs_w, mbs_h = -(-width // 16), -(-height // 16)
    crop_r, crop_b = (mbs_w * 16 - width) // 2, (mbs_h * 16 - height) // 2
    cropping = "1" + _ue(0) + _ue(crop_r) + _ue(0) + _ue(crop_b) if crop_r or crop_b else "0"
    bits = ("01000010" + "00000000" + "00011110" + _ue(0) + _ue(0) + _ue(0) + _ue(0) + _ue(1) + "0"
            + _ue(mbs_w - 1) + _ue(mbs_h - 1) + "1" + "1" + cropping + "0" + "1")
    bits += "0" * (-len(bits) % 8)
    body = int(bits, 2).to_bytes(len(bits) // 8, "big")
    out = bytearray()
    zeros = 0
    for b in body:  # emulation prevention, as an encoder writes it
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return base64.b64encode(b"\x67" + bytes(out)).decode()


@given(st.integers(1, 480).map(lambda n: n * 8), st.integers(1, 270).map(lambda n: n * 8))
@FUZZ
def test_the_resolution_comes_from_the_h264_sps_when_the_sdp_states_none(width: int, height: int) -> None:
    sdp = (f"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
           f"a=fmtp:96 packetization-mode=1;profile-level-id=42001e;sprop-parameter-sets={_sps(width, height)},aM4G4g==\r\n")
    assert parse_sdp(sdp.encode()) == [VideoStream("H264", width, height, None)]


@given(st.binary(max_size=600))
@FUZZ
def test_the_sdp_parser_survives_any_bytes(data: bytes) -> None:
    try:
        out = parse_sdp(data)
    except DecodeError:
        return
    assert all(isinstance(v, VideoStream) for v in out)


_SDP_LINE = st.one_of(
    st.sampled_from(["m=video 0 RTP/AVP 96", "m=video 0 RTP/AVP 26", "m=audio 0 RTP/AVP 97", "a=rtpmap:96 H264/90000",
                     "a=framesize:96 1920-1080", "a=x-dimensions:0,0", "a=cliprect:9,9,0,0", "m=video",
                     "a=fmtp:96 sprop-parameter-sets=Z0IAHpWoKA9k,aM48gA=="]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from("vmasoct"), st.text(max_size=40)),
    st.builds(lambda v: f"a=fmtp:96 sprop-parameter-sets={v}", st.text("Z0IAHpWoKA9kaM48gA+/=", max_size=60)),
)


@given(st.lists(_SDP_LINE, max_size=12))
@FUZZ
def test_the_sdp_parser_survives_sdp_shaped_nonsense(lines: list[str]) -> None:
    try:
        parse_sdp(("v=0\r\n" + "\r\n".join(lines)).encode())
    except DecodeError:
        pass


# -- RTSP/HTTP response reader --------------------------------------------------------------------

RTSP_OK = (b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://10.0.0.5/\r\nContent-Type: application/sdp\r\n"
           b"Content-Length: " + str(len(AXIS_SDP)).encode() + b"\r\n\r\n" + AXIS_SDP)


def test_a_response_read_in_any_cut_is_the_same_response() -> None:
    whole = wire.ResponseReader().feed(RTSP_OK)
    assert whole is not None and whole.status == 200 and whole.body == AXIS_SDP
    for cut in range(1, len(RTSP_OK)):
        r = wire.ResponseReader()
        assert r.feed(RTSP_OK[:cut]) is None
        assert r.feed(RTSP_OK[cut:]) == whole
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    assert (resp := wire.ResponseReader().feed(chunked)) is not None and resp.body == b"hello world"
    unauthorised = b'RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm="x", nonce="y"\r\n\r\n'
    assert (resp := wire.ResponseReader().feed(unauthorised)) is not None and resp.status == 401


@pytest.mark.parametrize(("data", "why"), [
    (b"SIP/2.0 200 OK\r\n\r\n", "not an RTSP or HTTP status line"),
    (b"RTSP/1.0 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length is not a number"),
    (b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", "over the"),
    (b"RTSP/1.0 200 OK\r\n" + b"X-Pad: " + b"a" * 20000, "head longer than"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 300_000, "body without a length over the"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"ffff\r\n" + b"y" * 65535 + b"\r\n") * 5,
     "chunked body over the"),
])
def test_a_hostile_response_is_a_decode_error_naming_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        wire.ResponseReader().feed(data)


@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=10))
@FUZZ
def test_the_response_reader_survives_any_bytes_in_any_cuts(data: bytes, cuts: list[int]) -> None:
    r = wire.ResponseReader()
    pos = 0
    try:
        for n in [*cuts, len(data)]:
            if r.feed(data[pos:pos + n]) is not None:
                return
            pos += n
        r.eof()
    except DecodeError:
        pass


@given(st.builds(lambda status, headers, body: (status, headers, body),
                 st.integers(100, 599), st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
                                                        .filter(lambda h: h.lower() not in {"content-length",
                                                                                            "transfer-encoding"}),
                                                        st.text("abc 123;=", max_size=20), max_size=5),
                 st.binary(max_size=300)))
@FUZZ
def test_a_well_formed_rtsp_response_reads_back_as_written(case: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = case
    head = [f"RTSP/1.0 {status} Whatever", *(f"{k}: {v}" for k, v in headers.items()),
            f"Content-Length: {len(body)}"]
    resp = wire.ResponseReader().feed(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    expect_body = b"" if status < 200 or status in (204, 304) else body
    assert resp is not None and resp.status == status and resp.body == expect_body


# -- Digest -------------------------------------------------------------------------------------

def test_digest_answers_rfc_2617s_example() -> None:
    ch = digest.parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert digest.response_value(ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b", 1) \
        == "6629fae49393a05397450978507c4ef1"


@given(st.text(max_size=200))
@FUZZ
def test_the_digest_challenge_parser_survives_any_text(text: str) -> None:
    for header in (text, "Digest " + text):
        try:
            digest.parse_challenge(header)
        except DecodeError:
            pass


# -- ONVIF --------------------------------------------------------------------------------------

def test_onvif_answers_parse_into_typed_values() -> None:
    info = onvif.parse_device_information(soap.device_information("Axis", "P1455-LE", "10.12.182", "ACCC8E"))
    assert (info.manufacturer, info.model, info.firmware, info.serial) == ("Axis", "P1455-LE", "10.12.182", "ACCC8E")
    when = datetime(2026, 3, 29, 1, 59, 58, tzinfo=UTC)
    assert onvif.parse_system_date_and_time(soap.system_date_and_time(when)) == when
    caps = onvif.parse_capabilities(soap.capabilities("http://10.0.0.5"))
    assert caps.events == "http://10.0.0.5/onvif/event_service"
    assert onvif.parse_subscription(soap.subscription("http://10.0.0.5/sub/3", when, 60)) == "http://10.0.0.5/sub/3"
    notes = onvif.parse_pull_messages(soap.pull_messages(
        [soap.SimNotification("VideoSource/SignalLoss", "State", True, "Initialized")], when, 60))
    assert [(n.topic, n.operation, n.data, n.source) for n in notes] == [
        ("VideoSource/SignalLoss", "Initialized", {"State": "true"}, {"VideoSourceConfigurationToken": "vsc0"})]
    sig = interpret(notes[0])
    assert sig is not None and (sig.code, sig.active) == ("camera_video_loss", True)
    with pytest.raises(onvif.SoapFault, match="ter:NotAuthorized"):
        onvif.parse_device_information(soap.fault("ter:NotAuthorized", "Sender not authorized"))


def test_an_onvif_answer_with_a_doctype_is_refused_before_parsing() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b"<l>&b;</l>")
    with pytest.raises(DecodeError, match="DOCTYPE"):
        onvif.parse_body(bomb)


_PARSERS = [onvif.parse_device_information, onvif.parse_system_date_and_time, onvif.parse_capabilities,
            onvif.parse_subscription, onvif.parse_pull_messages]


@given(st.binary(max_size=500), st.sampled_from(_PARSERS))
@FUZZ
def test_the_onvif_parsers_survive_any_bytes(data: bytes, parse: object) -> None:
    try:
        parse(data)  # type: ignore[operator]
    except (DecodeError, onvif.SoapFault):
        pass


_TAGS = st.sampled_from(["tds:GetDeviceInformationResponse", "tds:GetSystemDateAndTimeResponse", "tds:SystemDateAndTime",
                         "tt:UTCDateTime", "tt:Date", "tt:Time", "tt:Year", "tt:Month", "tt:Day", "tt:Hour",
                         "tds:Manufacturer", "tds:FirmwareVersion", "tev:PullMessagesResponse",
                         "wsnt:NotificationMessage", "wsnt:Topic", "wsnt:Message", "tt:Message", "tt:Data",
                         "tt:Source", "tds:Capabilities", "tt:Events", "tt:XAddr", "env:Fault"])
_XML: st.SearchStrategy[str] = st.recursive(
    st.text("0123456789-:aT ", max_size=12),
    lambda inner: st.builds(lambda tag, kids, attr: f'<{tag}{attr}>{"".join(kids)}</{tag}>', _TAGS,
                            st.lists(inner, max_size=4),
                            st.sampled_from(["", ' Name="State" Value="true"', ' Name="x"', ' UtcTime="z"'])),
    max_leaves=20)


@given(_XML, st.sampled_from(_PARSERS))
@FUZZ
def test_the_onvif_parsers_survive_onvif_shaped_nonsense(inner: str, parse: object) -> None:
    data = soap.envelope(inner)
    try:
        parse(data)  # type: ignore[operator]
    except (DecodeError, onvif.SoapFault):
        pass


def test_a_camera_naming_a_new_source_in_every_message_cannot_open_faults_without_bound() -> None:
    judge = HealthJudge("cabinet", ["cam-1"], 1000)
    opened = [judge.open_fault("cam-1", "camera_tampering", Severity.MAJOR, 0, {}, f"vsc{i}") for i in range(1000)]
    assert sum(e is not None for e in opened) == MAX_OPEN == len(judge.open_faults("cam-1"))
    assert judge.clear("cam-1", "camera_tampering", 1, "vsc0") is not None  # a slot freed is usable again
    assert judge.open_fault("cam-1", "camera_tampering", Severity.MAJOR, 2, {}, "vsc999") is not None
