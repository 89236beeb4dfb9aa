"""The live adequacy path: remittances -> SCA / gap-exception opportunities on ``alerts.sca-opportunity``.

The same core as ``claimwatch opportunities`` (services/adequacy/rules.py), in two steps:

1. ``on_remittance`` (a handler of services/remittances/agent.py: its sends are flushed before the
   remittance's offset is committed) evaluates the claim with the pricing core
   (services.underpayment.evaluate.evaluate: the very evaluation the underpayment path emits and the offline
   CLI reads as ``claim_evaluation`` lines), which gives the claim's expected and Medicare amounts and the
   value rule's line outcomes. It joins the remittance with its claim context and the network reference
   into ClaimFacts, runs the claim-level rules (distance, count, denial, Medicare Advantage access) and
   forwards to the internal topic ``adequacy.observations``:
   - an AdequacyObservation keyed by the recurrence key ``payer|specialty|region``: the claim (without the
     patient's ZIP) and its claim-level opportunities;
   - a ValueObservation per dedup period keyed ``value|<period start>``: the evaluated lines, those of a
     whole batch of remittances in one message (sent when the batch commits).
2. ``track_opportunities`` reads that topic (one partition holds a key's whole history) and keeps:
   - ``adequacy-oon-claims``: a Faust windowed table holding, per recurrence key and 1-day window of claim
     dates, the distinct OON claims of that day: the panes of the 90-day windows hopping by one day (below);
     each pane with its ClaimsSummary (counts, sums, multisets, picks);
   - ``adequacy-recurrence``: per recurrence key its region, newest claim date and days with claims, and
     per claim its pane;
   - ``adequacy-value``: per period, the code volumes of the whole group, and per payer + state + code the
     line count and the underpaid lines;
   - ``adequacy-opportunities``: opportunity_id -> the merged SCAOpportunity (merge_opportunity). An
     opportunity is published to ``alerts.sca-opportunity`` (key payer|specialty|region|rule) only when it
     is new or changed: one per payer + specialty + region + rule + period, updated as evidence grows.
   Events are processed in batches (services.streams.Batch): the table writes of a batch are applied after
   its alerts were delivered, so a crash in between replays the events, which find the same state and re-send
   the same alerts.

Windows (what Faust does, read in faust/tables/base.py, wrappers.py and windows.py of faust-streaming 0.15):
- A window's time is the claim date (first service date, else payment date): the wrapper is made
  ``relative_to`` a handler that reads ``claim_date`` from the observation. The Kafka timestamp of the
  observation stays the time it was sent: claim dates are weeks or months old when the 835 arrives, and
  the broker's time-based retention deletes a segment, the active one included, whose newest *record
  timestamp* is older than retention.ms, so observations stamped with their claim date can be deleted
  before they are read (seen on the dev broker: 48 h retention, records stamped 2025-10-15, gone at the
  next retention check).
- Hopping windows are ``[k*step, k*step + size)`` in epoch seconds: with a 1-day step on UTC-midnight
  timestamps, the 90 windows holding a date are exactly the rolling 90-day windows ``[d - 89, d] ..
  [d, d + 89]`` of the core (AdequacyConfig.recurrence_window_days, both ends included); a 7-day step would
  miss windows and disagree with ``claimwatch opportunities``. ``hopping(90 days, 1 day)`` writes every
  claim into 90 windows, i.e. 90 changelog messages, and each costs the event loop about half a
  millisecond in Faust's producer buffer: the 600-claim integration stream took 52 s instead of 13 s. So
  the table holds the windows' panes, 1-day tumbling windows (a hopping window whose step is its size): one
  write per claim, and a 90-day window's count is the sum of its 90 panes, read when a claim arrives.
- Each pane has its ClaimsSummary (services/adequacy/rules.py), updated when a claim is added to, replaced
  in or removed from it, and its claims are kept in claim-key order. The opportunity of the chosen window
  is built from the combined summaries of its panes and the refs of its last ``max_claim_refs`` claims, read
  from the end of its last panes: a claim costs the (at most 179) days of the span and the claims listed,
  not the claims of the window (rebuilding ClaimFacts for every claim of a window on every claim made the
  tracker more than half of a worker's time on a 25,000-claim burst). The result is the one
  claims_in_window + recurrence_trigger give over the window's claims: the panes hold distinct claims (the
  ``adequacy-recurrence`` index moves a claim key from its old pane to its new one), and the summaries
  keep what recurrence_trigger reads of them. A pane and its summary are one table value, so a crash
  between a batch's changelog writes cannot leave a summary that disagrees with its claims. A pane written
  before the summaries (state of an older worker: the claims dict alone) is summarised, sorted and written
  back the first time it is read. The other way round is not handled: a worker of an older version reads
  the new panes as claims dicts and would fail, so going back to one needs the tracker's state rebuilt.
- Faust expires windows against the wall clock (``window.stale(end, time.time())`` in
  ``Collection._del_old_keys``, every ``table_cleanup_interval``), not against stream time: with any
  ``expires`` shorter than the age of the data, the windows of last year's claims are deleted by the first
  cleanup after they are written, and the changelog's retention.ms is set to ``expires`` too. So the table
  has no ``expires``; its changelog is compacted only, and the panes are pruned in stream time here, as
  RecurrenceState does: claims more than two windows older than the newest claim of their key are dropped
  (their panes deleted), and a recurrence opportunity is the one RecurrenceState.observe would return.
- The pure-Python window class is used: the compiled one turns ``expires=None`` into 0.0, which turns on
  the per-write expiry bookkeeping (a heap entry per write) that nothing ever drains.
- Counting is of distinct claims (claim key): a re-delivered remittance, or a reversal and its correction,
  does not count twice.

The value rule ranks the group's top codes over all payers of a period, so its lines are keyed by period
(one partition per period). Its opportunity is recomputed from the period's lines (value_triggers with the
running top codes) for the payer + state of the new lines, and for every payer + state when the ranking
changes, and replaces the stored one (its totals are over the whole period, not per claim). Per payer +
state + code only the line count and the underpaid lines are kept (what the rule reads); value_triggers
gets the underpaid lines and the line counts (``line_counts``). An opportunity that stops holding (lines
reversed, a code leaving the top codes) stays published as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
from decimal import Decimal
from typing import Any

import faust
import faust.windows

from schemas.adequacy import (
    AdequacyObservation,
    ClaimRef,
    ObservedClaim,
    ObservedLine,
    ObservedRegion,
    SCAOpportunity,
    ValueObservation,
)
from schemas.claims import ClaimContext
from schemas.dead_letter import DeadLetter
from schemas.evaluation import ClaimEvaluation
from schemas.remittance import RemittanceEvent
from services import metrics
from services.adequacy.reference import NetworkReference, load_network_reference
from services.adequacy.rules import (
    AdequacyConfig,
    ClaimFacts,
    ClaimsSummary,
    LineOutcome,
    NotAssessable,
    Region,
    claim_facts,
    claim_ref_from_dict,
    combine_summaries,
    evaluate_claim,
    line_outcomes_from_evaluation,
    merge_opportunity,
    period_bounds,
    recurrence_opportunity,
    value_triggers,
)
from services.app import TOPICS, app, bytes_table, settings, table_options
from services.reference.files import ReferenceFiles
from services.reference.live import register_builder, snapshot
from services.streams import (
    Batch,
    batches,
    count_in,
    dead_letter_for,
    decode,
    event_type_of,
    processing_batch,
    read_table,
    send_dead_letter,
)
from services.topics import ADEQUACY_OBSERVATIONS, ALERTS_SCA

log = logging.getLogger(__name__)

CONFIG = AdequacyConfig(recurrence_min_claims=settings.recurrence_threshold)
STAGE = "adequacy"
DAY = dt.timedelta(days=1)
WINDOW = dt.timedelta(days=CONFIG.recurrence_window_days)
GAUGE_REFRESH_S = 1.0
RULE_LABELS = {"medicare_advantage_access": "ma_access"}
"""Rule name -> the ``rule`` label of the metrics catalog (services/metrics.py)."""


def build_network_reference(files: ReferenceFiles) -> NetworkReference:
    """load_network_reference, with the ZIP geography index loaded here, in the reference reader's thread,
    rather than by the first claim (about two seconds in the event loop)."""
    reference = load_network_reference(files)
    reference.geography.locate("10001")
    return reference


register_builder("network", build_network_reference)

_PyHoppingWindow = getattr(faust.windows, "_PyHoppingWindow", faust.windows.HoppingWindow)


def _day_timestamp(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def _claim_time(event: faust.EventT | None = None) -> float:
    """Time of an observation in the windowed table: its claim date (UTC midnight), not the Kafka timestamp."""
    if event is None:
        raise RuntimeError("the OON-claims windowed table is used outside of stream iteration")
    return _day_timestamp(dt.date.fromisoformat(json.loads(event.value)["claim_date"]))


oon_claims = (
    app.Table(
        "adequacy-oon-claims",
        key_type=str,  # a windowed key is (key, (start, end)): JSON, not raw bytes
        value_type=None,  # JSON objects
        default=dict,
        partitions=None,
        options=table_options(settings),
        extra_topic_configs={"cleanup.policy": "compact"},
        help="The distinct OON claims (claim key -> facts) of each payer|specialty|region per claim date: the "
        "1-day panes of the 90-day windows.",
    )
    .using_window(_PyHoppingWindow(DAY, DAY, None))  # tumbling: step = size = 1 day
    .relative_to(_claim_time)  # what .value() / .current() of a key mean: the pane of the claim date
)
recurrence_keys = bytes_table("adequacy-recurrence")
"""``payer|specialty|region`` -> its region, newest claim date and the days that have a pane (ISO date -> claims
of the pane; a list of the days, without counts, in the records of earlier workers);
``payer|specialty|region|claim key`` -> the claim's date (which pane holds it)."""
value_state = bytes_table("adequacy-value")
"""``value|<period>`` -> code volumes and payer + state groups; ``...|claim|<claim key>`` -> where its lines
are counted; ``value|<period>|<payer>|<state>|<code>`` -> line count and underpaid lines of the code."""
opportunities = bytes_table("adequacy-opportunities")
_open: dict[int, dict[str, tuple[str, str, str, float]]] = {}
"""partition -> opportunity id -> (rule, state, specialty_group labels, billed dollars), for the gauges."""
_gauges: dict[str, Any] = {"stale": False, "assignment": None}
"""Whether the gauges lag ``_open``, and the partitions ``_open`` was last recounted for."""


# ------------------------------------------------------------------------- step 1: the remittance handler


async def on_remittance(
    batch: Batch,
    event: faust.EventT,
    remittance: RemittanceEvent,
    context: ClaimContext | None,
    evaluation: ClaimEvaluation,
) -> None:
    network: NetworkReference | None = snapshot("network")
    if network is None:
        log.warning("adequacy: no network reference snapshot; remittance %s not assessed", remittance.event_id)
        return
    await _forward_lines(batch, remittance, evaluation)
    expected, medicare = evaluation_totals(evaluation)
    try:
        facts = claim_facts(remittance, context, network, expected=expected, medicare=medicare)
    except NotAssessable as error:
        log.debug("adequacy: %s not assessable: %s", remittance.event_id, error.reason)
        return
    assessment = evaluate_claim(facts, network, CONFIG)
    key = assessment.recurrence_key
    if key is None or assessment.region is None:
        return  # no specialty or no region: no rule can hold (every opportunity has both)
    observation = AdequacyObservation(
        event_id=remittance.event_id,
        recurrence_key=key,
        claim_date=facts.claim_date,
        region=ObservedRegion.model_validate(_fields(assessment.region)),
        claim=observed_claim(facts),
        opportunities=list(assessment.opportunities),
    )
    await batch.send(ADEQUACY_OBSERVATIONS.name, key, observation)


def evaluation_totals(evaluation: ClaimEvaluation) -> tuple[Decimal | None, Decimal | None]:
    """Expected and Medicare amounts of an evaluated claim (Medicare only when every line has one); the
    offline CLI lends the same totals of a ``claim_evaluation`` line to its remittance."""
    expected = [line.expected_amount for line in evaluation.lines if line.expected_amount is not None]
    medicare = [line.medicare_amount for line in evaluation.lines if line.medicare_amount is not None]
    return (
        sum(expected, Decimal(0)) if expected else None,
        sum(medicare, Decimal(0)) if medicare and len(medicare) == len(evaluation.lines) else None,
    )


async def _forward_lines(batch: Batch, remittance: RemittanceEvent, evaluation: ClaimEvaluation) -> None:
    """Queue the evaluated lines for the value rule, by dedup period: one ValueObservation per period and
    batch is sent when the batch commits (``_send_lines``), so the tracker gets one message for the lines
    of hundreds of claims under load rather than one per claim."""
    for outcome in line_outcomes_from_evaluation(evaluation):
        fields = _fields(outcome)
        if fields["claim_key"] is None:
            fields["claim_key"] = remittance.event_id  # what identifies the line across messages
        period = period_bounds(outcome.service_date, CONFIG.period)
        pending = batch.scratch.setdefault(("value-lines", period), {"lines": []})
        pending["lines"].append(ObservedLine.model_validate(fields))
        pending["event_id"] = remittance.event_id
        batch.defer(("value-lines", period), batch.current_event, lambda period=period: _send_lines(batch, period))


async def _send_lines(batch: Batch, period: tuple[dt.date, dt.date]) -> None:
    pending = batch.scratch.pop(("value-lines", period))
    start, end = period
    observation = ValueObservation(
        event_id=pending["event_id"], period_start=start, period_end=end, lines=pending["lines"]
    )
    await batch.send(ADEQUACY_OBSERVATIONS.name, f"value|{start.isoformat()}", observation)


def _fields(flat: Any) -> dict[str, Any]:
    """The fields of a flat dataclass (ClaimFacts, LineOutcome, Region) as a new dict: dataclasses.asdict
    deep-copies every value, which cost the live path about a tenth of a millisecond per claim."""
    return dict(vars(flat))


def observed_claim(facts: ClaimFacts) -> ObservedClaim:
    data = _fields(facts)
    del data["patient_zip"], data["service_zip"]  # the region is carried instead
    return ObservedClaim.model_validate(data)


def claim_from_observation(claim: ObservedClaim) -> ClaimFacts:
    data = claim.model_dump()
    data["denial_codes"] = tuple(data["denial_codes"])
    return ClaimFacts(**data)


# -------------------------------------------------------------------- step 2: the opportunity tracker


@app.agent(TOPICS[ADEQUACY_OBSERVATIONS.name])
async def track_opportunities(stream: faust.StreamT) -> None:
    async for events in batches(stream):
        async with processing_batch(events, STAGE) as batch:
            for event in events:
                async with batch.event(event):
                    await _on_observation(batch, event)


async def _on_observation(batch: Batch, event: faust.EventT) -> None:
    count_in(event)
    kind = event_type_of(event.value)
    if kind == "adequacy_observation":
        await _on_claim(batch, event)
    elif kind == "value_observation":
        await _on_lines(batch, event)
    else:
        await send_dead_letter(dead_letter_for(event, STAGE, "unknown_event_type", f"event_type {kind!r}"))


async def _on_claim(batch: Batch, event: faust.EventT) -> None:
    observation = decode(event, AdequacyObservation, stage=STAGE)
    if isinstance(observation, DeadLetter):
        await send_dead_letter(observation)
        return
    state = batch
    found = list(observation.opportunities)  # claim-level first, then recurrence: the offline CLI's order
    facts = claim_from_observation(observation.claim)
    region = Region(**observation.region.model_dump())
    trigger = _observe_recurrence(state, observation.recurrence_key, facts, region)
    if trigger is not None:
        found.append(trigger)
    await _publish(batch, found, replace=False)


# ------------------------------------------------------------------------------------------ recurrence


@functools.lru_cache(maxsize=4096)
def _pane(day: dt.date) -> tuple[float, float]:
    (window_range,) = oon_claims.table.window.ranges(_day_timestamp(day))
    return window_range


def _is_record(stored: dict[str, Any]) -> bool:
    """Whether a stored pane is a record ``{"claims": ..., "summary": ...}`` rather than the claims dict of an
    earlier worker (whose values are ClaimFacts.to_dict(), which has no ``count``)."""
    return len(stored) == 2 and "claims" in stored and "count" in (stored.get("summary") or {})


class _Panes:
    """The 1-day panes of one recurrence key in one event, and the days that have one with their claim counts
    (kept with the key, so that only the panes needed are read: ``days``, ISO date -> claims). A pane is a
    record ``{"claims": claim key -> ClaimFacts.to_dict(), "summary": ClaimsSummary.to_dict()}``: one value, so
    that the summary is written with the claims it sums or not at all. Its claims are in claim-key order (the
    window's last claims are read from the end of its last panes)."""

    def __init__(self, state: Batch, key: str, days: dict[str, int] | list[str]) -> None:
        self.state = state
        self.key = key
        if isinstance(days, dict):
            self.days = dict(days)
        else:  # the key's record as an earlier worker wrote it: the days without their counts
            self.days = {day: 0 for day in days}
            for day in days:
                self.days[day] = len(self.claims(dt.date.fromisoformat(day)))

    def __contains__(self, day: dt.date) -> bool:
        return day.isoformat() in self.days

    def _stored(self, day: dt.date) -> dict[str, Any] | None:
        if day not in self:
            return None
        return self.state.get(oon_claims.table, (self.key, _pane(day))) or None

    def claims(self, day: dt.date) -> dict[str, Any]:
        """The pane's claims as stored: shared with the batch, not to be changed (``get`` gives a copy)."""
        stored = self._stored(day)
        if stored is None:
            return {}
        return stored["claims"] if _is_record(stored) else stored

    def get(self, day: dt.date) -> dict[str, Any]:
        return dict(self.claims(day))

    def summary(self, day: dt.date) -> ClaimsSummary:
        """The pane's summary, shared with the batch (``copy()`` it to change it): decoded once per stored
        value and batch, as the events of a batch read the same panes. A pane written before summaries were
        kept (a worker upgraded on its state) is summarised here from its claims, sorted by claim key, and
        written back as a record."""
        stored = self._stored(day)
        if stored is None:
            return ClaimsSummary()
        if not _is_record(stored):
            claims = dict(sorted(stored.items()))
            summary = ClaimsSummary.of(ClaimFacts.from_dict(item) for item in claims.values())
            self.put(day, claims, summary)
            return summary
        decoded = self.state.scratch.setdefault("recurrence-summaries", {})
        cached = decoded.get((self.key, day))
        if cached is None or cached[0] is not stored:  # identity: a value written since is another object
            cached = decoded[(self.key, day)] = (stored, ClaimsSummary.from_dict(stored["summary"]))
        return cached[1]

    def put(self, day: dt.date, claims: dict[str, Any], summary: ClaimsSummary | None) -> None:
        if claims:
            assert summary is not None and summary.count == len(claims)
            stored = {"claims": claims, "summary": summary.to_dict()}
            self.state.set(oon_claims.table, (self.key, _pane(day)), stored)
            self.days[day.isoformat()] = len(claims)
            # the next event of the batch on this pane reads ``stored``: its summary is this one (callers copy
            # a summary before changing it)
            self.state.scratch.setdefault("recurrence-summaries", {})[(self.key, day)] = (stored, summary)
        elif day in self:
            self.state.delete(oon_claims.table, (self.key, _pane(day)))
            del self.days[day.isoformat()]

    def last_refs(self, days: list[dt.date], limit: int) -> list[ClaimRef]:
        """The claim refs of the last ``limit`` claims of the panes of ``days`` (ascending, summarised, so in
        claim-key order), in (claim_date, claim_key) order: claims_in_window's order."""
        refs: list[ClaimRef] = []
        decoded = self.state.scratch.setdefault("recurrence-refs", {})
        for day in reversed(days):
            for item in reversed(self.claims(day).values()):
                cached = decoded.get(id(item))
                if cached is None or cached[0] is not item:  # the item is held: its id is not reused
                    cached = decoded[id(item)] = (item, claim_ref_from_dict(item))
                refs.append(cached[1])
                if len(refs) == limit:
                    return refs[::-1]
        return refs[::-1]


def _with_claim(claims: dict[str, Any], claim_key: str, item: dict[str, Any]) -> dict[str, Any]:
    """``claims`` with ``claim_key`` -> ``item``, kept in claim-key order (a key after the last one appends)."""
    appended = not claims or claim_key in claims or claim_key > next(reversed(claims))
    claims[claim_key] = item
    return claims if appended else dict(sorted(claims.items()))


def _observe_recurrence(state: Batch, key: str, facts: ClaimFacts, region: Region) -> SCAOpportunity | None:
    """RecurrenceState.observe, with the claims held in the panes of the windowed table (see the module doc),
    computed from the panes' summaries: a claim costs the days of its windows' span and the claims listed,
    not the claims of its window."""
    days = CONFIG.recurrence_window_days
    day = facts.claim_date
    meta = state.get_json(recurrence_keys, key) or {"region": dataclasses.asdict(region), "days": {}}
    latest = max(day, dt.date.fromisoformat(meta["latest"])) if "latest" in meta else day
    horizon = latest - 2 * WINDOW  # claims older than two windows before the newest one are dropped
    panes = _Panes(state, key, meta["days"])
    horizon_text = horizon.isoformat()  # ISO dates compare as the dates do
    for old_day in sorted(pane_day for pane_day in panes.days if pane_day < horizon_text):
        old_date = dt.date.fromisoformat(old_day)
        for claim_key in panes.claims(old_date):
            state.delete(recurrence_keys, f"{key}|{claim_key}".encode())
        panes.put(old_date, {}, None)

    claim_index = f"{key}|{facts.claim_key}".encode()
    previous = state.get(recurrence_keys, claim_index)
    if previous is not None:  # a later version of the claim replaces the earlier one (distinct claims)
        previous_day = dt.date.fromisoformat(previous.decode("utf-8"))
        summary = panes.summary(previous_day).copy()
        claims = panes.get(previous_day)
        replaced = claims.pop(facts.claim_key, None)
        if replaced is not None:
            summary.remove(
                ClaimFacts.from_dict(replaced), lambda: (ClaimFacts.from_dict(item) for item in claims.values())
            )
        panes.put(previous_day, claims, summary)
    if day >= horizon:
        summary = panes.summary(day).copy()
        claims = panes.get(day)
        stale = claims.pop(facts.claim_key, None)
        if stale is not None:  # held by its day's pane but not by the index: a batch's writes half applied
            summary.remove(
                ClaimFacts.from_dict(stale), lambda: (ClaimFacts.from_dict(item) for item in claims.values())
            )
        claims = _with_claim(claims, facts.claim_key, facts.to_dict())
        summary.add(facts)
        panes.put(day, claims, summary)
        state.set(recurrence_keys, claim_index, day.isoformat().encode("utf-8"))
    else:
        state.delete(recurrence_keys, claim_index)
    updated = {"region": meta["region"], "latest": latest.isoformat(), "days": panes.days}
    if updated != meta:
        state.set_json(recurrence_keys, key, updated)
    if day < horizon:
        return None

    first = day - WINDOW + DAY  # the windows holding the claim start between first and day
    span_days = 2 * days - 1
    counts = [0] * span_days
    span_first, span_last = first.isoformat(), (first + (span_days - 1) * DAY).isoformat()
    for pane_day, pane_count in panes.days.items():  # most of the 179 days of the span have no pane
        if span_first <= pane_day <= span_last:
            counts[(dt.date.fromisoformat(pane_day) - first).days] = pane_count
    count = sum(counts[:days])
    best = (count, 0)
    for offset in range(1, days):  # slide the window one day at a time
        count += counts[offset + days - 1] - counts[offset - 1]
        if count > best[0]:
            best = (count, offset)  # the fullest window holding the claim; the earliest on a tie
    count, offset = best
    if count < CONFIG.recurrence_min_claims:
        return None
    start = first + offset * DAY
    end = start + WINDOW - DAY
    window_days = [start + shift * DAY for shift in range(days) if counts[offset + shift]]
    window = combine_summaries([panes.summary(pane_day) for pane_day in window_days])
    region_first_seen = Region(**meta["region"])  # RecurrenceState keeps the region of the key's first claim
    return recurrence_opportunity(
        count,
        window,
        panes.last_refs(window_days, CONFIG.max_claim_refs),
        region_first_seen,
        window_start=start,
        window_end=end,
        config=CONFIG,
    )


# ----------------------------------------------------------------------------------------- value rule


def _tally(period: dict[str, Any], code: str, expected: str | None, sign: int) -> None:
    """The group's volume (lines) and expected dollars per code in the period, as top_codes ranks them."""
    volume = period["volume"].get(code, 0) + sign
    dollars = Decimal(period["dollars"].get(code, "0")) + sign * Decimal(expected or "0")
    if volume > 0:
        period["volume"][code] = volume
        period["dollars"][code] = str(dollars)
    else:
        period["volume"].pop(code, None)
        period["dollars"].pop(code, None)


def _top_codes(period: dict[str, Any]) -> list[str]:
    volume, dollars = period["volume"], period["dollars"]
    ranked = sorted(volume, key=lambda code: (-volume[code], -Decimal(dollars[code]), code))
    return ranked[: CONFIG.value_top_codes]


async def _on_lines(batch: Batch, event: faust.EventT) -> None:
    """Apply the lines (the latest outcome of a line wins, a reversal removes it, as in value_triggers), then
    recompute the value opportunity of the payer + state groups whose top-code lines may have changed."""
    observation = decode(event, ValueObservation, stage=STAGE)
    if isinstance(observation, DeadLetter):
        await send_dead_letter(observation)
        return
    state = batch
    prefix = f"value|{observation.period_start.isoformat()}"
    period = state.get_json(value_state, prefix) or {"volume": {}, "dollars": {}, "groups": {}, "top": []}
    entries: dict[str, dict[str, Any]] = {}
    touched: set[str] = set()

    def entry(group_key: str, code: str) -> dict[str, Any]:
        name = f"{group_key}|{code}"
        if name not in entries:
            entries[name] = state.get_json(value_state, name) or {"lines": 0, "underpaid": {}}
        return entries[name]

    indexes: dict[str, dict[str, list]] = {}
    for position, line in enumerate(observation.lines):
        claim_key = line.claim_key or observation.event_id
        slot = str(line.line_index if line.line_index is not None else position)
        index_key = f"{prefix}|claim|{claim_key}"
        if index_key not in indexes:
            indexes[index_key] = state.get_json(value_state, index_key) or {}
        index = indexes[index_key]
        line_key = f"{claim_key}#{slot}"
        old = index.pop(slot, None)
        if old is not None:
            old_group, old_code, old_expected = old
            counted = entry(old_group, old_code)
            counted["lines"] -= 1
            counted["underpaid"].pop(line_key, None)
            _tally(period, old_code, old_expected, -1)
            touched.add(old_group)
        if line.status.strip().lower() == "reversal":
            continue
        group_key = f"{prefix}|{line.payer_id}|{line.state or 'US'}"
        counted = entry(group_key, line.code)
        counted["lines"] += 1
        if line.status.strip().lower() == "underpaid":
            counted["underpaid"][line_key] = line.model_dump(mode="json", exclude_none=True)
        expected = str(line.expected) if line.expected is not None else None
        _tally(period, line.code, expected, +1)
        index[slot] = [group_key, line.code, expected]
        period["groups"][group_key] = [line.payer_id, line.state]
        touched.add(group_key)

    top = _top_codes(period)
    pending = batch.scratch.setdefault(("value", prefix), {"groups": set(), "all": False})
    pending["groups"] |= touched
    pending["all"] = pending["all"] or top != period["top"]
    period["top"] = top
    state.set_json(value_state, prefix, period)
    for index_key, index in indexes.items():
        state.set_json(value_state, index_key, index)
    for name, counted in entries.items():
        state.set_json(value_state, name, counted if counted["lines"] else None)
    batch.defer(("value", prefix), event, lambda: _recompute_value(batch, prefix))


async def _recompute_value(batch: Batch, prefix: str) -> None:
    """The value opportunities of the payer + state groups of a period whose top-code lines changed in this
    batch (all of them when the ranking of top codes changed): once per batch, however many events."""
    pending = batch.scratch.pop(("value", prefix))
    period = batch.get_json(value_state, prefix)
    top = period["top"]
    recompute = sorted(period["groups"]) if pending["all"] else sorted(pending["groups"] & set(period["groups"]))
    found: list[SCAOpportunity] = []
    for group_key in recompute:
        payer_id, line_state = period["groups"][group_key]
        underpaid: list[LineOutcome] = []
        counts: dict[tuple[str, str, str], int] = {}
        for code in top:
            counted = batch.get_json(value_state, f"{group_key}|{code}") or {"lines": 0, "underpaid": {}}
            underpaid.extend(_line_outcome(record) for record in counted["underpaid"].values())
            counts[(payer_id, line_state or "US", code)] = counted["lines"]
        found.extend(value_triggers(underpaid, CONFIG, top=top, line_counts=counts))
    await _publish(batch, found, replace=True)


def _line_outcome(record: dict[str, Any]) -> LineOutcome:
    return LineOutcome(**ObservedLine.model_validate(record).model_dump())


# ------------------------------------------------------------------------------ opportunities + alerts


def _stored(raw: bytes | None) -> SCAOpportunity | None:
    return SCAOpportunity.model_validate(json.loads(raw)["opportunity"]) if raw else None


async def _publish(batch: Batch, found: list[SCAOpportunity], *, replace: bool) -> None:
    """Merge each opportunity into the stored one (or replace it: the value rule recomputes its whole period).

    What changed is published once per batch (``_send_changed``): under load the events of a batch often
    update the same opportunity (its evidence grows with every claim), and one alert with the final state
    replaces the intermediate ones; with one event per batch every change is published."""
    partition = batch.current_event.message.partition
    for opportunity in found:
        key = opportunity.opportunity_id.encode("utf-8")
        existing = _stored(batch.get(opportunities, key))
        if replace:
            same = existing is not None and _content(opportunity) == _content(existing)
            stored = existing if same else opportunity
        else:
            stored = merge_opportunity(existing, opportunity, max_claims=CONFIG.max_claim_refs, config=CONFIG)
        if stored is existing:
            continue
        batch.set(opportunities, key, _entry(partition, stored))
        batch.scratch.setdefault(("sca-changed", partition), {})[key] = None
        batch.defer(("sca-publish", partition), batch.current_event, lambda: _send_changed(batch, partition))


def _entry(partition: int, opportunity: SCAOpportunity) -> bytes:
    return json.dumps({"partition": partition, "opportunity": opportunity.model_dump(mode="json")}).encode("utf-8")


async def _send_changed(batch: Batch, partition: int) -> None:
    """Publish the opportunities of ``partition`` changed in this batch, each with the revision after the one
    last published (the table's value before the batch), and record that revision."""
    published: list[SCAOpportunity] = []
    for key in batch.scratch.pop(("sca-changed", partition)):
        latest = _stored(batch.get(opportunities, key))
        before = _stored(read_table(opportunities, key))  # as it was before this batch
        if latest is None:
            continue
        if before is not None and _content(latest) == _content(before):
            batch.set(opportunities, key, _entry(partition, before))
            continue
        latest = latest.model_copy(update={"revision": before.revision + 1 if before else 1})
        batch.set(opportunities, key, _entry(partition, latest))
        await batch.send(ALERTS_SCA.name, latest.alert_key, latest)
        published.append(latest)
    if published:
        batch.after(lambda: _count_published(partition, published))


def _count_published(partition: int, changed: list[SCAOpportunity]) -> None:
    for stored in changed:
        metrics.sca_opportunities.labels(**_labels(stored)).inc()
        _remember(partition, stored)
    _gauges["stale"] = True


def _content(opportunity: SCAOpportunity) -> dict[str, Any]:
    return opportunity.model_dump(exclude={"revision"})


def _labels(opportunity: SCAOpportunity) -> dict[str, str]:
    return {
        "rule": metrics.rule_label(RULE_LABELS.get(opportunity.rule, opportunity.rule)),
        "state": metrics.state_label(opportunity.state),
        "specialty_group": metrics.specialty_label(opportunity.specialty_group),
    }


def _remember(partition: int, opportunity: SCAOpportunity) -> None:
    labels = _labels(opportunity)
    _open.setdefault(partition, {})[opportunity.opportunity_id] = (
        labels["rule"],
        labels["state"],
        labels["specialty_group"],
        metrics.dollars(opportunity.billed_amount),
    )


def _publish_open(assigned: frozenset[int]) -> None:
    """Open opportunities and their billed dollars, over the partitions this worker holds."""
    counts: dict[tuple[str, str, str], int] = {}
    dollars: dict[tuple[str, str, str], float] = {}
    for partition, items in _open.items():
        if assigned and partition not in assigned:
            continue
        for rule, state, specialty, billed in items.values():
            counts[(rule, state, specialty)] = counts.get((rule, state, specialty), 0) + 1
            dollars[(rule, state, specialty)] = dollars.get((rule, state, specialty), 0.0) + billed
    metrics.sca_opportunities_open.clear()
    metrics.sca_opportunity_dollars.clear()
    for (rule, state, specialty), count in counts.items():
        metrics.sca_opportunities_open.labels(rule=rule, state=state, specialty_group=specialty).set(count)
        metrics.sca_opportunity_dollars.labels(rule=rule, state=state, specialty_group=specialty).set(
            dollars[(rule, state, specialty)]
        )


@app.timer(interval=GAUGE_REFRESH_S)
async def refresh_open_gauges() -> None:
    """Publish the open-opportunity gauges when opportunities changed (at most once per interval, not per
    event: a pass is proportional to the opportunities held). When the partitions this worker owns changed
    (start, restart, rebalance), recount them first from the table, which holds what those partitions
    recovered."""
    if app.rebalancing or app.in_recovery:
        return
    topic = ADEQUACY_OBSERVATIONS.full_name(settings)
    assignment = frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)
    if assignment != _gauges["assignment"]:
        _open.clear()
        for raw in list(opportunities.values()):
            entry = json.loads(raw)
            _remember(entry["partition"], SCAOpportunity.model_validate(entry["opportunity"]))
        _gauges.update(assignment=assignment, stale=True)
    if _gauges["stale"]:
        _gauges["stale"] = False
        _publish_open(assignment)
