"""`citygate-collector command-key`: the signing key is written 0600 and never overwritten, its public
half printed as the gateways' config line; `serve` refuses a key file it cannot trust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from click.testing import CliRunner

from citygate_wire.mqtt import Command, authenticate_command, encode_command, parse_public_key
from collector.cli import main
from collector.control.keys import load_key


def run(*args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(main, list(args))
    return done.exit_code, done.stdout, done.stderr


def test_init_writes_a_private_key_0600_and_prints_the_line_that_verifies_its_signatures(tmp_path: Path) -> None:
    key_file = tmp_path / "command.key"
    code, out, err = run("command-key", "init", "--key-file", str(key_file))
    assert code == 0, err
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert out.startswith('command_key = "') and "[mqtt]" in err
    public = parse_public_key(out.strip().split('"')[1])
    cmd = Command("c-1", "device.read", {"device": "m"}, 1_768_496_400_000, 1_768_496_460_000, "alice", "gw-a")
    signed = encode_command(cmd, load_key(key_file))
    assert authenticate_command(signed, (public,), "gw-a", cmd.issued_at_ms, 0) == cmd
    assert run("command-key", "show", "--key-file", str(key_file))[1] == out


def test_init_never_replaces_a_key_every_gateway_already_trusts(tmp_path: Path) -> None:
    key_file = tmp_path / "command.key"
    assert run("command-key", "init", "--key-file", str(key_file))[0] == 0
    before = key_file.read_bytes()
    code, _, err = run("command-key", "init", "--key-file", str(key_file))
    assert code == 1 and "exists" in err
    assert key_file.read_bytes() == before


def test_show_and_serve_refuse_a_key_others_may_read_or_that_is_no_key(tmp_path: Path) -> None:
    key_file = tmp_path / "command.key"
    assert run("command-key", "init", "--key-file", str(key_file))[0] == 0
    key_file.chmod(0o640)
    code, _, err = run("command-key", "show", "--key-file", str(key_file))
    assert code == 1 and "mode 0640" in err
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(orjson.dumps({"not": "a key"}))
    garbage.chmod(0o600)
    serve = subprocess.run(
        [str(Path(sys.executable).parent / "citygate-collector"), "serve", "--db", str(tmp_path / "c.db"), "--port", "0",
         "--mqtt-url", "mqtt://127.0.0.1:9", "--mqtt-password-file", str(garbage), "--command-key-file", str(garbage)],
        capture_output=True, text=True, timeout=60)
    assert serve.returncode == 2, serve.stderr
    assert "--command-key-file" in serve.stderr and "not an unencrypted PEM private key" in serve.stderr
    assert "Traceback" not in serve.stderr
