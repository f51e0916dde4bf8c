"""Shared by the uplink tests: a real collector (SQLite store, aiohttp on a free port) with one registered gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from collector.app import create_app, start
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token, new_token

GATEWAY = "gw-uplink-1"
COMMUNE = "21231"


@dataclass
class Collector:
    url: str
    token: str
    store: SqliteStore
    session: aiohttp.ClientSession

    async def post(self, body: bytes, encoding: str) -> tuple[int, str, dict[str, object]]:
        """POST a batch body as sent; (status, content type, JSON answer)."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                   "Content-Encoding": encoding}
        async with self.session.post(f"{self.url}/api/v1/batches", data=body, headers=headers) as resp:
            return resp.status, resp.content_type, await resp.json(content_type=None)


@asynccontextmanager
async def real_collector(folder: Path) -> AsyncIterator[Collector]:
    async with SqliteStore(folder / "collector.db") as store:
        token = new_token()
        await store.add_gateway(GATEWAY, COMMUNE, hash_token(token))
        runner, url = await start(create_app(store, max_body_bytes=1_000_000), "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                             auto_decompress=False) as session:
                yield Collector(url, token, store, session)
        finally:
            await runner.cleanup()


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """(CA file, server certificate, server key): a P-256 CA and a certificate it signed for 127.0.0.1."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]
    names = [x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) for cn in ("uplink-test-ca", "collector")]
    certs = [x509.CertificateBuilder().subject_name(names[i]).issuer_name(names[0]).public_key(keys[i].public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=i == 0, path_length=None), critical=True)
             for i in range(2)]
    certs[1] = certs[1].add_extension(
        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    signed = [c.sign(keys[0], hashes.SHA256()) for c in certs]
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(signed[0].public_bytes(pem))
    paths[1].write_bytes(signed[1].public_bytes(pem))
    paths[2].write_bytes(keys[1].private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths
