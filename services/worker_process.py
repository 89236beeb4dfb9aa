"""A ``claimwatch worker`` run as a subprocess, the way the integration tests, the benchmarks and the soak
drive it: in its own process group, with its own state dir and web port; ready when /health reports the
reference loaded and the log says "Worker ready"; read through /metrics; stopped with SIGTERM (SIGKILL when
it does not stop in time)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Self

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLAIMWATCH = str(Path(sys.executable).parent / "claimwatch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_total(
    read: Callable[[], Decimal],
    at_least: float,
    timeout: float,
    describe: Callable[[], str],
    *,
    exited: Callable[[], str | None] = lambda: None,
    failure: type[Exception] = AssertionError,
    interval: float = 0.2,
) -> Decimal:
    """Poll ``read()`` until it reaches ``at_least``; raise ``failure`` with ``describe()`` after ``timeout``
    seconds, or at once with the log tail when ``exited()`` says a worker stopped. A read that cannot connect
    (the worker's web server not up yet) counts as 0."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except OSError:
            value = Decimal(0)
        if value >= at_least:
            return value
        tail = exited()
        if tail is not None:
            raise failure(f"worker exited: {tail}")
        if time.monotonic() > deadline:
            raise failure(f"reached {value}, expected >= {at_least}: {describe()}")
        time.sleep(interval)


class WorkerProcess:
    failure: type[Exception] = RuntimeError
    """What ``start`` and ``wait_for_metric`` raise (the tests' subclass raises AssertionError)."""

    def __init__(self, env: Mapping[str, str], state_dir: Path, log_path: Path, name: str = "worker") -> None:
        self.name = name
        self.port = free_port()
        self.state_dir = state_dir
        self.log_path = log_path
        self.env = dict(env, CLAIMWATCH_WEB_PORT=str(self.port), CLAIMWATCH_STATE_DIR=str(state_dir))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [CLAIMWATCH, "worker"]

    def start(self, wait: float = 90.0) -> Self:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                self.command(), env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self.failure(f"worker {self.name} exited ({self.process.returncode}): {self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.5)
        raise self.failure(f"worker {self.name} not ready after {wait:.0f} s: {self.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                body = json.loads(response.read())
            return bool(body.get("reference", {}).get("loaded")) and "Worker ready" in self.log_path.read_text()
        except (OSError, ValueError):
            return False

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def metrics(self) -> str:
        return self.get("/metrics")[1].decode()

    def metric_total(self, name: str, **labels: str) -> Decimal:
        """Sum of the samples of ``name`` whose labels include ``labels``, exact (Decimal: some series are
        dollars)."""
        total = Decimal(0)
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            series, _, value = line.rpartition(" ")
            if all(f'{key}="{wanted}"' in series for key, wanted in labels.items()):
                total += Decimal(value)
        return total

    def wait_for_metric(self, name: str, at_least: float, timeout: float = 60.0, **labels: str) -> Decimal:
        return wait_for_total(
            lambda: self.metric_total(name, **labels),
            at_least,
            timeout,
            lambda: f"{name}{labels}: {self.log_tail(20)}",
            exited=self.exited,
            failure=self.failure,
        )

    def exited(self) -> str | None:
        """The log tail when the worker exited, None while it runs (or before it started)."""
        if self.process is not None and self.process.poll() is not None:
            return self.log_tail()
        return None

    def stop(self, timeout: float = 30.0) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Workers:
    """Several workers of one consumer group seen as one: their metrics summed; a wait fails at once when one
    of them exited."""

    def __init__(self, members: Sequence[WorkerProcess]) -> None:
        self.members = list(members)

    def exited(self) -> str | None:
        """The log tail of a worker that exited, None while all of them run."""
        return next((tail for tail in (member.exited() for member in self.members) if tail is not None), None)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(member.log_tail(lines) for member in self.members)

    def metric_total(self, name: str, **labels: str) -> Decimal:
        return sum((member.metric_total(name, **labels) for member in self.members), Decimal(0))

    def wait_for_metric(self, name: str, at_least: float, timeout: float = 60.0, **labels: str) -> Decimal:
        return wait_for_total(
            lambda: self.metric_total(name, **labels),
            at_least,
            timeout,
            lambda: f"{name}{labels}: {self.log_tail(20)}",
            exited=self.exited,
            failure=self.members[0].failure,
        )
