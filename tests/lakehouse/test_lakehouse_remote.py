"""The jobs run unchanged against a remote Spark Connect endpoint (a Sail server in another process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
from deltalake import DeltaTable

from tests.lakehouse import sources


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ingest_through_a_remote_spark_connect_server(lakehouse):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "pysail", "spark", "server", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and server.poll() is None, "Sail server did not start"
            time.sleep(0.2)
        sources.raw_outbox(120)
        env = {**os.environ, "MARKETLAKE_SPARK_REMOTE": f"sc://127.0.0.1:{port}"}
        result = subprocess.run([sys.executable, "-m", "orchestration.cli", "lakehouse", "ingest", "--feed", "outbox"],
                                env=env, capture_output=True, text=True, timeout=300, check=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert json.loads(result.stdout)[0]["rows"] == 120
    table = DeltaTable(str(lakehouse / "bronze" / "outbox")).to_pyarrow_table(columns=["event_id"])
    assert Counter(table.column("event_id").to_pylist()) == Counter(sources.outbox_event_ids())
