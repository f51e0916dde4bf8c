"""mqtts://: the broker's certificate and name are verified; a bad certificate or a cut handshake is
an error retried over TLS, never a clear-text connection that would show the gateway's token."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import uuid
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mqtt_testkit import Fleet, control, running_agent, wait_for

from citygate_wire.mqtt import COLLECTOR_IDENTITY, decode_state
from simulators.mosquitto import Mosquitto, TlsFiles

pytestmark = pytest.mark.timeout(120)



def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(folder: Path, cn: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cn}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
                     names: list[x509.GeneralName]) -> TlsFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("broker")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    certfile, keyfile = folder / "server.pem", folder / "server.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return TlsFiles(certfile, keyfile)


LOOPBACK = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]


def tls_broker(tmp_path: Path, fleet: Fleet, names: list[x509.GeneralName]) -> tuple[Mosquitto, Path]:
    ca_file, ca_key, ca = make_ca(tmp_path / "pki", "citygate-test-ca")
    pw, acl = fleet.write()
    b = Mosquitto(tmp_path / "tls-broker", password_file=pw, acl_file=acl,
                  tls=make_server_cert(tmp_path / "pki", ca_key, ca, names))
    return b, ca_file


async def test_with_the_right_ca_the_agent_connects_over_tls(tmp_path: Path, fleet: Fleet) -> None:
    broker, ca_file = tls_broker(tmp_path, fleet, LOOPBACK)
    with broker:
        async with running_agent(tmp_path, fleet, broker, mqtt={"ca_file": str(ca_file)}) as agent:
            assert control(agent).connected
            ctx = ssl.create_default_context(cafile=str(ca_file))
            async with aiomqtt.Client("127.0.0.1", broker.port, username=COLLECTOR_IDENTITY,
                                      password=fleet.collector_password, tls_context=ctx,
                                      identifier=f"op-{uuid.uuid4().hex[:6]}") as op:
                await op.subscribe("city/+/gw-a/state", qos=1)
                message = await asyncio.wait_for(anext(aiter(op.messages)), 20)
    assert isinstance(message.payload, bytes) and decode_state(message.payload).online


@pytest.mark.parametrize(("case", "words"), [
    ("untrusted-ca", "CERTIFICATE_VERIFY_FAILED"),
    ("wrong-name", "match"),
])
async def test_a_certificate_that_does_not_verify_is_refused_and_retried_never_in_clear(
    tmp_path: Path, fleet: Fleet, case: str, words: str
) -> None:
    broker, ca_file = tls_broker(tmp_path, fleet, [x509.DNSName("other.example")] if case == "wrong-name"
                                 else LOOPBACK)
    if case == "untrusted-ca":
        ca_file, _, _ = make_ca(tmp_path / "other-pki", "someone-else")
    with broker:
        async with running_agent(tmp_path, fleet, broker, mqtt={"ca_file": str(ca_file)},
                                 connected=False) as agent:
            link = control(agent)
            await wait_for(lambda: link.last_error is not None, 20, "a failed attempt")
            await asyncio.sleep(2.5)  # several attempts (backoff_max_s = 1)
            assert not link.connected and link.connections == 0
            assert words in (link.last_error or ""), link.last_error
    assert "as gw-a" not in broker.log()


async def test_a_cut_handshake_is_retried_over_tls_and_the_token_never_goes_out(
    tmp_path: Path, fleet: Fleet
) -> None:
    received: list[bytes] = []

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.append(await asyncio.wait_for(reader.read(65536), 5))
        finally:
            writer.close()  # no ServerHello: the handshake is cut

    server = await asyncio.start_server(cut, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fake = Mosquitto(tmp_path / "none", port=port, tls=TlsFiles(Path("x"), Path("y")))
    ca_file, _, _ = make_ca(tmp_path / "pki", "citygate-test-ca")
    async with server:
        async with running_agent(tmp_path, fleet, fake, mqtt={"ca_file": str(ca_file)}, connected=False) as agent:
            await wait_for(lambda: len(received) >= 3, 30, "three attempts")
            assert not control(agent).connected
    token = fleet.gateways["gw-a"].encode()
    assert all(chunk[:1] == b"\x16" for chunk in received), [c[:8] for c in received]  # TLS ClientHello
    assert not any(token in chunk or b"gw-a" in chunk for chunk in received)
