"""The live underpayment path on the real broker: exactly the alerts the offline core predicts, once each,
across a worker restart (the claim state, e.g. the alert of a claim later reversed, lives on in the table)."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from schemas.evaluation import ClaimState
from services.pricing.reference import load_pricing_reference
from services.reference.files import read_folder
from services.underpayment.evaluate import apply_remittance, evaluate
from tests.integration.remittances import DEMO_REFERENCE, context, remittance
from tests.integration.support import PROJECT_ROOT, Environment

CODES = {"99213": Decimal("111.39"), "99214": Decimal("159.14"), "99215": Decimal("217.49")}


def build_stream(count: int, seed: int = 11) -> tuple[list, list]:
    """Claims paid at 55%-105% of the contract, some re-delivered, some reversed and corrected."""
    rng = random.Random(seed)
    contexts, events = [], []
    for index in range(count):
        claim_id = f"IT{index:05d}"
        code = rng.choice(sorted(CODES))
        expected = CODES[code]
        allowed = (expected * Decimal(rng.choice([55, 70, 90, 100, 100, 100, 105])) / 100).quantize(Decimal("0.01"))
        charge = (expected * 3).quantize(Decimal("0.01"))
        contexts.append(context(claim_id))
        original = remittance(claim_id, code, charge, allowed)
        events.append(original)
        if index % 10 == 3:
            events.append(original)  # re-delivered: must not alert twice
        if index % 10 == 7:
            events.append(remittance(claim_id, code, charge, allowed, status="22", sequence=1, sign=-1))
            events.append(remittance(claim_id, code, charge, expected, sequence=2))  # corrected: recovery
    return contexts, events


def offline_alerts(contexts, events) -> dict[str, dict]:
    reference = load_pricing_reference(read_folder(PROJECT_ROOT / DEMO_REFERENCE))
    by_key = {item.partition_key: item for item in contexts}
    states: dict[str, ClaimState] = {}
    alerts: dict[str, dict] = {}
    for event in events:
        state = states.get(event.claim_key)
        if state is not None and event.event_id in state.processed_event_ids:
            continue
        evaluation = evaluate(event, by_key.get(event.partition_key), reference)
        states[event.claim_key], alert, _ = apply_remittance(state, evaluation)
        if alert is not None:
            alerts[alert.alert_id] = alert.model_dump(mode="json")
    return alerts


def publish_contexts(environment: Environment, worker, contexts) -> None:
    """Claims are submitted before they are paid: wait until the worker holds every context."""
    environment.produce("claims", [(c.partition_key.encode(), c.model_dump_json().encode()) for c in contexts])
    worker.wait_for_metric("claimwatch_events_in_total", len(contexts), topic=environment.topic("claims"))


def publish(environment: Environment, events) -> None:
    environment.produce("remittances", [(e.partition_key.encode(), e.model_dump_json().encode()) for e in events])


def assert_alerts_match(environment: Environment, events, expected: dict[str, dict]) -> None:
    alerts = environment.consume_json("alerts.underpayment", expected=len(expected), timeout=120)
    ids = [alert["alert_id"] for alert in alerts]
    assert len(ids) == len(set(ids)), "an alert was emitted twice"
    assert set(ids) == set(expected), "live alerts differ from the offline core"
    for alert in alerts:
        assert alert | {"created_at": None} == expected[alert["alert_id"]] | {"created_at": None}
    distinct_events = {event.event_id for event in events}
    evaluations = environment.consume_json("evaluations", expected=len(distinct_events), timeout=120)
    assert sorted(e["event_id"] for e in evaluations) == sorted(distinct_events)


def test_alerts_match_the_offline_core_exactly_once(environment: Environment):
    contexts, events = build_stream(400)
    expected = offline_alerts(contexts, events)
    assert 50 < len(expected) < 400, "the stream must plant a realistic share of underpaid claims"
    environment.run("topics", "create")
    environment.run("reference", "load", str(PROJECT_ROOT / DEMO_REFERENCE))
    worker = environment.worker().start()
    publish_contexts(environment, worker, contexts)
    publish(environment, events)
    assert_alerts_match(environment, events, expected)


def test_alerts_match_the_offline_core_exactly_once_across_a_restart(environment: Environment):
    contexts, events = build_stream(400, seed=12)
    expected = offline_alerts(contexts, events)
    environment.run("topics", "create")
    environment.run("reference", "load", str(PROJECT_ROOT / DEMO_REFERENCE))
    worker = environment.worker().start()
    half = len(events) // 2
    publish_contexts(environment, worker, contexts)
    publish(environment, events[:half])
    worker.wait_for_metric("claimwatch_events_in_total", half, topic=environment.topic("remittances"))
    worker.stop()  # the new worker recovers the claim state (e.g. the alert of a claim later reversed)
    publish(environment, events[half:])
    environment.worker("w2").start()
    assert_alerts_match(environment, events, expected)


def test_bad_messages_go_to_the_dead_letter_topic_and_good_ones_are_processed(environment: Environment):
    environment.run("topics", "create")
    environment.run("reference", "load", str(PROJECT_ROOT / DEMO_REFERENCE))
    environment.worker().start()
    contexts, events = build_stream(5, seed=3)
    bad = [(b"k1", b"not json"), (b"k2", b'{"event_type": "remittance", "event_id": 5}'), (b"k3", b"x" * 1_100_000)]
    environment.produce("claims", [(c.partition_key.encode(), c.model_dump_json().encode()) for c in contexts])
    environment.produce(
        "remittances", bad[:1] + [(e.partition_key.encode(), e.model_dump_json().encode()) for e in events] + bad[1:]
    )
    letters = environment.consume_json("dead-letters", expected=3, timeout=60)
    reasons = sorted(letter["reason"] for letter in letters if letter["stage"] == "remittances")
    assert reasons == ["not_json", "oversized", "schema_violation"]
    evaluations = environment.consume_json("evaluations", expected=len({e.event_id for e in events}), timeout=60)
    assert {e["event_id"] for e in evaluations} == {e.event_id for e in events}


def test_demo_reference_is_present():
    assert (Path(PROJECT_ROOT) / DEMO_REFERENCE / "payers.csv").is_file()
