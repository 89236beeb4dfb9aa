"""The live No Surprises Act path on the real broker, with a clock the test controls.

The worker's own timer is off (CLAIMWATCH_NSA_TICK_INTERVAL_S=0); the test sends ClockTick messages with
chosen dates to every partition of ``nsa.case-updates`` and compares the reminders on
``alerts.nsa-deadline`` with what the pure core (build_case / refresh / due_reminders / mark_sent /
apply_action) predicts for the same ticks: same ids, same content, each exactly once, across a
"negotiation opened" action and a worker restart on a fresh state directory.

Barrier: after each step the test waits until the worker group has committed every record of the input
topics. A committed offset covers whole events whose outputs were flushed (services.streams.processing),
so by then every reminder of the step is on the broker and anything more would be a duplicate.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner import murmur2

from schemas.claims import ClaimContext
from schemas.nsa import CaseAction, ClockTick, NSACase
from schemas.remittance import RemittanceEvent
from services.nsa.calendar import DEFAULT_CALENDAR
from services.nsa.cases import (
    DEFAULT_OFFSETS,
    active_deadlines,
    apply_action,
    build_case,
    business_days_remaining,
    due_reminders,
    mark_sent,
    refresh,
)
from services.nsa.classify import classify
from services.nsa.clock import open_negotiation_deadline
from tests.integration.remittances import DEMO_REFERENCE, context, remittance
from tests.integration.support import BOOTSTRAP, PROJECT_ROOT, Environment

WORKER_SETTINGS = {"CLAIMWATCH_NSA_TICK_INTERVAL_S": "0", "CLAIMWATCH_NSA_REMINDER_OFFSETS": "10,5,1"}
OPEN_STATES = {"open", "negotiating"}
INPUT_TOPICS = ("claims", "remittances", "cases", "nsa.case-updates")


# --- claims -------------------------------------------------------------------------------------------


def nsa_claim(
    claim_id: str,
    initial_date: dt.date,
    *,
    line_remarks: tuple[str, ...] = (),
    claim_remarks: tuple[str, ...] = (),
    facility_type_code: str = "11",
    filing_indicator: str = "12",
) -> RemittanceEvent:
    """An emergency visit whose production date (the earliest date on it) is ``initial_date``."""
    base = remittance(
        claim_id, "99283", Decimal("900.00"), Decimal("300.00"), service_date=initial_date - dt.timedelta(days=19)
    )
    data = base.model_dump(mode="json")
    data["service_lines"][0]["remark_codes"] = list(line_remarks)
    data.update(
        remark_codes=list(claim_remarks), facility_type_code=facility_type_code, claim_filing_indicator=filing_indicator
    )
    event = RemittanceEvent.model_validate(data)
    assert event.production_date == initial_date
    return event


def claim_context(claim_id: str, **update: object) -> ClaimContext:
    return context(claim_id).model_copy(update=update)


def build_claims() -> tuple[list[ClaimContext], list[RemittanceEvent], dict[str, str]]:
    """Three federal claims (three different reasons), one state-process claim, one Medicare claim.

    Returns contexts, remittances and the expected classification per claim id.
    """
    claims = [
        # N877 on the line: NSA initial payment, open negotiation may start.
        ("NSA001", dt.date(2025, 11, 5), {"line_remarks": ("N877",)}, {}, "federal"),
        # N830 on the claim, POS 23: processed under NSA rules, federal process presumed.
        (
            "NSA002",
            dt.date(2025, 11, 7),
            {"claim_remarks": ("N830",), "facility_type_code": "23"},
            {"place_of_service_code": "23"},
            "federal",
        ),
        # No remark code, the claim context says emergency. Received on a Saturday: day 1 is Monday 11-10
        # (and 11-11, Veterans Day, does not count).
        ("NSA003", dt.date(2025, 11, 8), {}, {"emergency": True}, "federal"),
        # N858: a state process applies: the case is tracked but gets no federal reminders.
        ("NSA004", dt.date(2025, 11, 4), {"line_remarks": ("N858",)}, {"emergency": True}, "state"),
        # Medicare Part B: outside the NSA even in the emergency room: no case at all.
        (
            "NSA005",
            dt.date(2025, 11, 3),
            {"filing_indicator": "MB", "facility_type_code": "23"},
            {"emergency": True, "place_of_service_code": "23"},
            "not_applicable",
        ),
    ]
    contexts, events, categories = [], [], {}
    for claim_id, initial_date, remittance_fields, context_fields, category in claims:
        contexts.append(claim_context(claim_id, **context_fields))
        events.append(nsa_claim(claim_id, initial_date, **remittance_fields))
        categories[claim_id] = category
    return contexts, events, categories


# --- the pure core's prediction -----------------------------------------------------------------------


class Prediction:
    """What the live agent must do, computed with the pure core (same order of operations per case)."""

    def __init__(self, cases: list[NSACase]):
        self.cases = {case.claim_key: case for case in cases}
        self.reminders: dict[str, dict] = {}

    def tick(self, today: dt.date) -> list[str]:
        new = []
        for key, case in self.cases.items():
            case = refresh(case, today)
            due = due_reminders(case, today, DEFAULT_OFFSETS)
            for reminder in due:
                assert reminder.reminder_id not in self.reminders
                self.reminders[reminder.reminder_id] = reminder.model_dump(mode="json")
                new.append(reminder.reminder_id)
            self.cases[key] = mark_sent(case, due)
        return new

    def act(self, action: CaseAction) -> None:
        self.cases[action.claim_key] = apply_action(self.cases[action.claim_key], action)

    def open_cases(self, category: str) -> int:
        return sum(
            1
            for case in self.cases.values()
            if case.classification.category == category and case.state in OPEN_STATES and active_deadlines(case)
        )


def business_days_before(deadline: dt.date, count: int) -> dt.date:
    """The business day from which exactly ``count`` business days remain until ``deadline``."""
    day, seen = deadline, 0
    while seen < count:
        day -= dt.timedelta(days=1)
        if DEFAULT_CALENDAR.is_business_day(day):
            seen += 1
    assert DEFAULT_CALENDAR.business_days_between(day, deadline) == count
    return day


# --- broker helpers -----------------------------------------------------------------------------------


def settle(environment: Environment, timeout: float = 90.0) -> None:
    """Wait until the worker group has committed every record of the input topics."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=environment.app_id, enable_auto_commit=False)
    partitions = [
        TopicPartition(environment.topic(name), partition)
        for name in INPUT_TOPICS
        for partition in range(environment.partitions)
    ]
    deadline = time.monotonic() + timeout
    try:
        while True:
            ends = consumer.end_offsets(partitions)
            behind = {}
            for tp, end in ends.items():
                committed = consumer.committed(tp) or 0
                if committed < end:
                    behind[f"{tp.topic}[{tp.partition}]"] = (committed, end)
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker group did not commit its input in {timeout}s: {behind}")
            time.sleep(0.3)
    finally:
        consumer.close()


def send_ticks(environment: Environment, prediction: Prediction, days: list[dt.date], repeat: int = 2) -> list[str]:
    """Tick every partition on each day (``repeat`` times each day); the reminders the core expects."""
    for partition in range(environment.partitions):
        ticks = [
            ClockTick(today=day, partition=partition).model_dump_json().encode() for day in days for _ in range(repeat)
        ]
        environment.produce(
            "nsa.case-updates", [(f"tick-{partition}".encode(), tick) for tick in ticks], partition=partition
        )
    new = []
    for day in days:
        new.extend(prediction.tick(day))
    return new


def send_action(environment: Environment, prediction: Prediction, action: CaseAction, repeat: int = 1) -> None:
    record = (action.claim_key.encode(), action.model_dump_json().encode())
    environment.produce("cases", [record] * repeat)
    prediction.act(action)


def live_reminders(environment: Environment, expected: int) -> dict[str, dict]:
    """Every reminder on the alert topic; fails on a duplicate id."""
    reminders = environment.consume_json("alerts.nsa-deadline", expected=expected, timeout=30, idle=1.0)
    ids = [reminder["reminder_id"] for reminder in reminders]
    duplicates = sorted({identifier for identifier in ids if ids.count(identifier) > 1})
    assert not duplicates, f"reminders emitted more than once: {duplicates}"
    return {reminder["reminder_id"]: reminder for reminder in reminders}


def check_reminders(environment: Environment, prediction: Prediction, step: str) -> dict[str, dict]:
    settle(environment)
    live = live_reminders(environment, len(prediction.reminders))
    missing = sorted(set(prediction.reminders) - set(live))
    extra = sorted(set(live) - set(prediction.reminders))
    assert not missing and not extra, f"{step}: missing {missing}, unexpected {[live[i] for i in extra]}"
    for identifier, reminder in live.items():
        assert reminder == prediction.reminders[identifier], f"{step}: reminder {identifier} differs"
    return live


def partition_of(key: str, partitions: int) -> int:
    """Where the Java-compatible default partitioner (kafka-python, aiokafka) puts ``key``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


# --- the test -----------------------------------------------------------------------------------------


def test_reminders_fire_once_stop_after_negotiation_opened_and_survive_a_restart(environment: Environment):
    started = time.monotonic()
    contexts, events, categories = build_claims()
    by_claim = {item.patient_control_number: item for item in contexts}
    for event in events:  # the premise: the classifier reads these claims as intended
        assert (
            classify(event, by_claim[event.patient_control_number]).category == categories[event.patient_control_number]
        )
    expected_cases = {
        event.claim_key: build_case(event, by_claim[event.patient_control_number])
        for event in events
        if categories[event.patient_control_number] != "not_applicable"
    }
    keys = {event.patient_control_number: event.claim_key for event in events}
    prediction = Prediction(list(expected_cases.values()))
    federal = [keys[claim_id] for claim_id in ("NSA001", "NSA002", "NSA003")]
    deadline = {key: expected_cases[key].deadlines.open_negotiation_deadline for key in federal}
    first = keys["NSA001"]
    # Deadlines at most 3 business days apart: a tick 10 (5) days before one of them is 7-13 (2-8) days before
    # the others, so each tick round fires one threshold per case.
    assert DEFAULT_CALENDAR.business_days_between(min(deadline.values()), max(deadline.values())) <= 3

    environment.run("topics", "create")
    environment.run("reference", "load", str(PROJECT_ROOT / DEMO_REFERENCE))
    worker = environment.worker("w1", **WORKER_SETTINGS).start()

    # Claims are submitted before they are paid: the contexts first, then the remittances.
    environment.produce("claims", [(c.partition_key.encode(), c.model_dump_json().encode()) for c in contexts])
    settle(environment)
    environment.produce("remittances", [(e.partition_key.encode(), e.model_dump_json().encode()) for e in events])
    settle(environment)

    # Exactly the cases the core builds, keyed by claim key; none for the Medicare claim.
    records = environment.consume("nsa.case-updates", expected=len(expected_cases), timeout=30, idle=1.0)
    cases = [(record.partition, NSACase.model_validate_json(record.value)) for record in records]
    assert sorted(case.claim_key for _, case in cases) == sorted(expected_cases)
    assert keys["NSA005"] not in {case.claim_key for _, case in cases}
    for partition, case in cases:
        assert case == expected_cases[case.claim_key]
        # cases and nsa.case-updates are co-partitioned: an action keyed by claim key meets its case.
        assert partition == partition_of(case.claim_key, environment.partitions)
    assert not environment.consume_json("alerts.nsa-deadline", timeout=5, idle=1.0), "no tick, no reminder"

    # 10 and 5 business days before each open-negotiation deadline: one reminder per case and day,
    # whatever the number of ticks (each day is ticked twice on every partition).
    ten = sorted({business_days_before(deadline[key], 10) for key in federal})
    new = send_ticks(environment, prediction, ten)
    assert len(new) == 3 and {prediction.reminders[i]["offset"] for i in new} == {10}
    check_reminders(environment, prediction, "10 days before")
    five = sorted({business_days_before(deadline[key], 5) for key in federal})
    new = send_ticks(environment, prediction, five)
    assert len(new) == 3 and {prediction.reminders[i]["offset"] for i in new} == {5}
    check_reminders(environment, prediction, "5 days before")

    # NSA001: open negotiation notice sent; the same action delivered twice changes nothing more.
    opened = CaseAction(
        action_id="act-NSA001-opened", claim_key=first, action="negotiation_opened", action_date=five[0]
    )
    send_action(environment, prediction, opened, repeat=2)
    settle(environment)
    one_first = business_days_before(deadline[first], 1)
    new = send_ticks(environment, prediction, [one_first])
    assert new == [], "after negotiation_opened the open-negotiation reminders stop"
    check_reminders(environment, prediction, "after negotiation opened")
    sent_before_restart = len(prediction.reminders)

    # Restart: SIGTERM, then a new worker on a new state directory recovers the case table from its changelog.
    worker.stop()
    assert worker.process.returncode is not None
    worker = environment.worker("w2", **WORKER_SETTINGS).start()

    # The days already ticked again: nothing new.
    assert send_ticks(environment, prediction, [*ten, *five, one_first], repeat=1) == []
    check_reminders(environment, prediction, "same days after the restart")
    assert len(prediction.reminders) == sent_before_restart

    # Later days: 1 day before the other deadlines, the deadline days, and the day after (expired: nothing).
    later = sorted(
        {business_days_before(deadline[key], 1) for key in federal[1:]}
        | {deadline[key] for key in federal[1:]}
        | {DEFAULT_CALENDAR.next_business_day(deadline[federal[1]] + dt.timedelta(days=1))}
    )
    new = send_ticks(environment, prediction, later)
    assert sorted((prediction.reminders[i]["claim_key"], prediction.reminders[i]["offset"]) for i in new) == sorted(
        (key, 1) for key in federal[1:]
    )
    check_reminders(environment, prediction, "1 day before, after the restart")

    # NSA001 is now in open negotiation: reminders about its IDR window (business days 31 to 34).
    deadlines = prediction.cases[first].deadlines
    idr_days = sorted(
        {business_days_before(deadlines.idr_window_start, offset) for offset in DEFAULT_OFFSETS}
        | {business_days_before(deadlines.idr_window_end, 1), deadlines.idr_window_start, deadlines.idr_window_end}
    )
    new = send_ticks(environment, prediction, idr_days)
    assert {(prediction.reminders[i]["deadline_kind"], prediction.reminders[i]["offset"]) for i in new} == {
        (kind, offset) for kind in ("idr_window_start", "idr_window_end") for offset in DEFAULT_OFFSETS
    }
    assert {prediction.reminders[i]["claim_key"] for i in new} == {first}
    live = check_reminders(environment, prediction, "IDR window")

    # Summary: per case, the reminders that fired.
    fired = sorted((r["claim_key"], r["deadline_kind"], r["offset"]) for r in live.values())
    assert [item for item in fired if item[0] == first and item[1] == "open_negotiation"] == [
        (first, "open_negotiation", 5),
        (first, "open_negotiation", 10),
    ]
    for key in federal[1:]:
        assert [item[2] for item in fired if item[0] == key] == [1, 5, 10]
    assert not [item for item in fired if item[0] in {keys["NSA004"], keys["NSA005"]}]

    # Gauges (from the last tick, on every partition): NSA001 negotiating, the state case still open.
    assert worker.metric_total("claimwatch_nsa_cases_open", classification="federal") == prediction.open_cases(
        "federal"
    )
    assert worker.metric_total("claimwatch_nsa_cases_open", classification="state") == prediction.open_cases("state")
    letters = environment.consume_json("dead-letters", timeout=5, idle=1.0)
    assert not [letter for letter in letters if letter["stage"] in {"nsa", "remittances"}], letters
    print(f"NSA live test: {len(live)} reminders checked in {time.monotonic() - started:.1f}s")


def test_the_worker_timer_ticks_the_partitions_it_owns(environment: Environment):
    """The production clock: with CLAIMWATCH_NSA_TICK_INTERVAL_S set, the worker ticks by itself (today's
    date) and a due reminder fires once however many ticks follow."""
    today = dt.date.today()
    near = next(
        day
        for day in (today - dt.timedelta(days=back) for back in range(1, 120))
        if 2 <= business_days_remaining(today, open_negotiation_deadline(day)) <= 7
    )
    contexts = [claim_context("TMR001"), claim_context("TMR002")]
    events = [nsa_claim("TMR001", near, line_remarks=("N877",)), nsa_claim("TMR002", today, line_remarks=("N877",))]
    prediction = Prediction([build_case(event, item) for event, item in zip(events, contexts, strict=True)])
    expected = prediction.tick(today)
    assert [prediction.reminders[i]["claim_key"] for i in expected] == [events[0].claim_key]

    environment.run("topics", "create")
    environment.run("reference", "load", str(PROJECT_ROOT / DEMO_REFERENCE))
    worker = environment.worker("w1", CLAIMWATCH_NSA_TICK_INTERVAL_S="0.5").start()
    environment.produce("claims", [(c.partition_key.encode(), c.model_dump_json().encode()) for c in contexts])
    worker.wait_for_metric("claimwatch_events_in_total", len(contexts), topic=environment.topic("claims"))
    environment.produce("remittances", [(e.partition_key.encode(), e.model_dump_json().encode()) for e in events])
    worker.wait_for_metric("claimwatch_nsa_reminders_total", 1, timeout=60)
    # Several more rounds of ticks on every partition: still one reminder.
    ticks = worker.metric_total("claimwatch_events_in_total", topic=environment.topic("nsa.case-updates"))
    worker.wait_for_metric(
        "claimwatch_events_in_total", ticks + 3 * environment.partitions, topic=environment.topic("nsa.case-updates")
    )
    live = live_reminders(environment, len(expected))
    assert live == prediction.reminders
    assert worker.metric_total("claimwatch_nsa_reminders_total") == 1
