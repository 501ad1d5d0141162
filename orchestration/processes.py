"""Services in child processes, started and health-checked the same way by the demo and the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Service:
    command: list[str]
    health_url: str
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(process.args)} exited with {process.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become healthy within {timeout:.0f}s")
        time.sleep(0.3)


@contextmanager
def _started(service: Service) -> Iterator[subprocess.Popen]:
    with ExitStack() as stack:
        log = stack.enter_context(open(service.log_path, "ab")) if service.log_path else None
        process = subprocess.Popen(service.command, env={**os.environ, **service.env}, stdout=log, stderr=log)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def running(services: Sequence[Service], timeout: float = 300) -> Iterator[list[subprocess.Popen]]:
    """Start every service at once, yield when all answer their health URL, stop them all after."""
    with ExitStack() as stack:
        processes = [stack.enter_context(_started(service)) for service in services]
        for service, process in zip(services, processes, strict=True):
            wait_until_healthy(service.health_url, process, timeout)
        yield processes
