"""Over https the uploader resumes its TLS session when it reconnects: a batch that waited longer than
the collector's keep-alive reconnects, and must not pay for the certificate chain each time.

The real collector served over TLS (a CA and a server certificate made here), a real journal and uploader."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from aiohttp import web
from uplink_kit import COMMUNE, GATEWAY, tls_files

from citygate_wire.common import now_ms
from collector.app import create_app
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token, new_token
from drivers.model import Sample
from edge_agent.clock import SystemClock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal
from edge_agent.uploader import ResumingHTTPSConnection, Uploader


async def test_a_reconnection_resumes_the_tls_session_and_costs_less(tmp_path: Path) -> None:
    ca_file, certfile, keyfile = tls_files(tmp_path / "pki")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certfile, keyfile)
    async with SqliteStore(tmp_path / "collector.db") as store, Journal(tmp_path / "journal.db") as journal:
        token = new_token()
        await store.add_gateway(GATEWAY, COMMUNE, hash_token(token))
        # a keep-alive shorter than the wait between batches: every batch reconnects
        runner = web.AppRunner(create_app(store), auto_decompress=False, keepalive_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
        url = f"https://127.0.0.1:{runner.addresses[0][1]}"
        try:
            uplink = UplinkConfig(url, token, ca_file=ca_file, interval_s=0.1, timeout_s=5)
            up = Uploader(GatewayConfig(GATEWAY, COMMUNE, tmp_path / "state"), uplink, journal, SystemClock())
            received, reused = [], []
            for n in range(3):
                journal.append_many(Sample("lamp-001", now_ms() - 1000 + i, {"power_w": 41.9 + i}) for i in range(10))
                await journal.flush()
                before = up.usage.counts.received_today
                assert await up.upload_once() == 10
                conn = up._conn
                assert isinstance(conn, ResumingHTTPSConnection) and isinstance(conn.sock, ssl.SSLSocket)
                reused.append(conn.sock.session_reused)
                up._close()
                received.append(up.usage.counts.received_today - before)
                await asyncio.sleep(0.3 if n < 2 else 0)
            assert reused == [False, True, True]
            # a resumed handshake carries no certificate: several hundred bytes less from the collector
            assert received[1] < received[0] - 300 and received[2] < received[0] - 300, received
            assert (await store.count_records()).samples == 30
        finally:
            await runner.cleanup()
