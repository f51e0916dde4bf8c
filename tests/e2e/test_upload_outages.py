"""The journal drains into the collector exactly once, through collector outages, kills and TLS mistakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.app import create_app
from collector.store import open_store
from drivers.model import Event, Sample, Severity
from edge_agent.clock import SystemClock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal
from edge_agent.uploader import Uploader
from simulators.procs import add_gateway, free_port, start_collector
from tests.e2e.e2e_kit import stored_samples, stored_seqs

TS = 1_764_000_000_000
GW = "gw-e2e-1"


def records(n: int, start: int = 0) -> list[Sample | Event]:
    out: list[Sample | Event] = []
    for i in range(start, start + n):
        if i % 500 == 499:
            out.append(Event(f"lamp-{i % 50}", TS + i, "lamp_failure", Severity.MAJOR, {"i": i}))
        else:
            out.append(Sample(f"lamp-{i % 50}", TS + i, {"level_pct": i % 101, "power_w": i / 8}))
    return out


def uplink(port: int, token: str, *, scheme: str = "http", ca: Path | None = None, batch: int = 1000) -> UplinkConfig:
    return UplinkConfig(url=f"{scheme}://127.0.0.1:{port}", token=token, ca_file=ca, interval_s=0.05,
                        timeout_s=5, batch_max_records=batch, backoff_max_s=0.4)


async def drained(journal: Journal, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await journal.stats()).records:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"journal not drained: {await journal.stats()}")
        await asyncio.sleep(0.1)


async def journal_seqs(journal: Journal) -> list[int]:
    stats = await journal.stats()
    assert stats.first_seq is not None and stats.last_seq is not None
    return list(range(stats.first_seq, stats.last_seq + 1))


async def test_backlog_drains_in_order_once_the_collector_comes_back(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    token = await asyncio.to_thread(add_gateway, str(db), GW, "21231", tmp_path / "token")
    port = free_port()
    gateway = GatewayConfig(GW, "21231", tmp_path / "state")
    async with Journal(gateway.state_dir / "journal.db") as journal:
        uploader = Uploader(gateway, uplink(port, token), journal, SystemClock())
        task = asyncio.create_task(uploader.run())
        try:
            sent = records(5000)
            journal.append_many(sent)
            await journal.flush()
            expected = await journal_seqs(journal)
            await asyncio.sleep(1.0)  # collector down: attempts fail, nothing is deleted
            assert uploader.state.consecutive_failures >= 2
            assert (await journal.stats()).records == 5000
            proc, _ = await asyncio.to_thread(start_collector, str(db), port=port)
            try:
                await drained(journal, 60)
            finally:
                proc.stop()
        finally:
            task.cancel()
    assert stored_seqs(db, GW) == expected  # every record once, no gap, no duplicate
    samples = stored_samples(db, GW)
    first_sample = next(r for r in sent if isinstance(r, Sample))
    assert samples[expected[0]] == (first_sample.device, first_sample.ts_ms, dict(first_sample.values))


async def test_collector_killed_mid_batch_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    token = await asyncio.to_thread(add_gateway, str(db), GW, "21231", tmp_path / "token")
    port = free_port()
    gateway = GatewayConfig(GW, "21231", tmp_path / "state")
    async with Journal(gateway.state_dir / "journal.db") as journal:
        journal.append_many(records(60_000))
        await journal.flush()
        expected = await journal_seqs(journal)
        uploader = Uploader(gateway, uplink(port, token, batch=2000), journal, SystemClock())
        task = asyncio.create_task(uploader.run())
        try:
            kills = 0
            for _ in range(6):
                proc, _ = await asyncio.to_thread(start_collector, str(db), port=port)
                # let it take part of the backlog, then kill it while batches are in flight
                before = (await journal.stats()).records
                while (await journal.stats()).records > max(before - 8000, 0) and proc.popen.poll() is None:
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(proc.kill9)
                kills += 1
            proc, _ = await asyncio.to_thread(start_collector, str(db), port=port)
            try:
                await drained(journal, 90)
            finally:
                proc.stop()
        finally:
            task.cancel()
    assert kills == 6
    assert stored_seqs(db, GW) == expected


# -- TLS ---------------------------------------------------------------------------------------

def _cert(subject: str, issuer_key: ec.EllipticCurvePrivateKey | None, issuer: x509.Name | None,
          *, ca: bool, san: str | None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


def _pem(path: Path, *objs: object) -> Path:
    out = b""
    for obj in objs:
        if isinstance(obj, x509.Certificate):
            out += obj.public_bytes(serialization.Encoding.PEM)
        elif isinstance(obj, ec.EllipticCurvePrivateKey):
            out += obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    path.write_bytes(out)
    return path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca_key, ca = _cert("citygate test CA", None, None, ca=True, san=None)
    srv_key, srv = _cert("localhost", ca_key, ca.subject, ca=False, san="localhost")
    other_key, other = _cert("elsewhere", ca_key, ca.subject, ca=False, san="elsewhere.example")
    return {
        "ca": _pem(tmp_path / "ca.pem", ca),
        "server": _pem(tmp_path / "server.pem", srv, srv_key),
        "wrong_host": _pem(tmp_path / "wrong.pem", other, other_key),
    }


async def _tls_collector(db: Path, cert: Path, port: int) -> tuple[web.AppRunner, object]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert)
    store = open_store(str(db))
    await store.__aenter__()
    runner = web.AppRunner(create_app(store), auto_decompress=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
    return runner, store


@pytest.mark.parametrize(
    ("cert", "use_ca", "host", "ok"),
    [
        ("server", True, "localhost", True),    # our CA file: verified, uploads
        ("server", False, "localhost", False),  # system CAs do not know the test CA: refused
        ("wrong_host", True, "localhost", False),  # valid chain, wrong host name: refused
    ],
)
async def test_https_verifies_the_collector_and_never_falls_back(
    tmp_path: Path, pki: dict[str, Path], cert: str, use_ca: bool, host: str, ok: bool
) -> None:
    db = tmp_path / "collector.db"
    token = await asyncio.to_thread(add_gateway, str(db), GW, "21231", tmp_path / "token")
    port = free_port()
    runner, store = await _tls_collector(db, pki[cert], port)
    gateway = GatewayConfig(GW, "21231", tmp_path / "state")
    up = UplinkConfig(url=f"https://{host}:{port}", token=token, ca_file=pki["ca"] if use_ca else None,
                      interval_s=0.05, timeout_s=5, backoff_max_s=0.3)
    try:
        async with Journal(gateway.state_dir / "journal.db") as journal:
            journal.append_many(records(10))
            await journal.flush()
            uploader = Uploader(gateway, up, journal, SystemClock())
            task = asyncio.create_task(uploader.run())
            try:
                if ok:
                    await drained(journal, 30)
                else:
                    await asyncio.sleep(1.5)
                    assert uploader.state.consecutive_failures >= 2
                    assert "certificate" in (uploader.state.last_error or "").lower()
                    assert (await journal.stats()).records == 10  # kept for later, not sent in clear
            finally:
                task.cancel()
    finally:
        await runner.cleanup()
        await store.__aexit__(None, None, None)  # type: ignore[attr-defined]
    assert len(stored_seqs(db, GW)) == (10 if ok else 0)


async def test_oversize_batches_shrink_and_a_malformed_record_is_set_aside_and_reported(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    token = await asyncio.to_thread(add_gateway, str(db), GW, "21231", tmp_path / "token")
    proc, url = await asyncio.to_thread(start_collector, str(db), extra=["--max-body-bytes", "20000"])
    gateway = GatewayConfig(GW, "21231", tmp_path / "state")
    try:
        async with Journal(gateway.state_dir / "journal.db") as journal:
            journal.append_many(records(100))
            journal.append(Sample("lamp-x", 0, {"level_pct": 70}))  # a gateway whose clock said 1970
            journal.append_many(records(900, start=100))
            await journal.flush()
            up = UplinkConfig(url=url, token=token, interval_s=0.05, timeout_s=5, backoff_max_s=0.3,
                              batch_max_records=5000, batch_max_bytes=2_000_000)  # larger than the collector takes
            uploader = Uploader(gateway, up, journal, SystemClock())
            task = asyncio.create_task(uploader.run())
            try:
                await drained(journal, 60)
            finally:
                task.cancel()
    finally:
        proc.stop()
    samples = stored_samples(db, GW)
    assert len(samples) == 998  # 1000 good records, 2 of them events (i % 500 == 499)
    assert all(ts > 0 for _, ts, _ in samples.values())
    con = sqlite3.connect(db)
    codes = [r[0] for r in con.execute("SELECT code FROM events")]
    assert codes.count("record_rejected") == 1 and codes.count("lamp_failure") == 2
    local = sqlite3.connect(gateway.state_dir / "journal.db")
    reasons = [r[0] for r in local.execute("SELECT reason FROM rejected")]
    assert len(reasons) == 1 and reasons[0].startswith("/records/")
