"""The recurrence rule's incremental summaries (ClaimsSummary, combine_summaries, recurrence_opportunity) and
the live tracker's panes (services/adequacy/agent.py ``_observe_recurrence``) against the computation from
every claim of the window (claims_in_window + recurrence_trigger), over randomized adds, replacements,
removals and sliding windows with fixed seeds."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from schemas.adequacy import SCAOpportunity
from services.adequacy.rules import (
    AdequacyConfig,
    ClaimFacts,
    ClaimsSummary,
    Region,
    claim_ref_from_dict,
    claims_in_window,
    combine_summaries,
    recurrence_opportunity,
    recurrence_trigger,
)
from services.streams import DictBatch

REGION = Region("OK-40001", "OK", "40001", "900", "patient_zip")
START = dt.date(2025, 1, 1)
AMOUNTS = ("0", "10", "10.5", "99.99", "1234.50", "0.01", "250.125")


def random_claim(rng: random.Random, claim_key: str, day: dt.date) -> ClaimFacts:
    """A claim of the key PAYER1|cardiology|OK-40001 with every field the summary reads varied."""
    filing, product = rng.choice([(None, None), (None, "HMO"), (None, "PPO"), ("HM", "HMO"), ("12", "PPO")])
    filing, product = rng.choice([(filing, product), ("16", "MA"), ("CI", None), (None, "Custom"), ("14", None)])
    return ClaimFacts(
        claim_key=claim_key,
        payer_id="PAYER1",
        payer_claim_id=f"PCID-{claim_key}-{rng.randrange(3)}",
        claim_date=day,
        status_code=rng.choice(["1", "2", "4"]),
        billed=Decimal(rng.choice(AMOUNTS)),
        paid=Decimal(rng.choice(AMOUNTS)),
        payer_name=rng.choice([None, "", "Acme Health", "Acme Health Plan"]),
        filing_indicator=filing,
        product_type=product,
        specialty_group="cardiology",
        state="OK",
        denial_codes=tuple(rng.sample(["CO-242", "CO-243", "PR-279"], rng.randrange(3))),
        denied_amount=Decimal(rng.choice(AMOUNTS)),
        expected=rng.choice([None, Decimal(rng.choice(AMOUNTS))]),
        medicare=rng.choice([None, None, Decimal(rng.choice(AMOUNTS))]),
        payer_group=rng.choice(["acme", "other", "big"]),
    )


def ordered(claims: dict[str, ClaimFacts]) -> list[ClaimFacts]:
    return sorted(claims.values(), key=lambda facts: (facts.claim_date, facts.claim_key))


@pytest.mark.parametrize("seed", range(8))
def test_summary_kept_by_adds_replacements_and_removals_equals_the_summary_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    day = START + dt.timedelta(days=seed)
    held: dict[str, ClaimFacts] = {}
    summary = ClaimsSummary()
    for step in range(400):
        claim_key = f"C{rng.randrange(40):02d}"
        action = rng.random()
        if claim_key in held and action < 0.3:  # removal
            removed = held.pop(claim_key)
            summary.remove(removed, lambda: ordered(held))
        elif claim_key in held:  # replacement: a later version of the claim
            summary.remove(held.pop(claim_key), lambda: ordered(held))
            held[claim_key] = random_claim(rng, claim_key, day)
            summary.add(held[claim_key])
        else:
            held[claim_key] = random_claim(rng, claim_key, day)
            summary.add(held[claim_key])
        expected = ClaimsSummary.of(ordered(held))
        assert summary == expected, f"step {step}"
        assert ClaimsSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == expected
    assert summary.count == len(held) > 0


def test_summary_removal_repicks_the_last_named_claim() -> None:
    rng = random.Random(1)
    claims = [random_claim(rng, key, START) for key in ("A", "B", "C")]
    claims = [
        ClaimFacts(**{**vars(facts), "payer_name": name, "payer_group": group})
        for facts, name, group in zip(claims, ["First", None, "Third"], ["g1", "g2", "g3"], strict=True)
    ]
    summary = ClaimsSummary()
    for facts in reversed(claims):
        summary.add(facts)
    assert summary.named is not None and summary.named[2] == "Third"
    assert summary.last is not None and summary.last[2] == "g3"
    summary.remove(claims[2], lambda: claims[:2])
    assert summary.named is not None and summary.named[2] == "First"  # B has no payer name
    assert summary.last is not None and summary.last[2] == "g2"
    assert summary.first is not None and summary.first[1] == "A"


def test_claim_ref_from_dict_equals_the_claim_facts_ref() -> None:
    rng = random.Random(2)
    for index in range(50):
        facts = random_claim(rng, f"K{index}", START)
        assert claim_ref_from_dict(json.loads(json.dumps(facts.to_dict()))) == facts.claim_ref()


def sliding_windows(held: dict[str, ClaimFacts], days: int) -> Iterator[tuple[dt.date, list[ClaimFacts]]]:
    dates = sorted({facts.claim_date for facts in held.values()})
    for end in {date + dt.timedelta(days=shift) for date in dates for shift in (0, days // 2, days - 1)}:
        yield end, claims_in_window(held.values(), end, days)


@pytest.mark.parametrize("seed", range(6))
def test_opportunity_from_day_summaries_equals_the_opportunity_from_the_claims(seed: int) -> None:
    rng = random.Random(100 + seed)
    config = AdequacyConfig(recurrence_window_days=20, max_claim_refs=rng.choice([1, 4, 50]))
    held: dict[str, ClaimFacts] = {}
    per_day: dict[dt.date, ClaimsSummary] = {}
    compared = 0
    for _ in range(150):
        claim_key = f"C{rng.randrange(60):02d}"
        day = START + dt.timedelta(days=rng.randrange(45))
        if claim_key in held:
            old = held.pop(claim_key)
            per_day[old.claim_date].remove(
                old, lambda old=old: ordered({k: f for k, f in held.items() if f.claim_date == old.claim_date})
            )
        if rng.random() < 0.85:
            held[claim_key] = random_claim(rng, claim_key, day)
            per_day.setdefault(day, ClaimsSummary()).add(held[claim_key])
        for end, window in sliding_windows(held, config.recurrence_window_days):
            start = end - dt.timedelta(days=config.recurrence_window_days - 1)
            days = sorted(day for day in per_day if start <= day <= end and per_day[day].count)
            summary = combine_summaries(per_day[day] for day in days)
            assert summary == ClaimsSummary.of(window)
            refs = [facts.claim_ref() for facts in window[-config.max_claim_refs :]]
            live = recurrence_opportunity(
                len(window), summary, refs, REGION, window_start=start, window_end=end, config=config
            )
            scratch = recurrence_trigger(len(window), window, REGION, window_start=start, window_end=end, config=config)
            assert _dump(live) == _dump(scratch)
            compared += scratch is not None
    assert compared > 100  # the threshold was reached often enough to compare opportunities


def _dump(opportunity: SCAOpportunity | None) -> Any:
    return None if opportunity is None else opportunity.model_dump(mode="json")


def test_recurrence_trigger_keeps_its_positional_picks_for_an_unsorted_sample() -> None:
    rng = random.Random(3)
    late = random_claim(rng, "Z", START + dt.timedelta(days=5))
    early = random_claim(rng, "A", START)
    late = ClaimFacts(**{**vars(late), "payer_group": "late", "payer_name": "Late"})
    early = ClaimFacts(**{**vars(early), "payer_group": "early", "payer_name": "Early"})
    found = recurrence_trigger(5, [late, early], REGION, window_start=START, window_end=START + dt.timedelta(days=89))
    assert found is not None
    assert found.payer_group == "early" and found.payer_name == "Early"  # the last of the sample given
    assert found.first_claim_date == START and found.last_claim_date == START + dt.timedelta(days=5)
    assert [ref.payer_claim_id for ref in found.claims] == [late.payer_claim_id, early.payer_claim_id]


# ------------------------------------------------------------------- the live tracker's panes (agent.py)


class FromScratch:
    """The tracker as it was before the summaries: every claim of the chosen window given to
    claims_in_window + recurrence_trigger (the same panes, horizon and choice of window)."""

    def __init__(self, config: AdequacyConfig) -> None:
        self.config = config
        self.panes: dict[dt.date, dict[str, ClaimFacts]] = {}
        self.index: dict[str, dt.date] = {}
        self.latest: dt.date | None = None
        self.region: Region | None = None

    def observe(self, facts: ClaimFacts, region: Region) -> SCAOpportunity | None:
        days, window = self.config.recurrence_window_days, dt.timedelta(days=self.config.recurrence_window_days)
        self.region = self.region or region
        day = facts.claim_date
        self.latest = max(day, self.latest) if self.latest else day
        horizon = self.latest - 2 * window
        for old_day in [pane_day for pane_day in self.panes if pane_day < horizon]:
            for claim_key in self.panes.pop(old_day):
                del self.index[claim_key]
        if facts.claim_key in self.index:
            previous = self.index.pop(facts.claim_key)
            del self.panes[previous][facts.claim_key]
            if not self.panes[previous]:
                del self.panes[previous]
        if day < horizon:
            return None
        self.panes.setdefault(day, {})[facts.claim_key] = facts
        self.index[facts.claim_key] = day
        first = day - window + dt.timedelta(days=1)
        best: tuple[int, int] | None = None
        for offset in range(days):
            start = first + dt.timedelta(days=offset)
            count = sum(len(claims) for pane_day, claims in self.panes.items() if 0 <= (pane_day - start).days < days)
            if best is None or count > best[0]:
                best = (count, offset)
        assert best is not None
        count, offset = best
        if count < self.config.recurrence_min_claims:
            return None
        start = first + dt.timedelta(days=offset)
        end = start + window - dt.timedelta(days=1)
        claims = [
            facts for pane_day in self.panes if start <= pane_day <= end for facts in self.panes[pane_day].values()
        ]
        return recurrence_trigger(
            count,
            claims_in_window(claims, end, days),
            self.region,
            window_start=start,
            window_end=end,
            config=self.config,
        )

    def write_old_format(self, state: DictBatch, key: str) -> None:
        """This state as the tracker wrote it before the summaries: panes in arrival order, no summary."""
        from services.adequacy import agent

        for pane_day, claims in self.panes.items():
            state.set(agent.oon_claims.table, (key, agent._pane(pane_day)), {k: f.to_dict() for k, f in claims.items()})
        for claim_key, pane_day in self.index.items():
            state.set(agent.recurrence_keys, f"{key}|{claim_key}".encode(), pane_day.isoformat().encode())
        assert self.region is not None and self.latest is not None
        meta = {
            "region": vars(self.region),
            "latest": self.latest.isoformat(),
            "days": sorted(day.isoformat() for day in self.panes),
        }
        state.set_json(agent.recurrence_keys, key, meta)


def random_stream(rng: random.Random, length: int) -> Iterator[ClaimFacts]:
    """Claims of one key arriving out of date order, with re-deliveries (same date or a corrected one) and,
    as time moves on, claims older than the horizon."""
    for step in range(length):
        claim_key = f"C{rng.randrange(length // 2):03d}"
        day = START + dt.timedelta(days=rng.randrange(step // 2 + 5) + step // 4)
        yield random_claim(rng, claim_key, day)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_live_tracker_equals_the_computation_from_every_claim(seed: int, shared: bool) -> None:
    from services.adequacy import agent

    rng = random.Random(200 + seed)
    state, scratch, key = DictBatch(shared=shared), FromScratch(agent.CONFIG), "PAYER1|cardiology|OK-40001"
    found = 0
    for step, facts in enumerate(random_stream(rng, 500)):
        live = agent._observe_recurrence(state, key, facts, REGION)  # type: ignore[arg-type]
        expected = scratch.observe(facts, REGION)
        assert _dump(live) == _dump(expected), f"step {step}"
        found += expected is not None
    assert found > 200


def test_live_tracker_upgrades_panes_written_without_summaries() -> None:
    from services.adequacy import agent

    rng = random.Random(300)
    scratch, key = FromScratch(agent.CONFIG), "PAYER1|cardiology|OK-40001"
    stream = list(random_stream(rng, 400))
    for facts in stream[:250]:
        scratch.observe(facts, REGION)
    state = DictBatch()
    scratch.write_old_format(state, key)
    found = 0
    for step, facts in enumerate(stream[250:]):
        live = agent._observe_recurrence(state, key, facts, REGION)  # type: ignore[arg-type]
        expected = scratch.observe(facts, REGION)
        assert _dump(live) == _dump(expected), f"step {step}"
        found += expected is not None
    assert found > 100
    panes = [value for (_, k), value in state.data.items() if isinstance(k, tuple) and k[0] == key]
    assert panes and any(agent._is_record(pane) for pane in panes)  # panes read were summarised, written back


def test_live_tracker_replays_an_event_whose_pane_was_written_but_not_its_index() -> None:
    """A crash between a batch's changelog writes can leave the pane with the claim and the index without
    it; the replayed event must give the opportunity it gave, and the pane must not count the claim twice."""
    from services.adequacy import agent

    rng = random.Random(400)
    state, scratch, key = DictBatch(), FromScratch(agent.CONFIG), "PAYER1|cardiology|OK-40001"
    replayed = 0
    for step, facts in enumerate(random_stream(rng, 300)):
        live = agent._observe_recurrence(state, key, facts, REGION)  # type: ignore[arg-type]
        expected = scratch.observe(facts, REGION)
        assert _dump(live) == _dump(expected), f"step {step}"
        if step % 7 == 0 and live is not None:
            state.delete(agent.recurrence_keys, f"{key}|{facts.claim_key}".encode())
            again = agent._observe_recurrence(state, key, facts, REGION)  # type: ignore[arg-type]
            assert _dump(again) == _dump(live), f"replay at step {step}"
            replayed += 1
    assert replayed > 10
