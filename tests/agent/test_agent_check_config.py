"""`citygate-agent check-config` catches what `run` would fail on, and what is unsafe: each case
exits 2 naming the file, the key and the reason, with no traceback; a usable but unsafe config
passes with a warning."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citygate_wire.mqtt import public_key_text

KEY = public_key_text(Ed25519PrivateKey.generate().public_key())


def config(uplink: str = 'url = "http://127.0.0.1:9"\ntoken = "secret"', mqtt: str | None = None,
           state_dir: str = "state") -> str:
    text = f'[gateway]\nid = "gw-test-1"\ncommune = "21231"\nstate_dir = "{state_dir}"\n\n[uplink]\n{uplink}\n'
    if mqtt is not None:
        text += f'\n[mqtt]\n{mqtt}\ncommand_key = "{KEY}"\n'
    return text


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent", "check-config", str(path)], capture_output=True,
                          text=True, timeout=60)


def not_pem(tmp: Path) -> str:
    (tmp / "ca.pem").write_text("this is not a certificate\n")
    return 'url = "https://collector.example.org"\ntoken = "secret"\nca_file = "ca.pem"'


def binary_token(tmp: Path) -> str:
    (tmp / "token").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe")
    return 'url = "http://127.0.0.1:9"\ntoken_file = "token"'


def fifo_token(tmp: Path) -> str:
    os.mkfifo(tmp / "token")
    return 'url = "http://127.0.0.1:9"\ntoken_file = "token"'


def two_line_token(tmp: Path) -> str:
    (tmp / "token").write_text("cgw_one\ncgw_two\n")
    return 'url = "http://127.0.0.1:9"\ntoken_file = "token"'


def state_dir_is_a_file(tmp: Path) -> str:
    (tmp / "state").write_text("oops")
    return config()


CASES: list[tuple[str, Callable[[Path], str], str, str]] = [
    ("uplink CA file not PEM", lambda t: config(not_pem(t)), "uplink.ca_file", "is not a PEM file"),
    ("mqtt CA file not PEM", lambda t: config(mqtt=f'url = "mqtts://127.0.0.1"\npassword = "p"\n'
                                                    f'ca_file = "{not_pem(t) and "ca.pem"}"'),
     "mqtt.ca_file", "is not a PEM file"),
    ("state_dir is a file", state_dir_is_a_file, "gateway.state_dir", "is not a directory"),
    ("state_dir under a file", lambda t: state_dir_is_a_file(t).replace('state_dir = "state"',
                                                                         'state_dir = "state/journal"'),
     "gateway.state_dir", "is not a directory"),
    ("binary token file", lambda t: config(binary_token(t)), "uplink.token_file", "binary"),
    ("token file that is a FIFO", lambda t: config(fifo_token(t)), "uplink.token_file", "is a FIFO"),
    ("token file of two lines", lambda t: config(two_line_token(t)), "uplink.token_file", "several lines"),
    ("token file that never ends", lambda t: config('url = "http://127.0.0.1:9"\ntoken_file = "/dev/zero"'),
     "uplink.token_file", "longer than 4096 bytes"),
    ("mqtt password file that never ends",
     lambda t: config(mqtt='url = "mqtt://127.0.0.1"\npassword_file = "/dev/zero"'),
     "mqtt.password_file", "longer than 4096 bytes"),
    ("5,000-deep arrays", lambda t: config() + "[watchdog]\nx = " + "[" * 5000 + "]" * 5000 + "\n", "",
     "nested too deeply"),
    ("5,000-deep inline tables", lambda t: config() + "[watchdog]\nx = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n", "",
     "nested too deeply"),
    ("http to another host", lambda t: config('url = "http://collector.example.org"\ntoken = "secret"'),
     "uplink.url", "clear text"),
    ("mqtt to another host", lambda t: config(mqtt='url = "mqtt://broker.example.org"\npassword = "p"'),
     "mqtt.url", "clear text"),
    ("credentials in the uplink URL", lambda t: config('url = "https://gw:secret@collector.example.org"\ntoken = "s"'),
     "uplink.url", "credentials in the URL"),
    ("credentials in the broker URL", lambda t: config(mqtt='url = "mqtts://gw:pw@broker.example.org"\npassword = "p"'),
     "mqtt.url", "credentials in the URL"),
    ("a command key that is not one", lambda t: config(mqtt='url = "mqtt://127.0.0.1"\npassword = "p"')
     .replace(KEY, "c2hvcnQ="), "mqtt.command_key", "32 bytes"),
]


@pytest.mark.parametrize(("case", "make", "key", "words"), CASES, ids=[c[0] for c in CASES])
def test_check_config_refuses_what_run_would_fail_on_with_exit_2_and_no_traceback(
    tmp_path: Path, case: str, make: Callable[[Path], str], key: str, words: str
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(make(tmp_path))
    done = check(path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert f"{path}: {key + ': ' if key else ''}" in done.stderr and words in done.stderr, done.stderr


def test_cleartext_to_another_host_passes_when_the_config_says_so(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(config('url = "http://10.1.2.3:8080"\ntoken = "s"\nallow_cleartext = true',
                           mqtt='url = "mqtt://10.1.2.3"\npassword = "p"\nallow_cleartext = true'))
    done = check(path)
    assert done.returncode == 0, done.stderr


def test_a_token_file_others_may_read_passes_with_a_warning(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("cgw_secret\n")
    path = tmp_path / "agent.toml"
    path.write_text(config('url = "http://127.0.0.1:9"\ntoken_file = "token"',
                           mqtt='url = "mqtt://127.0.0.1"\npassword_file = "token"'))
    os.chmod(token, 0o644)
    loose = check(path)
    os.chmod(token, 0o600)
    tight = check(path)
    assert loose.returncode == 0 and "ok" in loose.stdout
    assert f"warning: {path}: uplink.token_file: {token} has mode 0644" in loose.stderr
    assert "mqtt.password_file" in loose.stderr and "chmod 600" in loose.stderr
    assert tight.returncode == 0 and "warning" not in tight.stderr


def test_a_gateway_without_the_collectors_key_is_warned_that_it_refuses_every_command(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(config(mqtt='url = "mqtt://127.0.0.1"\npassword = "p"').replace(f'command_key = "{KEY}"\n', ""))
    done = check(path)
    assert done.returncode == 0
    assert "mqtt.command_key: missing: this gateway refuses every command" in done.stderr


def test_a_token_written_in_a_config_others_may_read_is_warned(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(config(mqtt='url = "mqtt://127.0.0.1"\npassword = "p"'))
    path.chmod(0o640)  # as install-gateway installs it: the technicians' group reads it
    loose = check(path)
    path.chmod(0o600)
    tight = check(path)
    assert loose.returncode == 0
    assert "uplink.token and mqtt.password written in the config" in loose.stderr
    assert "warning" not in tight.stderr


def test_run_says_the_same_warnings_in_its_log_at_start(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(config(mqtt='url = "mqtt://127.0.0.1:9"\npassword = "p"').replace(f'command_key = "{KEY}"\n', "")
                    + f'\n[local_api]\nsocket = "{tmp_path / "agent.sock"}"\n')
    path.chmod(0o600)
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert agent.stdout is not None
        lines = []
        for line in agent.stdout:
            lines.append(line)
            if "command_key" in line or len(lines) > 50:
                break
    finally:
        agent.terminate()
        agent.wait(30)
    assert any("level=warning" in line and "mqtt.command_key: missing" in line for line in lines), lines
