"""Run a real Prometheus (the Debian package's /usr/bin/prometheus) in tests, and query it.

    with running_prometheus(["127.0.0.1:6066"], tmp_path) as prom:
        wait_for(lambda: query(prom.url, "claimwatch_worker_up"), timeout=30)
        firing = [a for a in alerts(prom.url) if a["state"] == "firing"]

The temporary config scrapes the targets as job ``claimwatch`` (the job the alert rules and dashboards
select) every second, loads the project's alert rules (deploy/prometheus/rules/*.yml) and evaluates them
every second. Only the standard library is used (urllib).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = PROJECT_ROOT / "deploy" / "prometheus" / "rules"
DEFAULT_RULE_FILES: tuple[Path, ...] = tuple(sorted(RULES_DIR.glob("*.yml")))
JOB_NAME = "claimwatch"

T = TypeVar("T")


def prometheus_binary() -> str | None:
    """Path of the prometheus server binary ($PROMETHEUS_BIN, else on PATH), or None."""
    explicit = os.environ.get("PROMETHEUS_BIN")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("prometheus")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrometheusHandle:
    url: str
    """Base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
    config_path: Path
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def write_config(
    path: Path,
    scrape_targets: Sequence[str],
    rule_files: Sequence[Path | str],
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    alertmanagers: Sequence[str] = (),
) -> Path:
    config: dict = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(rule_file).resolve()) for rule_file in rule_files],
        "scrape_configs": [
            {
                "job_name": JOB_NAME,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(scrape_targets)}],
            }
        ],
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def running_prometheus(
    scrape_targets: Sequence[str],
    tmp_path: Path,
    rule_files: Sequence[Path | str] | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    alertmanagers: Sequence[str] = (),
    startup_timeout: float = 60.0,
    binary: str | None = None,
) -> Iterator[PrometheusHandle]:
    """Start Prometheus on a free 127.0.0.1 port, scraping ``scrape_targets``; stop it on exit.

    ``rule_files`` defaults to the project's rules; pass ``()`` for none. Storage lives in ``tmp_path``.
    Raises RuntimeError (with the log) when Prometheus is missing or does not become ready.
    """
    binary = binary or prometheus_binary()
    if not binary:
        raise RuntimeError("prometheus binary not found (install the Debian package 'prometheus')")
    workdir = Path(tmp_path) / f"prometheus-{os.getpid()}-{time.monotonic_ns()}"
    workdir.mkdir(parents=True)
    config_path = write_config(
        workdir / "prometheus.yml",
        scrape_targets,
        DEFAULT_RULE_FILES if rule_files is None else rule_files,
        scrape_interval,
        evaluation_interval,
        alertmanagers,
    )
    log_path = workdir / "prometheus.log"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between free_port() and the bind: retry
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        handle = PrometheusHandle(url, config_path, log_path, process)
        try:
            if _wait_ready(handle, startup_timeout):
                break
            last_error = handle.log()[-3000:]
        except BaseException:
            _stop(process)
            raise
        _stop(process)
    else:
        raise RuntimeError(f"prometheus did not become ready; log:\n{last_error}")
    try:
        yield handle
    finally:
        _stop(process)


def _wait_ready(handle: PrometheusHandle | AlertmanagerHandle, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{handle.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- HTTP API helpers ---------------------------------------------------------------------------------------
class PrometheusQueryError(RuntimeError):
    pass


def api_get(url: str, path: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> object:
    """GET ``url + path`` from the HTTP API and return its ``data`` (raises PrometheusQueryError)."""
    full = f"{url}{path}"
    if params:
        full += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(full, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:  # 400/422: bad query, with a JSON error body
        try:
            body = json.load(error)
        except ValueError:
            raise PrometheusQueryError(f"{path}: HTTP {error.code}") from error
    if body.get("status") != "success":
        raise PrometheusQueryError(f"{path} {params or ''}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(url: str, expr: str, at: float | None = None) -> list[dict]:
    """Instant query: the ``result`` list ([{"metric": {...}, "value": [ts, "v"]}, ...]; [] when empty)."""
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    data = api_get(url, "/api/v1/query", params)
    result = data["result"]
    if data["resultType"] == "scalar":  # a bare number: one sample without labels
        return [{"metric": {}, "value": result}]
    return result


def alerts(url: str) -> list[dict]:
    """Active alerts (pending and firing): [{"labels": {...}, "annotations": {...}, "state": ...}, ...]."""
    return api_get(url, "/api/v1/alerts")["alerts"]


def firing_alerts(url: str, alertname: str | None = None) -> list[dict]:
    return [
        alert
        for alert in alerts(url)
        if alert["state"] == "firing" and (alertname is None or alert["labels"].get("alertname") == alertname)
    ]


def targets(url: str) -> list[dict]:
    return api_get(url, "/api/v1/targets")["activeTargets"]


def rule_groups(url: str) -> list[dict]:
    return api_get(url, "/api/v1/rules")["groups"]


def label_values(url: str, label: str, match: str | None = None) -> list[str]:
    params = {"match[]": match} if match else None
    return api_get(url, f"/api/v1/label/{urllib.parse.quote(label)}/values", params)


def wait_for(condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.5, message: str = "") -> T:
    """Call ``condition`` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout}s")
        time.sleep(interval)
        last = condition()
    return last


def wait_for_scrape(url: str, timeout: float = 30.0) -> list[dict]:
    """Wait until every target of job claimwatch has been scraped successfully at least once."""

    def all_up() -> list[dict]:
        active = [t for t in targets(url) if t["labels"].get("job") == JOB_NAME]
        return active if active and all(t["health"] == "up" for t in active) else []

    return wait_for(all_up, timeout, message="claimwatch targets not up")


# --- Alertmanager ---------------------------------------------------------------------------------------------
ALERTMANAGER_CONFIG = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def alertmanager_binary() -> str | None:
    """Path of the Alertmanager binary ($ALERTMANAGER_BIN; Debian names it prometheus-alertmanager), or None."""
    explicit = os.environ.get("ALERTMANAGER_BIN")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@dataclass
class AlertmanagerHandle:
    url: str
    """Base URL, e.g. http://127.0.0.1:41235; Prometheus's alertmanagers target is url without http://."""
    config_path: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running_alertmanager(
    tmp_path: Path, config: Path | str = ALERTMANAGER_CONFIG, startup_timeout: float = 60.0
) -> Iterator[AlertmanagerHandle]:
    """Start Alertmanager (no clustering) on a free 127.0.0.1 port with ``config``; stop it on exit."""
    binary = alertmanager_binary()
    if not binary:
        raise RuntimeError("alertmanager binary not found (install the Debian package 'prometheus-alertmanager')")
    workdir = Path(tmp_path) / f"alertmanager-{os.getpid()}-{time.monotonic_ns()}"
    workdir.mkdir(parents=True)
    log_path = workdir / "alertmanager.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={Path(config).resolve()}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    handle = AlertmanagerHandle(url, Path(config), log_path, process)
    try:
        if not _wait_ready(handle, startup_timeout):
            raise RuntimeError(f"alertmanager did not become ready; log:\n{handle.log()[-3000:]}")
        yield handle
    finally:
        _stop(process)


def post_alerts(url: str, alerts_: Sequence[dict]) -> None:
    """POST alerts ([{"labels": {...}, "annotations": {...}}]) to Alertmanager's API v2."""
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(list(alerts_)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def alertmanager_alerts(url: str) -> list[dict]:
    """Alerts held by Alertmanager, each with ``status`` {state, inhibitedBy, silencedBy} and ``receivers``."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=10) as response:
        return json.load(response)
