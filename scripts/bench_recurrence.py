#!/usr/bin/env python3
"""The adequacy tracker's recurrence rule alone (services/adequacy/agent.py ``_observe_recurrence``), no broker.

    PYTHONPATH=<tree> python scripts/bench_recurrence.py [--claims 2000] [--dates 100] [--batch 200]

One payer + specialty + region key receives ``--claims`` distinct claims (random claim keys) dated on
``--dates`` distinct days of one year, through an in-memory stand-in for services.streams.Batch (values shared
within a batch, decoded JSON for the key's record, ``scratch`` cleared every ``--batch`` claims as a commit
does). Prints the CPU time per claim in each quarter of the stream: with the work per claim proportional to
the claims of the window it grows quarter by quarter, with the panes' summaries it stays flat. Run it with
PYTHONPATH pointing at the tree to measure (its agent module is the one imported).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from decimal import Decimal

from services.adequacy import agent
from services.adequacy.rules import ClaimFacts, Region
from services.streams import DictBatch

REGION = Region("OK-40001", "OK", "40001", "900", "patient_zip")


def claims(count: int, dates: int, seed: int) -> list[ClaimFacts]:
    rng = random.Random(seed)
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=offset) for offset in sorted(rng.sample(range(365), dates))]
    out = []
    for _ in range(count):
        claim_key = f"{rng.getrandbits(64):016x}"
        out.append(
            ClaimFacts(
                claim_key=claim_key,
                payer_id="PAYER1",
                payer_claim_id=f"PCID-{claim_key}",
                claim_date=rng.choice(days),
                status_code="1",
                billed=Decimal("100.50"),
                paid=Decimal("20.25"),
                payer_name="Acme Health",
                filing_indicator="HM",
                product_type="HMO",
                specialty_group="cardiology",
                state="OK",
                expected=Decimal("80.00"),
                payer_group="acme",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--dates", type=int, default=100, help="distinct claim dates within one year (<= 365)")
    parser.add_argument("--batch", type=int, default=200, help="claims per batch (scratch cleared after each)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    stream = claims(args.claims, args.dates, args.seed)
    state, key = DictBatch(shared=True), "PAYER1|cardiology|OK-40001"
    quarter = max(1, len(stream) // 4)
    started = last = time.process_time()
    figures = []
    for index, facts in enumerate(stream, 1):
        agent._observe_recurrence(state, key, facts, REGION)  # type: ignore[arg-type]
        if index % args.batch == 0:
            state.scratch.clear()
        if index % quarter == 0:
            now = time.process_time()
            figures.append(f"{(now - last) / quarter * 1e6:.0f}")
            last = now
    total = (time.process_time() - started) / len(stream) * 1e6
    print(f"us/claim by quarter: {' '.join(figures)}; average {total:.0f}")


if __name__ == "__main__":
    main()
