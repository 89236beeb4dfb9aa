"""claimwatch ingest against the real broker: the same events come back, dead letters too, no re-ingest."""

from __future__ import annotations

import json

from services.ingestion.synthetic import generate_835
from services.ingestion.x12 import parse_path
from services.settings import DEMO_HMAC_KEY
from tests.integration.support import Environment


def test_ingest_publishes_every_claim_once_and_skips_a_file_already_ingested(environment: Environment, tmp_path):
    good = tmp_path / "week1.835"
    good.write_text(generate_835(40, seed=5))
    text = generate_835(10, seed=6)
    broken = tmp_path / "week2.835"
    clp_start = text.index("CLP*")
    clp_end = text.index("~", clp_start)
    fields = text[clp_start:clp_end].split("*")
    fields[4] = "12.3.4"  # CLP04 paid amount that is not a number
    broken.write_text(text[:clp_start] + "*".join(fields) + text[clp_end:])
    state = {"CLAIMWATCH_STATE_DIR": str(tmp_path / "state")}

    environment.run("topics", "create")
    first = environment.run("ingest", str(good), str(broken), **state)
    assert "claims 40 = events 40 + dead letters 0" in first.stderr
    assert "claims 10 = events 9 + dead letters 1" in first.stderr

    expected, published = {}, 0
    for path in (good, broken):
        for item in parse_path(path, DEMO_HMAC_KEY.encode()):
            if item.event_type == "remittance":
                expected[item.event_id] = item.model_dump(mode="json", exclude={"ingested_at"})
            published += item.event_type != "dead_letter"
    records = environment.consume("remittances", expected=published, timeout=60)
    assert len(records) == published
    received = {}
    for record in records:
        event = json.loads(record.value)
        if event["event_type"] != "remittance":
            continue
        payee = event["payee"]["npi"] or event["payee"]["tax_id"]
        assert record.key.decode() == f"{payee}|{event['patient_control_number']}"
        assert event.pop("ingested_at") is not None
        received[event["event_id"]] = event
    assert len(received) == len(expected) == 49
    assert received == expected
    letters = environment.consume_json("dead-letters", expected=1, timeout=30)
    assert [letter["reason"] for letter in letters] == ["bad_amount"]
    assert letters[0]["location"]["file"] == "week2.835" and letters[0]["location"]["segment_index"] > 0

    again = environment.run("ingest", str(good), **state)
    assert "skipped, same content" in again.stderr
    forced = environment.run("ingest", "--force", str(good), **state)
    assert "claims 40 = events 40" in forced.stderr
    good_items = sum(1 for item in parse_path(good, DEMO_HMAC_KEY.encode()) if item.event_type != "dead_letter")
    total = published + good_items
    assert len(environment.consume("remittances", expected=total, timeout=60)) == total


def test_ingest_says_when_nothing_is_x12(environment: Environment, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not an 835")
    result = environment.run("ingest", str(junk), check=False, CLAIMWATCH_STATE_DIR=str(tmp_path / "s"))
    assert result.returncode == 2
    assert "could be read as X12 835" in result.stderr
