"""docker-compose.yml cannot run here (no Docker engine): check its structure and its consistency."""

from pathlib import Path

import yaml

from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_expected_services_are_declared():
    assert {"kafka", "worker", "prometheus", "alertmanager", "grafana", "demo-feeder"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_every_referenced_file_exists():
    for name, service in SERVICES.items():
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            assert (context / build["dockerfile"]).is_file(), f"{name}: dockerfile missing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_claimwatch_environment_matches_the_settings_module():
    fields = {f"CLAIMWATCH_{name.upper()}" for name in Settings.model_fields}
    env = SERVICES["worker"]["environment"]
    assert set(env) <= fields, f"unknown settings in compose: {set(env) - fields}"
    host, port = env["CLAIMWATCH_BOOTSTRAP_SERVERS"].split(":")
    assert host == "kafka"
    assert f"PLAINTEXT://kafka:{port}" in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    web_port = env["CLAIMWATCH_WEB_PORT"]
    assert f"{web_port}:{web_port}" in SERVICES["worker"]["ports"]
    assert env["CLAIMWATCH_WEB_HOST"] == "0.0.0.0"


def test_prometheus_scrapes_the_worker_port_and_uses_mounted_rules():
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    web_port = SERVICES["worker"]["environment"]["CLAIMWATCH_WEB_PORT"]
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert f"worker:{web_port}" in targets
    mounts = SERVICES["prometheus"]["volumes"]
    assert any(volume.startswith("./deploy/prometheus/rules:") for volume in mounts)


def test_grafana_provisioning_points_at_the_mounted_dashboards():
    mounts = dict(volume.split(":")[:2] for volume in SERVICES["grafana"]["volumes"])
    dashboards_mount = mounts["./deploy/grafana/dashboards"]
    providers = [
        yaml.safe_load(path.read_text())
        for path in (ROOT / "deploy/grafana/provisioning/dashboards").glob("*.y*ml")
    ]
    paths = [provider["options"]["path"] for config in providers for provider in config["providers"]]
    assert dashboards_mount in paths
