"""The decoder a read plan writes once per block gives exactly what Register.decode gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import VALUE_TYPES, WORD_ORDERS, decimals_for
from drivers.modbus.regmap import ReadBlock, Register

words16 = st.integers(0, 0xFFFF)
scales = st.sampled_from([1, 10, 0.1, 0.01, 0.001, 0.25, 1 / 3600, -1, 2.5])


@st.composite
def registers(draw: st.DrawFn) -> Register:
    vtype = draw(st.sampled_from(VALUE_TYPES))
    kind = draw(st.sampled_from(["plain", "bit", "dali"]))
    if kind == "bit":
        return Register("flag", 0, 3, "u16", "big", 1, "", False, bit=draw(st.integers(0, 15)))
    if kind == "dali":
        return Register("level_pct", 0, 3, "u16", "big", 1, "%", False, curve="dali")
    scale = draw(scales)
    # any quantity name a map accepts, and one no map would: the decoder never writes a name as code
    name = draw(st.sampled_from(["value", "power_w", "a'b", 'x"}; import os']))
    return Register(name, 0, 3, vtype, draw(st.sampled_from(WORD_ORDERS)), scale, "", False,
                    decimals=decimals_for(scale))


@given(registers(), st.lists(words16, min_size=4, max_size=4), st.integers(0, 2))
def test_a_plans_decoder_gives_what_decode_gives(reg: Register, words: list[int], at: int) -> None:
    expected = reg.decode(words, at)
    got = ReadBlock(3, 0, 4, ((reg, at),)).decode(words)[reg.name]
    assert got == expected and type(got) is type(expected)


@given(st.lists(words16, min_size=6, max_size=6))
def test_a_block_decodes_each_register_at_its_place(words: list[int]) -> None:
    regs = (
        (Register("a_v", 0, 3, "u16", "big", 0.1, "V", False, decimals=1), 0),
        (Register("b_wh", 0, 3, "u32", "little", 1, "Wh", False), 1),
        (Register("c_c", 0, 3, "s16", "big", 0.1, "°C", False, decimals=1), 3),
        (Register("d", 0, 3, "u16", "big", 1, "", False, bit=3), 4),
        (Register("e_w", 0, 3, "f32", "big", 1, "W", False), 4),
    )
    block = ReadBlock(3, 0, 6, regs)
    into: dict[str, object] = {}
    block.decode_into(words, into)  # type: ignore[arg-type]
    assert block.decode(words) == into == {r.name: r.decode(words, at) for r, at in regs}
