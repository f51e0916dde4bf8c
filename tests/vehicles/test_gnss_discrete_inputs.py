"""The gnss bus's I/O module read as discrete inputs (Modbus FC2), over real Modbus TCP on loopback: the link's
bit reads (FC1/FC2) and their errors, a bin lift placed where it happened, an exception reply and a dead module
seen as events on the module's device while the receiver's positions go on."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.constants import ExcCodes

from drivers.errors import ConfigError
from drivers.gnss.bus import GnssBus
from drivers.modbus.link import BadReply, ExceptionReply, LinkDown, LinkError, NoReply, rtu_link, tcp_link
from drivers.model import Event, Record
from drivers.registry import make_bus
from simulators.gps import GpsReceiver, Point
from tests.meters.meters_testkit import running, until
from tests.modbus.modbus_testkit import raw_rtu_peer, raw_tcp_peer, rtu_frame
from tests.vehicles.io_testkit import DiscreteIoModule
from tests.vehicles.test_gnss_bus import CTX, codes, config, samples

STRAIGHT = [Point(47.3000, 5.0000), Point(47.3000, 5.0400)]  # 3 km due east


def _bits_reply(request: bytes, payload: bytes) -> bytes:
    """A Modbus TCP reply to `request` carrying the PDU `payload`."""
    return request[:4] + struct.pack(">H", len(payload) + 1) + request[6:7] + payload


async def test_the_link_reads_discrete_inputs_and_coils_as_bits() -> None:
    module = DiscreteIoModule(unit=3)
    module.inputs = 0b1000_0000_0010_0101 | 1 << 20
    port = await module.start()
    link = tcp_link("127.0.0.1", port, timeout_s=1.0, reconnect_s=(0.05, 1.0))
    try:
        assert await link.read_bits(3, 2, 0, 6) == [True, False, True, False, False, True]
        assert await link.read_bits(3, 2, 15, 6) == [True, False, False, False, False, True]  # across a byte
        assert await link.read_bits(3, 1, 0, 3) == [False, False, False]  # FC1: the coils, all off
        with pytest.raises(ExceptionReply) as err:  # past the module's 32 inputs
            await link.read_bits(3, 2, 30, 5)
        assert (err.value.function, err.value.code, err.value.is_config_error) == (2, 2, True)
        assert "function 2 at address 30 (count 5) with exception 02 (illegal data address)" in str(err.value)
        module.refuse = ExcCodes.DEVICE_FAILURE
        with pytest.raises(ExceptionReply, match=r"exception 04 \(server device failure\)") as err:
            await link.read_bits(3, 2, 0, 1)
        assert not err.value.is_config_error
        with pytest.raises(ValueError, match="function 3 does not read bits"):
            await link.read_bits(3, 3, 0, 1)
    finally:
        await link.aclose()
        await module.stop()
    dead = tcp_link("127.0.0.1", port, timeout_s=0.3, reconnect_s=(0.05, 1.0))
    try:
        with pytest.raises(LinkDown, match=f"cannot connect to 127.0.0.1:{port}"):
            await dead.read_bits(3, 2, 0, 1)
    finally:
        await dead.aclose()


@pytest.mark.parametrize(("payload", "error", "message"), [
    pytest.param(bytes([2, 2, 0xFF, 0x01]), BadReply, "sent 2 bytes of bits for a read of 20", id="too-few-bytes"),
    pytest.param(bytes([2, 3, 0xFF, 0x01]), BadReply, "sent 2 bytes of bits", id="byte-count-too-big"),
    pytest.param(bytes([2, 2, 0xFF, 0x01, 0x0F]), BadReply, "sent byte count 02 with 3 bytes", id="byte-count-small"),
    pytest.param(bytes([1, 3, 0xFF, 0xFF, 0x0F]), BadReply, "with function 1", id="wrong-function"),
    pytest.param(bytes([0x82, 0x01]), ExceptionReply, r"exception 01 \(illegal function\)", id="exception"),
    pytest.param(None, NoReply, r"no reply from unit 1 within 0\.3 s", id="silence"),
])
async def test_a_bad_discrete_input_reply_is_a_precise_error(payload: bytes | None, error: type[LinkError],
                                                            message: str) -> None:
    async with raw_tcp_peer(lambda req: None if payload is None else _bits_reply(req, payload)) as port:
        link = tcp_link("127.0.0.1", port, timeout_s=0.3, reconnect_s=(0.05, 1.0))
        try:
            with pytest.raises(error, match=message):
                await link.read_bits(1, 2, 0, 20)
        finally:
            await link.aclose()


async def test_the_rtu_link_reads_discrete_inputs_too() -> None:
    """The same bit reads on an RTU line (a pty): the frame is cut by its byte count; an exception is an error."""
    replies = iter([bytes([1, 2, 2, 0b1010_0101, 0b01]), bytes([1, 0x82, 0x02])])
    async with raw_rtu_peer(lambda req: rtu_frame(next(replies))) as path:
        link = rtu_link(path, baudrate=9600, parity="N", stopbits=1, bytesize=8, timeout_s=0.3, reconnect_s=(0.1, 1.0))
        try:
            assert await link.read_bits(1, 2, 4, 9) == [True, False, True, False, False, True, False, True, True]
            with pytest.raises(ExceptionReply, match=r"function 2 at address 4 \(count 9\) with exception 02"):
                await link.read_bits(1, 2, 4, 9)
        finally:
            await link.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.binary(max_size=12), st.binary(max_size=6).map(lambda d: bytes([2, len(d)]) + d)),
       count=st.integers(1, 40))
def test_any_reply_to_a_discrete_input_read_is_bits_or_a_link_error(payload: bytes, count: int) -> None:
    """A hostile module: whatever PDU comes back, the read gives `count` bits or a LinkError, never another error."""

    async def one() -> None:
        async with raw_tcp_peer(lambda req: _bits_reply(req, payload)) as port:
            link = tcp_link("127.0.0.1", port, timeout_s=0.1, reconnect_s=(0.05, 1.0))
            try:
                bits = await link.read_bits(1, 2, 0, count)
            except LinkError:
                return
            finally:
                await link.aclose()
            assert len(bits) == count and all(isinstance(b, bool) for b in bits)
            assert payload[:2] == bytes([2, (count + 7) // 8])

    asyncio.run(one())


def io_config(gps_port: str, io_port: int, **io: Any) -> dict[str, Any]:
    return config(gps_port, silent_after_s=5, io={"host": "127.0.0.1", "port": io_port, "poll_s": 0.02,
                                                  "timeout_s": 0.3, **io})


def events(records: list[Record], code: str) -> list[Event]:
    return [r for r in records if isinstance(r, Event) and r.code == code]


async def test_a_bin_lift_on_discrete_input_n_is_seen_with_its_position() -> None:
    module = DiscreteIoModule()
    io_port = await module.start()
    try:
        async with GpsReceiver(STRAIGHT, period_s=0.05, speed_kmh=36) as gps:  # 10 m an epoch
            # discrete inputs from address 8: the lift is input 3, discrete input 11
            bus = make_bus(io_config(gps.port, io_port, address=8, cycle_bit=3), CTX)
            assert isinstance(bus, GnssBus)
            async with running(bus) as records:
                await until(lambda: len(samples(records)) >= 1 and bus.judge.last is not None)
                module.set_input(3, True)  # input 3 from address 0: not the lift
                await until(lambda: module.requests >= 3)
                assert bus.states()[1].last_values == {"bin_lift": False}
                before = bus.judge.last
                module.set_input(11, True)
                await until(lambda: bus.states()[1].last_values.get("bin_lift") is True)
                after = bus.judge.last
                await gps.wait_epochs(3)
                module.set_input(11, False)
                await until(lambda: "bin_lift" in codes(records))
    finally:
        await module.stop()
    assert before is not None and after is not None and before.lon is not None and after.lon is not None
    (lift,) = events(records, "bin_lift")
    assert lift.device == "truck-7" and lift.detail["lat"] == pytest.approx(47.3, abs=1e-5)
    assert round(before.lon, 6) <= lift.detail["lon"] <= round(after.lon, 6)
    assert lift.detail["duration_s"] >= 0.1
    assert bus.states()[1].errors == {} and "communication_failure" not in codes(records)


async def test_an_exception_reply_and_a_dead_module_are_events_not_a_crash() -> None:
    module = DiscreteIoModule()
    io_port = await module.start()
    try:
        async with GpsReceiver(STRAIGHT, period_s=0.05, speed_kmh=36) as gps:
            bus = make_bus(io_config(gps.port, io_port, cycle_bit=1, ignition_bit=0), CTX)
            async with running(bus) as records:
                await until(lambda: bus.states()[1].state == "ok")
                module.refuse = ExcCodes.DEVICE_FAILURE
                await until(lambda: "communication_failure" in codes(records))
                refused = bus.states()[1]
                module.refuse = None
                await until(lambda: "communication_restored" in codes(records))
                await module.stop()  # the module dies
                await until(lambda: len(events(records, "communication_failure")) == 2)
                dead = bus.states()[1]
                n = len(samples(records))
                await until(lambda: len(samples(records)) > n)  # the receiver's positions go on
                await module.start(io_port)
                module.set_input(1, True)
                await until(lambda: bus.states()[1].last_values.get("bin_lift") is True)
    finally:
        await module.stop()
    failures = events(records, "communication_failure")
    assert [e.device for e in failures] == ["truck-7-io", "truck-7-io"]
    assert "function 2 at address 0 (count 2) with exception 04 (server device failure)" in failures[0].detail["reason"]
    # the module's socket may outlive it a moment: a poll times out before the next cannot connect
    assert failures[1].detail["reason"].startswith((f"cannot connect to 127.0.0.1:{io_port}", "no reply from unit 1"))
    assert refused.errors.get("exception", 0) >= 1 and refused.state == "failing"
    assert dead.errors.get("connection", 0) + dead.errors.get("timeout", 0) >= 1 and dead.state == "failing"
    assert len(events(records, "communication_restored")) == 2 and bus.states()[1].state == "ok"


@pytest.mark.parametrize(("io", "key", "reason"), [
    ({"function": 4, "cycle_bit": 1}, "bus[0].io.function", 'only with inputs = "status_word"'),
    ({"register": 2, "cycle_bit": 1}, "bus[0].io.register", 'only with inputs = "status_word"'),
    ({"inputs": "status_word", "address": 2, "cycle_bit": 1}, "bus[0].io.address", 'only with inputs = "discrete"'),
    ({"inputs": "coils", "cycle_bit": 1}, "bus[0].io.inputs", "expected one of discrete, status_word"),
    ({"inputs": "status_word", "cycle_bit": 16}, "bus[0].io.cycle_bit", "out of range [-1, 15]"),
    ({"cycle_bit": 128}, "bus[0].io.cycle_bit", "out of range [-1, 127]"),
    ({"function": 2, "inputs": "status_word", "cycle_bit": 1}, "bus[0].io.function", "out of range [3, 4]"),
])
def test_io_config_mistakes_name_their_key_and_reason(io: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_bus(config("/dev/ttyS9", io={"host": "x", **io}), CTX)
    assert err.value.key == key and reason in err.value.reason


def test_io_inputs_default_to_discrete_and_the_status_word_is_explicit() -> None:
    discrete = make_bus(config("/dev/ttyS9", io={"host": "x", "address": 100, "cycle_bit": 20, "ignition_bit": 2}), CTX)
    word = make_bus(config("/dev/ttyS9", io={"host": "x", "inputs": "status_word", "register": 7, "cycle_bit": 1}),
                    CTX)
    assert isinstance(discrete, GnssBus) and isinstance(word, GnssBus)
    d, w = discrete.config.io, word.config.io
    assert d is not None and (d.inputs, d.function, d.address, d.count) == ("discrete", 2, 100, 21)
    assert w is not None and (w.inputs, w.function, w.address) == ("status_word", 4, 7)


def test_an_agent_config_mistake_names_the_file(tmp_path: Path) -> None:
    from edge_agent.config import AgentConfigError, load_config

    file = tmp_path / "vehicle.toml"
    file.write_text(
        '[gateway]\nid = "truck-7"\ncommune = "21231"\n'
        '[uplink]\nurl = "https://collector.example/ingest"\ntoken = "t"\n'
        '[[bus]]\nname = "gps"\ntype = "gnss"\nport = "/dev/ttyACM0"\n'
        '[bus.io]\nhost = "192.168.1.20"\nfunction = 4\ncycle_bit = 1\n'
    )
    with pytest.raises(AgentConfigError) as err:
        load_config(file)
    assert (err.value.file, err.value.key) == (str(file), "bus[0].io.function")
    assert 'only with inputs = "status_word"' in err.value.reason
