#!/usr/bin/env python3
"""Throughput of the pure pricing path on one core: price + evaluate + apply_remittance.

    python scripts/bench_price.py [--claims 20000] [--reference services/reference/demo] [--seed 7]

Builds N synthetic RemittanceEvent objects directly (no 835 parsing) against the demo reference: random
payer, practice ZIP, place of service (office or outpatient hospital), 1-6 lines of demo codes with
modifiers now and then (26/TC, 50, 80, 59), units, PR amounts, some AMT*B6, some CO-253, some secondary
(OA-23) and denied lines, 2% reversals each followed by a correction. The timed part is, per event:
``evaluate(event, context, reference)`` (which prices the claim) and ``apply_remittance(state, evaluation)``
with the claim state kept in a dict, as the live agent will. Prints claims/s and lines/s.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from schemas.claims import ClaimContext  # noqa: E402
from schemas.remittance import RemittanceEvent  # noqa: E402
from services.pricing.reference import load_pricing_folder  # noqa: E402
from services.underpayment.evaluate import apply_remittance, evaluate  # noqa: E402

ZIPS = ["77030", "75246", "78705", "78229", "33136", "33606", "32806", "30309", "85006", "85719", "80218", "28204"]
CENT = Decimal("0.01")


def build_events(count: int, reference, rng: random.Random) -> list[tuple[RemittanceEvent, ClaimContext]]:
    payers = sorted(reference.payers) or ["ACME1"]
    release = reference.medicare.years[max(reference.medicare.years)].rvu_release()
    codes = sorted({code for (code, modifier), row in release.rows.items() if row.status == "A" and not modifier})
    with_pctc = {code for (code, modifier) in release.rows if modifier == "26"}
    result = []
    claim_number = 0
    while len(result) < count:
        claim_number += 1
        payer = rng.choice(payers)
        pcn = f"PCN{claim_number:07d}"
        payer_claim_id = f"{payer}-{claim_number:08d}"
        lines = []
        for index in range(rng.randint(1, 6)):
            code = rng.choice(codes)
            modifiers = []
            if code in with_pctc and rng.random() < 0.5:
                modifiers.append(rng.choice(["26", "TC"]))
            elif rng.random() < 0.05:
                modifiers.append(rng.choice(["50", "80", "59"]))
            units = Decimal(rng.choice([1, 1, 1, 1, 2, 3]))
            charge = (Decimal(rng.randint(8000, 300000)) / 100).quantize(CENT)
            allowed = (charge * Decimal(rng.randint(25, 70)) / 100).quantize(CENT)
            pr = (allowed * Decimal(rng.choice([0, 10, 20, 30])) / 100).quantize(CENT)
            paid = allowed - pr
            adjustments = [{"group_code": "CO", "reason_code": "45", "amount": str(charge - allowed)}]
            if pr:
                adjustments.append({"group_code": "PR", "reason_code": "2", "amount": str(pr)})
            if rng.random() < 0.03:
                adjustments.append({"group_code": "OA", "reason_code": "23", "amount": "0"})
            line = {
                "line_index": index,
                "procedure_qualifier": "HC",
                "procedure_code": code,
                "modifiers": modifiers,
                "charge_amount": str(charge),
                "paid_amount": str(paid),
                "units": str(units),
                "service_date": "2025-05-14",
                "derived_allowed_amount": str(paid + pr),
                "reported_allowed_amount": str(allowed) if rng.random() < 0.5 else None,
                "adjustments": adjustments,
            }
            lines.append(line)
        event = {
            "event_id": f"evt-{claim_number}",
            "source": {"file": "bench.835", "segment_index": claim_number},
            "payment": {"amount": "0", "date": "2025-06-01"},
            "payer": {"id": payer, "name": payer},
            "payee": {"npi": "1999999999"},
            "patient_control_number": pcn,
            "status_code": "1",
            "charge_amount": str(sum(Decimal(line["charge_amount"]) for line in lines)),
            "paid_amount": str(sum(Decimal(line["paid_amount"]) for line in lines)),
            "payer_claim_id": payer_claim_id,
            "service_lines": lines,
        }
        context = ClaimContext(
            payee_id="1999999999",
            patient_control_number=pcn,
            place_of_service_code=rng.choice(["11", "11", "22", "19", "23"]),
            place_of_service_zip=rng.choice(ZIPS),
            product_type=rng.choice(["PPO", "HMO", "EPO"]),
        )
        original = RemittanceEvent.model_validate(event)
        result.append((original, context))
        if rng.random() < 0.02:  # reversal + correction
            negated = dict(event, event_id=f"evt-{claim_number}-rev", status_code="22")
            negated["charge_amount"] = str(-Decimal(event["charge_amount"]))
            negated["paid_amount"] = str(-Decimal(event["paid_amount"]))
            negated["service_lines"] = [
                dict(
                    line,
                    charge_amount=str(-Decimal(line["charge_amount"])),
                    paid_amount=str(-Decimal(line["paid_amount"])),
                    derived_allowed_amount=str(-Decimal(line["derived_allowed_amount"])),
                    reported_allowed_amount=None,
                    adjustments=[],
                )
                for line in lines
            ]
            result.append((RemittanceEvent.model_validate(negated), context))
            corrected = dict(event, event_id=f"evt-{claim_number}-corr")
            result.append((RemittanceEvent.model_validate(corrected), context))
    return result[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=20000)
    parser.add_argument("--reference", type=Path, default=PROJECT / "services" / "reference" / "demo")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    reference = load_pricing_folder(args.reference)
    load_seconds = time.perf_counter() - started
    events = build_events(args.claims, reference, random.Random(args.seed))
    line_count = sum(len(event.service_lines) for event, _ in events)

    # The pre-built input events stay alive for the whole run; freeze them so that the garbage collector
    # does not rescan them (a live worker drops each event after use).
    gc.collect()
    gc.freeze()
    states: dict = {}
    alerts = 0
    statuses: dict[str, int] = {}
    started = time.perf_counter()
    cpu_started = time.process_time()
    for event, context in events:
        evaluation = evaluate(event, context, reference)
        state, alert, _ = apply_remittance(states.get(evaluation.claim_key), evaluation)
        states[evaluation.claim_key] = state
        alerts += alert is not None
        statuses[evaluation.status] = statuses.get(evaluation.status, 0) + 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(f"reference loaded in {load_seconds:.3f} s from {args.reference}")
    print(f"{len(events)} claims, {line_count} lines in {elapsed:.2f} s wall, {cpu:.2f} s CPU, one core")
    rates = f"{len(events) / elapsed:,.0f} claims/s, {line_count / elapsed:,.0f} lines/s"
    cpu_rates = f"{len(events) / cpu:,.0f} claims/s, {line_count / cpu:,.0f} lines/s"
    print(f"wall: {rates}; CPU: {cpu_rates} (price + evaluate + apply_remittance)")
    print(f"alerts: {alerts}; claim statuses: {dict(sorted(statuses.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
