import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.settings import Settings
from services.topics import ALL_TOPICS, REFERENCE_PRICING, REMITTANCES, by_name

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_read_prefixed_environment(monkeypatch):
    monkeypatch.setenv("CLAIMWATCH_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("CLAIMWATCH_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("CLAIMWATCH_PARTITIONS", "8")
    settings = Settings()
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    assert settings.topic("remittances") == "t1.remittances"
    assert REMITTANCES.partition_count(settings) == 8
    assert REFERENCE_PRICING.partition_count(settings) == 1


def test_bad_settings_are_rejected(monkeypatch):
    monkeypatch.setenv("CLAIMWATCH_PARTITIONS", "0")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("CLAIMWATCH_PARTITIONS", "2")
    monkeypatch.setenv("CLAIMWATCH_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(ValidationError):
        Settings()


def test_every_setting_is_documented_in_readme():
    text = README.read_text()
    documented = set(re.findall(r"`(CLAIMWATCH_[A-Z0-9_]+)`", text))
    declared = {f"CLAIMWATCH_{name.upper()}" for name in Settings.model_fields}
    assert declared - documented == set(), "settings missing from README"


def test_topics_are_unique_and_reference_topics_are_compacted():
    names = [spec.name for spec in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert by_name("reference.pricing").topic_config()["cleanup.policy"] == "compact"
    assert by_name("remittances").topic_config()["cleanup.policy"] == "delete"
    with pytest.raises(KeyError):
        by_name("nope")


def test_every_topic_value_schema_resolves():
    for spec in ALL_TOPICS:
        for model in spec.value_models():
            assert hasattr(model, "model_json_schema"), (spec.name, model)
