"""The live adequacy path on the real broker: a simulated group with planted network gaps streams through a
worker, and the SCA-opportunity alert topic ends up holding exactly the planted opportunities (distance, count,
denial, Medicare Advantage access, recurrence, value), nothing more, each published once per change, and the
same opportunities as the offline ``claimwatch opportunities`` over the same input."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from schemas.claims import ClaimContext
from schemas.remittance import RemittanceEvent
from services.ingestion.x12 import parse_path
from services.settings import DEMO_HMAC_KEY
from services.simulate.generate import write_simulation
from tests.integration.support import Environment, Worker

CLAIMS = 600
OBSERVATIONS = "adequacy.observations"


def simulate(out: Path) -> tuple[dict, list[ClaimContext], list[RemittanceEvent]]:
    write_simulation(out, claims=CLAIMS, hmac_key=DEMO_HMAC_KEY)
    manifest = json.loads((out / "manifest.json").read_text())
    contexts = [ClaimContext.model_validate_json(line) for line in (out / "claims.jsonl").read_text().splitlines()]
    events = [
        item
        for path in sorted((out / "remittances").glob("*.835"))
        for item in parse_path(path, DEMO_HMAC_KEY.encode())
        if isinstance(item, RemittanceEvent)
    ]
    return manifest, contexts, events


def offline_opportunities(environment: Environment, reference: Path, contexts, events) -> dict[str, dict]:
    """``claimwatch price`` then ``claimwatch opportunities`` over the same contexts and remittances."""
    lines = [context.model_dump_json() for context in contexts] + [event.model_dump_json() for event in events]
    priced = environment.run("price", "--reference", str(reference), input_text="\n".join(lines) + "\n")
    evaluations = [line for line in priced.stdout.splitlines() if line.strip()]
    assert len(evaluations) == len(events)
    found = environment.run(
        "opportunities", "--reference", str(reference), input_text="\n".join(lines + evaluations) + "\n"
    )
    opportunities = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    return {item["opportunity_id"]: item for item in opportunities}


def identity(opportunity: dict) -> tuple[str, str, str, str]:
    return opportunity["rule"], opportunity["payer_id"], opportunity["specialty_group"], opportunity["region"]


def comparable(opportunity: dict) -> dict:
    """What must not depend on the order in which claims arrive: identity, period, claims and dollars (the
    evidence of a merged opportunity keeps the latest value of some fields, e.g. the recurrence window)."""
    fields = (
        "opportunity_id", "payer_id", "payer_group", "specialty_group", "region", "state", "county_fips", "rule",
        "period", "first_claim_date", "last_claim_date", "claim_count", "billed_amount", "paid_amount",
        "expected_amount", "expected_claim_count", "medicare_amount", "medicare_claim_count", "citations",
    )  # fmt: skip
    projection = {name: opportunity[name] for name in fields}
    projection["claims"] = sorted(opportunity["claims"], key=lambda ref: ref["payer_claim_id"])
    anchors = opportunity["anchors"]
    projection["anchors"] = {key: value for key, value in anchors.items() if key != "cited_gap"}
    if opportunity["rule"] == "value":  # recomputed over the whole period: everything is final
        projection["evidence"] = opportunity["evidence"]
        projection["cited_gap"] = anchors["cited_gap"]
    return projection


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` with ``labels`` in one /metrics scrape."""
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] == name and all(f'{key}="{wanted}"' in series for key, wanted in labels.items()):
            total += float(value)
    return total


def wait_until_drained(worker: Worker, environment: Environment, remittances: int, opportunities: int) -> None:
    """Every remittance consumed, every observation it produced consumed by the opportunity tracker, and the
    tracker holding ``opportunities`` (or the time out: the assertions that follow say what is missing)."""
    observations = environment.topic(OBSERVATIONS)
    deadline = time.monotonic() + 120
    while True:
        text = worker.metrics()  # one scrape per poll: a scrape costs the worker's event loop time
        consumed = metric(text, "claimwatch_events_in_total", topic=environment.topic("remittances"))
        sent = metric(text, "claimwatch_events_out_total", topic=observations)
        read = metric(text, "claimwatch_events_in_total", topic=observations)
        held = metric(text, "claimwatch_sca_opportunities_open")
        if (consumed >= remittances and read >= sent > 0 and held >= opportunities) or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def run_live(environment: Environment, *, restart_after: float | None = None) -> None:
    """Stream the simulated group through a worker (and, with ``restart_after``, stop it with SIGTERM after that
    share of the remittances and continue with a fresh worker that recovers the tables from their changelogs);
    then the alert topic holds exactly the planted opportunities, each revision published once."""
    out = environment.root / "world"
    manifest, contexts, events = simulate(out)
    planted = sorted(identity(item) for item in manifest["expected_opportunities"])
    assert {rule for rule, *_ in planted} == {
        "distance_gap", "count_gap", "denial_gap", "medicare_advantage_access", "recurrence", "value",
    }  # fmt: skip

    environment.run("topics", "create")
    environment.run("reference", "load", str(out / "reference"))
    worker = environment.worker().start()
    environment.produce("claims", [(c.partition_key.encode(), c.model_dump_json().encode()) for c in contexts])
    worker.wait_for_metric("claimwatch_events_in_total", len(contexts), topic=environment.topic("claims"))
    records = [(e.partition_key.encode(), e.model_dump_json().encode()) for e in events]
    split = len(records) if restart_after is None else int(len(records) * restart_after)
    environment.produce("remittances", records[:split])
    offline = offline_opportunities(environment, out / "reference", contexts, events)  # while the worker works
    assert sorted(identity(item) for item in offline.values()) == planted
    if split < len(records):
        worker.wait_for_metric("claimwatch_events_in_total", split, timeout=120, topic=environment.topic("remittances"))
        time.sleep(2.0)  # let the observations of the last remittances reach the tracker before the stop
        worker.stop()
        assert "Traceback" not in worker.log_path.read_text(), worker.log_tail()
        worker = environment.worker("w2").start()  # its own state dir: the tables come from the changelogs
        environment.produce("remittances", records[split:])
        wait_until_drained(worker, environment, len(records) - split, len(planted))
    else:
        wait_until_drained(worker, environment, len(events), len(planted))
    assert "Traceback" not in worker.log_path.read_text(), worker.log_tail()

    alerts = environment.consume("alerts.sca-opportunity", timeout=60, idle=3.0)
    revisions: dict[str, list[int]] = defaultdict(list)
    final: dict[str, dict] = {}
    for record in alerts:
        opportunity = json.loads(record.value)
        rule, payer_id, specialty, region = identity(opportunity)
        assert record.key.decode() == f"{payer_id}|{specialty}|{region}|{rule}", "key: payer|specialty|region|rule"
        revisions[opportunity["opportunity_id"]].append(opportunity["revision"])
        final[opportunity["opportunity_id"]] = opportunity  # one key, one partition: the last is the latest
    for opportunity_id, seen in revisions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{opportunity_id}: published without a change: {seen}"

    assert sorted(identity(item) for item in final.values()) == planted, "live opportunities are not the planted ones"
    assert set(final) == set(offline), "live and offline opportunity ids differ"
    for opportunity_id, opportunity in final.items():
        assert comparable(opportunity) == comparable(offline[opportunity_id]), identity(opportunity)
    recurrence = [item for item in final.values() if item["rule"] == "recurrence"]
    assert all(item["evidence"]["claims_in_window"] >= 3 for item in recurrence)
    distance = [item for item in final.values() if item["rule"] == "distance_gap"]
    for item in distance:
        assert item["evidence"]["no_in_network_location"] or item["evidence"]["excess_miles_max"] > 0

    scrape = worker.metrics()  # after the alert topic went quiet
    assert metric(scrape, "claimwatch_sca_opportunities_open") == len(planted)
    assert metric(scrape, "claimwatch_sca_opportunities_open", rule="ma_access") == 1
    if restart_after is None:  # a counter of this worker's publications (the restarted one saw only the rest)
        assert metric(scrape, "claimwatch_sca_opportunities_total") == len(alerts)
    billed = sum(float(item["billed_amount"]) for item in final.values())
    assert abs(metric(scrape, "claimwatch_sca_opportunity_billed_dollars") - billed) < 0.01


def test_live_opportunities_are_exactly_the_planted_ones_and_the_offline_ones(environment: Environment):
    run_live(environment)


def test_live_opportunities_survive_a_restart_with_table_recovery(environment: Environment):
    run_live(environment, restart_after=0.5)
