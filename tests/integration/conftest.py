from __future__ import annotations

import pytest

from tests.integration.support import BOOTSTRAP, Environment, broker_reachable


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> str:
    if not broker_reachable():
        pytest.fail(f"Kafka broker not reachable at {BOOTSTRAP}: run `make test` (it starts one) or `make kafka-start`")
    return BOOTSTRAP


@pytest.fixture
def environment(broker, tmp_path) -> Environment:
    environment = Environment(root=tmp_path)
    yield environment
    for worker in environment.workers:
        worker.stop()
    environment.delete_topics()
    for worker_log in tmp_path.glob("*.log"):
        text = worker_log.read_text()
        if "Traceback" in text:
            print(f"--- {worker_log.name} contains a traceback ---\n{text[-4000:]}")
