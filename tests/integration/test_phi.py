"""No patient name and no member id leaves the parser (PRODUCT.md: "PHI stays out").

The simulated demo group (``claimwatch simulate --out DIR``: 835 files whose NM1*QC segments carry fictional
patient names and member ids) plus one deliberately malformed file (a bad CLP amount beside a patient's NM1*QC
and NM1*IL, and a good claim with other unique names) go through the demo pipeline on the real broker:
``claimwatch parse``, ``reference load``, ``ingest`` (claim context, then the 835 files), a worker at log level
debug, and two malformed messages written straight to the remittances topic (the worker's dead-letter path).

The names and member ids are collected from the 835 files independently of the parser (a plain segment split:
NM1*QC and NM1*IL, NM103/NM104/NM105 and NM109) and from claims.jsonl when it has such fields. Then none of
them may appear in: the stdout/stderr of every CLI run, the worker's log, its /metrics and /health, and every
message (key, value, headers) of every topic of the environment (alerts.underpayment, alerts.sca-opportunity,
alerts.nsa-deadline, evaluations, dead-letters, the internal topics, the Faust changelogs, and the remittances
and claims topics as ingest wrote them; only the two raw messages this test wrote itself are skipped there).

Matching: case-insensitive; a name (a run of letters of length >= 3) matches a run of letters of the scanned
text exactly (so UNDERHILL matches "underhill", "X_UNDERHILL" or "UNDERHILL*RILEY" but SAGE does not match
"message"); a member id matches anywhere inside a run of letters and digits. Names that are also words of the
domain data (the reference folder, the 835 segments other than NM1) are skipped and listed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import Counter
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from schemas.nsa import ClockTick
from tests.integration.support import BOOTSTRAP, Environment, Worker

CLAIMS = 600  # the demo's patterns (underpayment spike, SCA opportunities, NSA cases) at a test's size

MALFORMED_FILE = "zz-malformed-claim.835"
# The malformed file's own patients (unique: the simulator's name pool has none of these).
MALFORMED_835 = """\
ISA*00*          *00*          *ZZ*ACME1          *ZZ*COBALTRIDGE    *251030*0815*^*00501*990000001*0*P*:~
GS*HP*ACME1*COBALTRIDGE*20251030*0815*99*X*005010X221A1~
ST*835*9001~
BPR*I*150*C*ACH*CCP*01*011000015*DA*1234567890*1741234567**01*021000021*DA*9876543210*20251028~
TRN*1*AC25102899900001*1741234567~
DTM*405*20251028~
N1*PR*ACME HEALTH*XV*ACME1~
N1*PE*COBALT RIDGE SPECIALTY PARTNERS OF AZ*XX*1379713187~
LX*1~
CLP*AZ9990001*1*17O4.00*150*0*12*ACME1259990001*11*1~
NM1*QC*1*ZABRISKIE*MARGUERITE*QUENTINA***MI*ZQX0099887766~
NM1*IL*1*ZABRISKIE*OCTAVIAN****MI*ZQX0099887700~
SVC*HC:99213*200*150**1~
DTM*472*20251003~
CAS*CO*45*50~
AMT*B6*150~
CLP*AZ9990002*1*200*150*0*12*ACME1259990002*11*1~
NM1*QC*1*OKONKWOBELLE*THADDEUS****MI*ZQX0011223344~
NM1*82*1*HOLLOWAY*ROBIN****XX*1868183918~
SVC*HC:99213*200*150**1~
DTM*472*20251003~
CAS*CO*45*50~
AMT*B6*150~
SE*22*9001~
GE*1*99~
IEA*1*990000001~
"""
# Written straight to the remittances topic, as a broken upstream producer might: the worker dead-letters them.
RAW_MALFORMED = (
    b'{"schema_version":1,"event_type":"remittance","patient_name":"ZABRISKIE MARGUERITE",'
    b'"member_id":"ZQX0099887766","total_charge":"17O4.00"}',
    b"NM1*QC*1*OKONKWOBELLE*THADDEUS****MI*ZQX0011223344~ not json",
)
PATIENT_QUALIFIERS = ("QC", "IL")  # NM101: patient; insured/subscriber
MIN_NAME = 3
MIN_ID = 3


# --------------------------------------------------------------------------------------------------
# What must not appear: collected from the input files, without the project's parser


def segments(text: str) -> list[list[str]]:
    """The segments of an X12 interchange as lists of elements (separators from the ISA)."""
    start = text.find("ISA")
    element, terminator = text[start + 3], text[start + 105]
    return [
        segment.strip().split(element)
        for segment in text[start:].replace("\r", "").replace("\n", "").split(terminator)
        if segment.strip()
    ]


def letter_words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]+", text)


def collect_phi(out: Path) -> tuple[set[str], set[str], dict[str, str], Counter]:
    """(patient names, member ids, skipped name -> where it is a domain word, counts of what was read)."""
    seen: Counter = Counter()
    names: set[str] = set()
    ids: set[str] = set()
    domain: dict[str, str] = {}
    for path in sorted((out / "remittances").glob("*.835")):
        seen["835 files"] += 1
        for elements in segments(path.read_text()):
            if elements[0] == "NM1":
                if len(elements) > 1 and elements[1] in PATIENT_QUALIFIERS:
                    seen[f"NM1*{elements[1]} segments"] += 1
                    for position in (3, 4, 5):  # last, first, middle name
                        if len(elements) > position:
                            names.update(w.upper() for w in letter_words(elements[position]) if len(w) >= MIN_NAME)
                    if len(elements) > 9 and len(elements[9].strip()) >= MIN_ID:
                        ids.add(elements[9].strip().upper())
                continue  # other NM1s (rendering provider...) are not domain vocabulary either
            for word in letter_words("*".join(elements[1:])):
                domain.setdefault(word.upper(), f"835 {elements[0]} segment")
    for path in sorted((out / "reference").rglob("*")):
        if path.is_file():
            for word in set(letter_words(path.read_text(errors="replace"))):
                domain.setdefault(word.upper(), f"reference/{path.relative_to(out / 'reference')}")
    # claims.jsonl: patient-identifying fields, if the claim context ever carries any
    for line in (out / "claims.jsonl").read_text().splitlines():
        for field, value in json.loads(line).items():
            lowered = field.lower()
            if not isinstance(value, str) or not value.strip():
                continue
            if "member" in lowered or "subscriber" in lowered:
                ids.add(value.strip().upper())
                seen[f"claims.jsonl {field}"] += 1
            elif "name" in lowered and ("patient" in lowered or "insured" in lowered):
                names.update(w.upper() for w in letter_words(value) if len(w) >= MIN_NAME)
                seen[f"claims.jsonl {field}"] += 1
    skipped = {name: domain[name] for name in sorted(names) if name in domain}
    return names - set(skipped), ids, skipped, seen


class Scanner:
    """Finds the collected names and ids in texts; remembers where."""

    def __init__(self, names: set[str], ids: set[str]):
        self.names = {name.upper() for name in names}
        self.ids = {value.upper() for value in ids}
        self.id_lengths = sorted({len(value) for value in self.ids})
        self.hits: list[str] = []
        self.scanned: Counter = Counter()

    def find(self, text: str) -> list[str]:
        found = [word for word in letter_words(text) if word.upper() in self.names]
        for token in re.findall(r"[A-Za-z0-9]+", text):
            if len(token) < self.id_lengths[0]:
                continue
            upper = token.upper()
            for size in self.id_lengths:
                if any(upper[i : i + size] in self.ids for i in range(len(upper) - size + 1)):
                    found.append(token)
                    break
        return found

    def scan(self, source: str, text: str, unit: str = "bytes", amount: int | None = None) -> None:
        self.scanned[(source, unit)] += len(text) if amount is None else amount
        for match in self.find(text):
            at = text.upper().find(match.upper())
            self.hits.append(f"{source}:: {match!r} in ...{text[max(at - 80, 0) : at + 80]!r}...")


# --------------------------------------------------------------------------------------------------
# The pipeline


def environment_topics(environment: Environment) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        return sorted(t for t in admin.list_topics() if t.startswith((environment.prefix, environment.app_id + "-")))
    finally:
        admin.close()


def read_topics(names: list[str]) -> dict[str, list]:
    """Every record of these topics, from the beginning to the end offsets of now."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(n, p) for n in names for p in sorted(consumer.partitions_for_topic(n) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = {tp: offset for tp, offset in consumer.end_offsets(partitions).items() if offset > 0}
        records: dict[str, list] = {name: [] for name in names}
        deadline = time.monotonic() + 120
        while end and time.monotonic() < deadline:
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                records[tp.topic].extend(batch)
            end = {tp: offset for tp, offset in end.items() if consumer.position(tp) < offset}
        assert not end, f"could not read to the end of {sorted(end)}"
        return records
    finally:
        consumer.close()


def end_offsets_total(names: list[str]) -> int:
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def wait_until_quiet(environment: Environment, worker: Worker, remittances: int, timeout: float = 150.0) -> None:
    """The worker read every remittance, and no topic of the environment grew for 3 s."""
    worker.wait_for_metric("claimwatch_events_in_total", remittances, timeout=timeout,
                           topic=environment.topic("remittances"))  # fmt: skip
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = end_offsets_total(environment_topics(environment))
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= 3.0:
            return
        time.sleep(0.5)


def send_ticks(environment: Environment, out: Path) -> int:
    """NSA clock ticks over the simulated payment weeks and after (the worker's own timer says 'today',
    when every simulated deadline has passed), so that reminders go to alerts.nsa-deadline."""
    manifest = json.loads((out / "manifest.json").read_text())
    first = dt.date.fromisoformat(manifest["first_payment_week"])
    days = [first + dt.timedelta(days=offset) for offset in range(0, 120, 3)]
    for partition in range(environment.partitions):
        ticks = [ClockTick(today=day, partition=partition).model_dump_json().encode() for day in days]
        environment.produce("nsa.case-updates", [(f"tick-{partition}".encode(), t) for t in ticks], partition)
    return len(days) * environment.partitions


def start_worker(environment: Environment) -> Worker:
    """A worker at log level debug (its own NSA clock off: the test ticks). The worker creates its changelog
    topics before Faust starts (services/app_cli.py): Faust's first partition assignment must not miss one
    ("Ignoring missing topic"), which made a worker crash with PartitionsMismatch at its first table write."""
    worker = environment.worker("w1", CLAIMWATCH_LOG_LEVEL="debug", CLAIMWATCH_NSA_TICK_INTERVAL_S="0").start()
    missed = [line for line in worker.log_path.read_text().splitlines() if "Ignoring missing topic" in line]
    assert not [line for line in missed if "changelog" in line], missed
    return worker


def run_demo(environment: Environment, worker: Worker, out: Path, cli: dict, scanner: Scanner, events: int) -> None:
    """scripts/demo.py's steps: claim context, then the 835 files; plus the raw malformed messages and ticks."""
    contexts = sum(1 for line in (out / "claims.jsonl").read_text().splitlines() if line.strip())
    ingested = environment.run("ingest", "--claims", str(out / "claims.jsonl"), **cli)
    scanner.scan("claimwatch ingest --claims: stdout+stderr", ingested.stdout + ingested.stderr)
    worker.wait_for_metric("claimwatch_events_in_total", contexts, timeout=120, topic=environment.topic("claims"))
    ingested = environment.run("ingest", "--force", str(out / "remittances"), **cli)
    scanner.scan("claimwatch ingest DIR: stdout+stderr", ingested.stdout + ingested.stderr)
    environment.produce("remittances", [(b"raw-malformed", value) for value in RAW_MALFORMED])
    wait_until_quiet(environment, worker, events + len(RAW_MALFORMED))
    send_ticks(environment, out)
    updates = environment.topic("nsa.case-updates")  # cases and ticks: wait until the worker read them all
    worker.wait_for_metric("claimwatch_events_in_total", end_offsets_total([updates]), timeout=120, topic=updates)
    wait_until_quiet(environment, worker, events + len(RAW_MALFORMED))


def test_no_patient_name_or_member_id_leaves_the_parser(environment: Environment):
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(what: str) -> None:
        timings[what] = time.monotonic() - started - sum(timings.values())

    out = environment.root / "demo"
    cli = {"CLAIMWATCH_LOG_LEVEL": "debug", "CLAIMWATCH_STATE_DIR": str(environment.root / "cli-state")}
    environment.run("simulate", "--out", str(out), "--claims", str(CLAIMS), "--no-verify")
    (out / "remittances" / MALFORMED_FILE).write_text(MALFORMED_835)
    names, ids, skipped, seen = collect_phi(out)
    scanner = Scanner(names, ids)
    assert {"ZABRISKIE", "MARGUERITE", "QUENTINA", "OCTAVIAN", "OKONKWOBELLE", "THADDEUS"} <= names
    assert {"ZQX0099887766", "ZQX0099887700", "ZQX0011223344"} <= ids
    assert len(names) >= 20 and len(ids) >= CLAIMS / 2, (len(names), len(ids))
    # the scanner itself: it finds what it looks for, and only that
    probe = scanner.find("x Zabriskie_marguerite; id=zqx0099887766; message usage")
    assert sorted(probe) == ["Zabriskie", "marguerite", "zqx0099887766"], probe
    lap("simulate + collect")

    # offline: claimwatch parse on every file
    files = [str(path) for path in sorted((out / "remittances").glob("*.835"))]
    parsed = environment.run("parse", *files, **cli)
    scanner.scan("claimwatch parse: stdout", parsed.stdout)
    scanner.scan("claimwatch parse: stderr", parsed.stderr)
    events = sum(1 for line in parsed.stdout.splitlines() if line.strip())
    letters = [json.loads(line) for line in parsed.stderr.splitlines() if '"dead_letter"' in line]
    assert any(d["reason"] == "bad_amount" and d["location"]["file"] == MALFORMED_FILE for d in letters), letters
    lap("parse")

    # live: the demo's steps (scripts/demo.py) with a worker at log level debug
    for args in (("topics", "create"), ("reference", "load", str(out / "reference"))):
        result = environment.run(*args, **cli)
        scanner.scan(f"claimwatch {args[0]} {args[1]}: stdout+stderr", result.stdout + result.stderr)
    worker = start_worker(environment)
    lap("topics, reference, worker start")
    try:
        run_demo(environment, worker, out, cli, scanner, events)
    except OSError as error:  # the worker's web port went away: say why
        exit_code = worker.process.poll()
        raise AssertionError(f"worker unreachable ({error}); exit code {exit_code}: {worker.log_tail(40)}") from error
    lap("ingest + worker processing")

    scanner.scan("worker /metrics", worker.metrics())
    scanner.scan("worker /health", worker.get("/health")[1].decode())
    records = read_topics(environment_topics(environment))
    for name, items in records.items():
        scanner.scanned[(f"topic {name}", "messages")] += 0  # listed even when empty
        for record in items:
            if record.value in RAW_MALFORMED:
                continue  # this test's own raw input
            parts = (record.key or b"", record.value or b"", *(part for header in record.headers for part in header))
            text = " ".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in parts)
            scanner.scan(f"topic {name}", text, unit="messages", amount=1)
    worker.stop()
    for started_worker in environment.workers:
        scanner.scan(f"worker log {started_worker.name} (debug)", started_worker.log_path.read_text())
    log = worker.log_path.read_text()
    lap("read + scan")

    logical = {name.removeprefix(environment.prefix): items for name, items in records.items()}
    dead = [json.loads(record.value) for record in logical.get("dead-letters", ())]
    print(f"\nPHI check: {len(names)} distinct patient names (length >= {MIN_NAME}) and {len(ids)} distinct "
          f"member ids, from {dict(seen)}")  # fmt: skip
    print(f"names skipped as domain words: {skipped or 'none'}")
    for (source, unit), amount in sorted(scanner.scanned.items()):
        print(f"  scanned {source:58s} {amount:>11,} {unit}")
    reasons = Counter(f"{d['stage']}/{d['reason']}" for d in dead)
    print(f"dead letters: {dict(reasons)}")
    print(f"time: {', '.join(f'{k} {v:.1f}s' for k, v in timings.items())}; total {time.monotonic() - started:.1f}s")
    print(f"hits: {len(scanner.hits)}")
    by_source = Counter(hit.split(":: ", 1)[0] for hit in scanner.hits)
    assert not scanner.hits, f"PHI found ({dict(by_source)}):\n" + "\n".join(scanner.hits[:40])

    # the run did what the demo does, so the scan covered real content
    for required in ("alerts.underpayment", "alerts.sca-opportunity", "alerts.nsa-deadline", "evaluations",
                     "dead-letters"):  # fmt: skip
        assert logical.get(required), f"topic {required} is empty or missing"
    assert any(
        d["stage"] == "parse" and d["reason"] == "bad_amount" and d["location"]["file"] == MALFORMED_FILE for d in dead
    ), "the malformed claim's dead letter is not on the dead-letter topic"
    stream_rejects = [d for d in dead if d["location"].get("topic") == environment.topic("remittances")]
    assert {d["reason"] for d in stream_rejects} >= {"schema_violation", "not_json"}, stream_rejects
    assert " DEBUG " in log, "the worker did not log at debug level"
