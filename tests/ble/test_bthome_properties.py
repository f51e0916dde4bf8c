"""BTHome decoder properties on arbitrary bytes: only DecodeError, a bad object keeps exactly the objects before it, JSON always."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import bthome
from drivers.errors import DecodeError
from edge_agent.cli import main


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=48))
def test_objects_before_a_bad_one_are_what_the_prefix_alone_decodes_to(objects: bytes) -> None:
    frame = bthome.decode(b"\x40" + objects)  # plain v2: the header never fails, so objects decide
    err = frame.error
    if err is None:
        return
    assert objects[err.offset:] == err.remaining and err.remaining[0] == err.object_id
    assert err.code in ("unknown_object", "truncated", "not_utf8", "bad_value")
    prefix = bthome.decode(b"\x40" + objects[: err.offset])
    assert prefix.error is None and prefix.measurements == frame.measurements


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_only_decode_error(data: bytes) -> None:
    try:
        bthome.decode(data)
    except DecodeError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=40))
def test_decode_bthome_json_is_always_json(data: bytes) -> None:
    result = CliRunner().invoke(main, ["decode", "bthome", "40" + data.hex(), "--json"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    assert ("object_error" in doc) == (bthome.decode(b"\x40" + data).error is not None)


def test_the_ble_readme_lists_every_bthome_object_with_its_quantity() -> None:
    readme = (Path(__file__).resolve().parents[2] / "drivers" / "README-ble.md").read_text(encoding="utf-8")
    for t in bthome.OBJECTS.values():
        assert f"| 0x{t.object_id:02X} | `{t.name}` |" in readme, t
