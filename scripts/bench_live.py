#!/usr/bin/env python3
"""The live path on the real broker: a ``claimwatch worker`` subprocess beside a bare aiokafka consumer.

    CLAIMWATCH_BOOTSTRAP_SERVERS=127.0.0.1:19092 python scripts/bench_live.py [--burst 50000] [--rate 1000]
        [--duration 20] [--base-claims 3000] [--partitions 4] [--workers 1] [--keep-topics] [--json]

What it does, in one run, on a fresh topic prefix and consumer group (``bench-<random>``):

1. Workload: the simulator's world (``services.simulate``: payers, contracts, SCAs, Medicare subset, claim
   contexts, 835 files) for ``--base-claims`` claims; every generated 835 is parsed by the project's parser
   into RemittanceEvents. The set is replicated with new payer claim numbers (CLP07, so new claim keys and
   claim states) and event ids until it holds ``burst + 1.5 x rate x duration`` remittance events, so the mix
   of payers, codes, reversals, corrections and secondary payments is the simulator's; copies keep CLP01 and
   so share their original's claim context. Values are serialized before any timing starts.
2. ``claimwatch topics create`` and ``claimwatch reference load`` (the simulator's reference), then a
   ``claimwatch worker`` (``--workers`` of them in one consumer group, which split the partitions) with its
   own state dir and web port; every claim context is published to the claims topic first, and the worker
   is given time to hold them all (claims precede their remittances).
3. Burst: ``--burst`` remittance events are produced as fast as aiokafka can, and a consumer of the
   evaluations topic counts the evaluations. Worker throughput = evaluations / (time of the last
   evaluation - time of the first), from the broker timestamps (CreateTime, set by the worker's producer).
4. Steady rate: once the burst is drained and the workers have worked off the adequacy tracker's topic
   too (at most a minute, else they are restarted past what is left; the same before each phase), events
   are published at ``--rate`` per second for ``--duration`` seconds, each stamped with ``ingested_at``
   just before it is sent. Latency = arrival of its evaluation at the consumer - ``ingested_at`` (end to
   end: producer, broker, worker, broker, consumer). A bare consumer of the remittances topic measures the
   same for the transport alone in the same seconds.
5. Bare consumer: an aiokafka consumer reads the whole remittances topic from the beginning and only
   decodes every value with ``json.loads``; its messages/s is the ceiling the worker is compared with
   (ratio = worker / bare).
6. Peak RSS of the worker: VmHWM from /proc (and the largest VmRSS sampled every 0.5 s); with several
   workers, the largest of them.

Topics of the run are deleted at the end (``--keep-topics`` keeps them). Only the worker started here is
stopped. Needs the broker at CLAIMWATCH_BOOTSTRAP_SERVERS (default 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

import services.worker_process  # noqa: E402

CLAIMWATCH = services.worker_process.CLAIMWATCH
BOOTSTRAP = os.environ.get("CLAIMWATCH_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
STAMP_PLACEHOLDER = b'"ingested_at":null'
FETCH_BYTES = 16 * 1024 * 1024


def _log(message: str) -> None:
    print(f"[bench-live {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------
# Workload


@dataclass
class Workload:
    reference_files: dict[str, bytes]
    contexts: list[tuple[bytes, bytes]]  # (key, value)
    events: list[tuple[str, bytes, bytes]]  # (event id, key, value with "ingested_at":null)
    base_claims: int
    base_events: int
    build_seconds: float


def build_workload(events_needed: int, base_claims: int = 3000, seed: int | None = None) -> Workload:
    """The simulator's world, parsed by the project's parser, replicated until ``events_needed`` events."""
    from schemas.remittance import RemittanceEvent
    from services.ingestion.x12 import parse_bytes
    from services.simulate.generate import DEFAULT_SEED, Simulation

    started = time.perf_counter()
    simulation = Simulation(seed=DEFAULT_SEED if seed is None else seed, claims=base_claims)
    contexts = []
    events: list[RemittanceEvent] = []
    for batch in simulation.weeks():
        contexts.extend(batch.contexts)
        for item in batch.files:
            for piece in parse_bytes(item.text.encode("ascii"), item.name, simulation.hmac_key):
                if isinstance(piece, RemittanceEvent):
                    events.append(piece)
    if not events:
        raise RuntimeError("the simulation produced no remittance event")
    # Copies get new payer claim numbers (CLP07, hence new claim keys and claim states) and new event ids;
    # they keep CLP01, so they share their original's claim context (one context per simulated claim).
    out_contexts = [(context.partition_key.encode(), context.model_dump_json().encode()) for context in contexts]
    out_events: list[tuple[str, bytes, bytes]] = []
    copy = 0
    while len(out_events) < events_needed:
        for event in events:
            if len(out_events) >= events_needed:
                break
            if copy:
                event = event.model_copy(
                    update={
                        "payer_claim_id": f"{event.payer_claim_id or event.patient_control_number}.{copy}",
                        "event_id": hashlib.sha256(f"{event.event_id}|{copy}".encode()).hexdigest()[:32],
                    }
                )
            value = event.model_dump_json().encode()
            if STAMP_PLACEHOLDER not in value:
                raise RuntimeError("RemittanceEvent JSON has no null ingested_at to stamp")
            out_events.append((event.event_id, event.partition_key.encode(), value))
        copy += 1
    used = {key for _, key, _ in out_events}  # contexts of the claims that have a remittance in the run
    out_contexts = [(key, value) for key, value in out_contexts if key in used]
    return Workload(
        reference_files=dict(simulation.reference_files),
        contexts=out_contexts,
        events=out_events,
        base_claims=base_claims,
        base_events=len(events),
        build_seconds=time.perf_counter() - started,
    )


def stamp(value: bytes, moment: dt.datetime | None = None) -> bytes:
    """The event with ``ingested_at`` set to ``moment`` (now by default), without re-serializing."""
    moment = moment or dt.datetime.now(dt.UTC)
    return value.replace(STAMP_PLACEHOLDER, b'"ingested_at":"' + moment.isoformat().encode() + b'"', 1)


# ----------------------------------------------------------------------------------------------------
# Worker subprocess


class WorkerProcess(services.worker_process.WorkerProcess):
    """One ``claimwatch worker`` started here (services.worker_process), optionally under a profiler, with its
    resident memory sampled."""

    def __init__(self, env: dict[str, str], root: Path, profile: Path | None = None):
        super().__init__(env, root / "state", root / "worker.log")
        self.profile = profile
        self.runs = 0
        self.peak_rss_sampled = 0
        self._sampling = False

    def command(self) -> list[str]:
        command = super().command()
        if self.profile is None:
            return command
        # a profiler around the worker; its report is written when the worker stops
        self.runs += 1
        output = self.profile if self.runs == 1 else self.profile.with_stem(f"{self.profile.stem}-{self.runs}")
        if self.profile.suffix == ".cprof":  # cProfile: exact call counts, slower worker
            return [sys.executable, "-m", "cProfile", "-o", str(output), *command]
        renderer = "pstats" if self.profile.suffix == ".pstats" else "text"  # pyinstrument: sampling
        return [sys.executable, "-m", "pyinstrument", "-r", renderer, "-o", str(output), *command]

    def start(self, wait: float = 120.0) -> WorkerProcess:
        super().start(wait)
        self._sampling = True
        threading.Thread(target=self._sample_rss, daemon=True).start()
        return self

    def _status(self) -> dict[str, int]:
        values = {}
        try:
            with open(f"/proc/{self.process.pid}/status") as handle:
                for line in handle:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        key, number, _unit = line.split()
                        values[key.rstrip(":")] = int(number) * 1024
        except (OSError, AttributeError):
            pass
        return values

    def _sample_rss(self) -> None:
        while self._sampling and self.process is not None and self.process.poll() is None:
            self.peak_rss_sampled = max(self.peak_rss_sampled, self._status().get("VmRSS", 0))
            time.sleep(0.5)

    def peak_rss(self) -> int:
        """VmHWM (peak resident set) of the worker (of every process it ran as), or the largest sampled VmRSS."""
        return max(self._status().get("VmHWM", 0), self.peak_rss_sampled)

    def stop(self, timeout: float = 30.0) -> None:
        self.peak_rss_sampled = self.peak_rss()
        self._sampling = False
        super().stop(timeout)


class WorkerGroup(services.worker_process.Workers):
    """``count`` workers in one consumer group (the partitions are split between them), driven as one: started
    and stopped together, metrics summed, the largest peak RSS. The profiler, when asked for, runs around
    the first one."""

    def __init__(self, env: dict[str, str], root: Path, count: int = 1, profile: Path | None = None):
        if count < 1:
            raise ValueError("a worker group needs at least one worker")
        members = []
        for index in range(count):
            folder = root / f"worker-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            members.append(WorkerProcess(env, folder, profile if index == 0 else None))
        super().__init__(members)

    @property
    def pids(self) -> list[int]:
        return [member.process.pid for member in self.members if member.process is not None]

    def start(self) -> None:
        for member in self.members:
            member.start()

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def peak_rss(self) -> int:
        return max(member.peak_rss() for member in self.members)

    def log_text(self) -> str:
        return "\n".join(member.log_path.read_text(errors="replace") for member in self.members)


# ----------------------------------------------------------------------------------------------------
# Kafka side (aiokafka)


@dataclass
class Arrivals:
    """What a consumer saw: broker timestamps of every record, and (when decoding) arrival time per event id."""

    decode: bool = False
    count: int = 0
    timestamps: list[float] = field(default_factory=list)
    by_event: dict[str, float] = field(default_factory=dict)


async def _assigned_consumer(topic: str):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest", group_id=None,
        fetch_max_bytes=FETCH_BYTES, max_partition_fetch_bytes=FETCH_BYTES,
    )  # fmt: skip
    await consumer.start()
    partitions = None
    for _ in range(60):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            break
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.5)
    if not partitions:
        await consumer.stop()
        raise RuntimeError(f"topic {topic} has no partitions")
    consumer.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
    return consumer


async def _follow(topic: str, arrivals: Arrivals, started: asyncio.Event, stop: asyncio.Event, from_end: bool):
    """Consume ``topic`` until ``stop``; json-decode the values when ``arrivals.decode`` (event id -> arrival)."""
    consumer = await _assigned_consumer(topic)
    if from_end:
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)  # resolve the end offsets now
    else:
        await consumer.seek_to_beginning()
    started.set()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            arrived = time.time()
            for records in batches.values():
                for record in records:
                    arrivals.count += 1
                    arrivals.timestamps.append(record.timestamp / 1000.0)
                    if arrivals.decode:
                        event_id = json.loads(record.value).get("event_id")
                        arrivals.by_event.setdefault(event_id, arrived)
    finally:
        await consumer.stop()


async def _bare_throughput(topic: str, expected: int, timeout: float = 120.0) -> dict:
    """Read the whole topic from the beginning, json-decode every value: messages per second (first to last)."""
    consumer = await _assigned_consumer(topic)
    await consumer.seek_to_beginning()
    count = 0
    first = last = None
    deadline = time.monotonic() + timeout
    try:
        while count < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            if batches and first is None:
                first = time.perf_counter()
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                    count += 1
            if batches:
                last = time.perf_counter()
    finally:
        await consumer.stop()
    elapsed = (last - first) if first is not None and last is not None and last > first else float("nan")
    return {"messages": count, "seconds": elapsed, "messages_per_s": count / elapsed if count else 0.0}


async def _produce(producer, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    futures = []
    for key, value in records:
        futures.append(await producer.send(topic, key=key, value=value))
        if len(futures) >= 5000:
            await asyncio.gather(*futures)
            futures = []
    await asyncio.gather(*futures)


async def _wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def censored_percentiles(samples: list[tuple[float, bool]], points=(50, 95, 99)) -> dict[str, dict]:
    """Percentiles of (value, censored) samples; a censored value is a lower bound (no evaluation yet)."""
    ordered = sorted(samples)
    result = {}
    for point in points:
        if not ordered:
            result[f"p{point}"] = {"seconds": None, "lower_bound": False}
            continue
        index = min(len(ordered) - 1, max(0, math.ceil(point / 100 * len(ordered)) - 1))
        value, censored = ordered[index]
        # any censored sample at or below this rank makes the percentile a lower bound only
        lower = censored or any(flag for _, flag in ordered[: index + 1])
        result[f"p{point}"] = {"seconds": value, "lower_bound": lower}
    return result


async def _skip_backlog(worker: WorkerGroup, app_id: str, topics: list[str], partitions: int) -> None:
    """Stop the workers, move their group's offsets on ``topics`` to the end, start them again (idle queues)."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec

    await asyncio.to_thread(worker.stop)

    def reset() -> None:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        try:
            tps = [TopicPartition(topic, partition) for topic in topics for partition in range(partitions)]
            specs = dict.fromkeys(tps, OffsetSpec.LATEST)
            deadline = time.monotonic() + 60
            while True:
                answer = admin.reset_group_offsets(app_id, specs)
                errors = [value["error"] for value in answer.values() if value["error"].__name__ != "NoError"]
                if not errors:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not reset the offsets of {app_id}: {errors[0]}")
                time.sleep(1.0)
        finally:
            admin.close()

    await asyncio.to_thread(reset)
    await asyncio.to_thread(worker.start)


def _backlog(app_id: str, topics: list[str], partitions: int) -> int:
    """Messages of ``topics`` past the group's committed offsets (what the workers still have to process)."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        tps = [TopicPartition(topic, partition) for topic in topics for partition in range(partitions)]
        ends = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
        committed = admin.list_group_offsets({app_id: tps}).get(app_id, {})
        total = 0
        for tp in tps:
            done = committed.get(tp)
            total += max(ends[tp].offset - (done.offset if done is not None and done.offset >= 0 else 0), 0)
        return total
    finally:
        admin.close()


async def _settle(worker: WorkerGroup, app_id: str, topics: list[str], partitions: int, wait: float) -> None:
    """Start a latency phase from idle queues: wait up to ``wait`` seconds for the workers to work off what
    is left on ``topics`` (the adequacy tracker often trails the evaluations), else skip past it."""
    deadline = time.monotonic() + wait
    left = await asyncio.to_thread(_backlog, app_id, topics, partitions)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        left = await asyncio.to_thread(_backlog, app_id, topics, partitions)
    if left:
        _log(f"{left} messages still to process after {wait:g} s: restarting the worker past them")
        await _skip_backlog(worker, app_id, topics, partitions)


async def _steady(producer, topic: str, records, rate: float, grace: float, evaluations: Arrivals, bare: Arrivals):
    """Publish ``records`` at ``rate``/s, each stamped just before it is sent; latencies by event id."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    for index, (event_id, key, value) in enumerate(records):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        moment = dt.datetime.now(dt.UTC)
        sent[event_id] = moment.timestamp()
        await producer.send(topic, key=key, value=stamp(value, moment))
    await producer.flush()
    sent_seconds = time.monotonic() - start
    await _wait_until(lambda: all(event_id in evaluations.by_event for event_id in sent), timeout=grace, interval=0.5)
    waited = time.time()
    await _wait_until(lambda: all(event_id in bare.by_event for event_id in sent), timeout=10.0)

    def samples(arrivals: Arrivals) -> list[tuple[float, bool]]:
        result = []
        for event_id, moment in sent.items():
            arrived = arrivals.by_event.get(event_id)
            result.append((waited - moment, True) if arrived is None else (arrived - moment, False))
        return result

    evaluated = sum(1 for event_id in sent if event_id in evaluations.by_event)
    return {
        "events": len(records),
        "target_rate": rate,
        "achieved_rate": len(records) / sent_seconds if sent_seconds > 0 else float("nan"),
        "evaluated": evaluated,
        "grace_seconds": grace,
        "latency": censored_percentiles(samples(evaluations)),
        "bare_latency": censored_percentiles(samples(bare)),
    }


async def _drive(
    app_id: str, workload: Workload, worker: WorkerGroup, *, burst: int, rate: float, duration: float,
    burst_window: float, grace: float, partitions: int, settle: float = 60.0,
) -> dict:  # fmt: skip
    from aiokafka import AIOKafkaProducer

    prefix = f"{app_id}."
    remittances, evaluations_topic = f"{prefix}remittances", f"{prefix}evaluations"
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=2, max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )  # fmt: skip
    await producer.start()
    result: dict = {}
    evaluations, bare = Arrivals(), Arrivals(decode=True)
    stop = asyncio.Event()
    tasks = []
    try:
        # claim contexts first: the worker must hold them before their remittances arrive
        started = time.perf_counter()
        await _produce(producer, f"{prefix}claims", workload.contexts)
        await asyncio.to_thread(
            worker.wait_for_metric, "claimwatch_events_in_total", len(workload.contexts), 600.0,
            topic=f"{prefix}claims",
        )  # fmt: skip
        result["contexts"] = {"count": len(workload.contexts), "seconds": time.perf_counter() - started}
        _log(f"{len(workload.contexts)} claim contexts held by the worker in {result['contexts']['seconds']:.1f} s")

        ready = asyncio.Event()
        tasks.append(asyncio.create_task(_follow(evaluations_topic, evaluations, ready, stop, from_end=False)))
        await ready.wait()

        # burst: as fast as the producer goes; throughput from the first to the last evaluation in the window
        burst_records = [(key, stamp(value)) for _, key, value in workload.events[:burst]]
        started = time.perf_counter()
        await _produce(producer, remittances, burst_records)
        produced_seconds = time.perf_counter() - started
        _log(f"burst of {burst} remittances produced in {produced_seconds:.1f} s; the worker evaluates them")
        await _wait_until(lambda: evaluations.count > 0, timeout=120.0)
        window_start = time.monotonic()
        next_report = [window_start + 10]

        def burst_done() -> bool:
            if time.monotonic() >= next_report[0]:
                _log(f"  {evaluations.count}/{burst} evaluations")
                next_report[0] += 10
            failed = worker.exited()
            if failed is not None:
                raise RuntimeError(f"worker exited: {failed}")
            return evaluations.count >= burst

        drained = await _wait_until(burst_done, timeout=burst_window)
        stamps = evaluations.timestamps[: evaluations.count]
        span = max(stamps) - min(stamps) if len(stamps) > 1 else float("nan")
        throughput = (len(stamps) - 1) / span if span and span > 0 else float("nan")
        result["burst"] = {
            "events": burst,
            "produce_seconds": produced_seconds,
            "evaluated": len(stamps),
            "drained": drained,
            "first_to_last_seconds": span,
            "claims_per_s": throughput,
            "window_seconds": burst_window,
        }
        _log(f"burst: {throughput:.0f} evaluations/s over {span:.1f} s ({len(stamps)}/{burst}, drained: {drained})")
        if len(worker.members) > 1:  # how evenly the group shared the work
            shares = [int(member.metric_total("claimwatch_claims_evaluated_total")) for member in worker.members]
            result["burst"]["evaluated_per_worker"] = shares
            _log(f"evaluations per worker: {shares}")
        result["steady"] = []
        if duration <= 0:  # burst only
            return result
        # the adequacy tracker's internal topic too: its backlog would hold the event loop during the phases
        queues = [remittances, f"{prefix}adequacy.observations"]
        if not drained:
            _log("the burst is not drained: restarting the worker past the backlog for the latency phases")
            await _skip_backlog(worker, app_id, queues, partitions)
        else:
            await _settle(worker, app_id, queues, partitions, settle)

        # steady phases, with a bare consumer of the remittances topic alongside
        bare_ready = asyncio.Event()
        tasks.append(asyncio.create_task(_follow(remittances, bare, bare_ready, stop, from_end=True)))
        await bare_ready.wait()
        evaluations.decode = True
        phases = [rate]
        if not throughput >= rate:  # the worker cannot keep up with the requested rate: also a rate it can
            sustainable = max(1.0, round(throughput * 0.5)) if throughput == throughput else 10.0
            phases = [sustainable, rate]
        offset = burst
        for phase_rate in phases:
            count = max(1, int(phase_rate * duration))
            records = workload.events[offset : offset + count]
            offset += count
            if result["steady"]:  # the previous phase may have left a backlog (a rate the worker cannot keep)
                await _settle(worker, app_id, queues, partitions, settle)
            _log(f"steady: {len(records)} remittances at {phase_rate:g}/s")
            phase = await _steady(producer, remittances, records, phase_rate, grace, evaluations, bare)
            result["steady"].append(phase)
            latency = phase["latency"]
            _log(
                "  latency "
                + ", ".join(f"{name} {_format_latency(value)}" for name, value in latency.items())
                + f" ({phase['evaluated']}/{phase['events']} evaluated within {grace:g} s of the last send)"
            )
    finally:
        stop.set()
        for task in tasks:
            try:
                await task
            except Exception as error:  # report: the figures are what matters
                _log(f"consumer task: {type(error).__name__}: {error}")
        await producer.stop()
    return result


def _format_latency(value: dict) -> str:
    seconds = value.get("seconds")
    if seconds is None:
        return "n/a"
    text = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
    return f">{text}" if value.get("lower_bound") else text


def _delete_topics(app_id: str) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        names = [name for name in admin.list_topics() if name.startswith(app_id)]
        if names:
            admin.delete_topics(names)
        return len(names)
    finally:
        admin.close()


def run_environment(app_id: str, partitions: int) -> dict[str, str]:
    """The environment of a run's claimwatch commands and workers: its own topic prefix and consumer group."""
    return dict(
        os.environ,
        CLAIMWATCH_BOOTSTRAP_SERVERS=BOOTSTRAP,
        CLAIMWATCH_TOPIC_PREFIX=f"{app_id}.",
        CLAIMWATCH_APP_ID=app_id,
        CLAIMWATCH_PARTITIONS=str(partitions),
        CLAIMWATCH_LOG_LEVEL="info",  # the harness waits for "Worker ready" in the log
    )


def prepare_run(env: dict[str, str], root: Path, workload: Workload) -> None:
    """Write the workload's reference files under ``root``, create the run's topics, load the reference."""
    reference = root / "reference"
    for relative, content in workload.reference_files.items():
        path = reference / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for args in (("topics", "create"), ("reference", "load", str(reference))):
        done = subprocess.run([CLAIMWATCH, *args], env=env, cwd=PROJECT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"claimwatch {' '.join(args)} failed: {done.stderr[-2000:]}")


def run_live(
    burst: int = 50_000,
    rate: float = 1000.0,
    duration: float = 20.0,
    *,
    base_claims: int = 3000,
    partitions: int = 4,
    burst_window: float = 90.0,
    grace: float = 20.0,
    keep_topics: bool = False,
    profile: Path | None = None,
    workers: int = 1,
) -> dict:
    """The whole live measurement (see the module docstring); returns the figures."""
    app_id = f"bench-{uuid.uuid4().hex[:10]}"
    prefix = f"{app_id}."
    # at most two steady phases: half the measured throughput when the worker cannot keep up, then ``rate``
    steady_events = int(1.5 * rate * duration)
    _log(f"building the workload (up to {burst} + {steady_events} remittance events from the simulator)")
    workload = build_workload(burst + steady_events, base_claims)
    _log(
        f"workload: {len(workload.events)} events, {len(workload.contexts)} claim contexts "
        f"({workload.base_events} simulated events replicated) in {workload.build_seconds:.1f} s"
    )
    env = run_environment(app_id, partitions)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        root = Path(folder)
        try:
            prepare_run(env, root, workload)
            worker = WorkerGroup(env, root, workers, profile)
            try:
                started = time.perf_counter()
                worker.start()
                _log(f"{workers} worker(s) ready in {time.perf_counter() - started:.1f} s (pids {worker.pids})")
                result = asyncio.run(
                    _drive(
                        app_id, workload, worker, burst=burst, rate=rate, duration=duration,
                        burst_window=burst_window, grace=grace, partitions=partitions,
                    )
                )  # fmt: skip
                result["worker_peak_rss_bytes"] = worker.peak_rss()
                result["worker_dead_letters"] = int(worker.metric_total("claimwatch_dead_letters_total"))
            finally:
                worker.stop()
            log_text = worker.log_text()
            if "Traceback" in log_text:
                kept = PROJECT / "bench-out" / f"worker-{app_id}.log"
                kept.parent.mkdir(exist_ok=True)
                kept.write_text(log_text)
                result["worker_log_tracebacks"] = log_text.count("Traceback")
                first = log_text.index("Traceback")
                excerpt = "\n".join(log_text[first:].splitlines()[:25])
                _log(f"the worker log holds {log_text.count('Traceback')} traceback(s), kept in {kept}:\n{excerpt}")
            total = burst + sum(phase["events"] for phase in result["steady"])
            _log(f"bare consumer: reading the {total} remittances from the beginning")
            result["bare"] = asyncio.run(_bare_throughput(f"{prefix}remittances", total))
        finally:
            if not keep_topics:
                try:
                    deleted = _delete_topics(app_id)
                    _log(f"deleted the {deleted} topics of {app_id}")
                except Exception as error:  # cleanup must not lose the figures
                    _log(f"could not delete the topics of {app_id}: {error}")
    result["ratio"] = result["burst"]["claims_per_s"] / result["bare"]["messages_per_s"]
    result.update(
        app_id=app_id,
        partitions=partitions,
        workers=workers,
        workload={
            "events": len(workload.events),
            "contexts": len(workload.contexts),
            "base_claims": workload.base_claims,
            "base_events": workload.base_events,
            "build_seconds": workload.build_seconds,
            "mean_event_bytes": sum(len(value) for _, _, value in workload.events) / len(workload.events),
        },
    )
    return result


def summary_lines(result: dict) -> list[str]:
    burst, bare = result["burst"], result["bare"]
    lines = [
        f"{result['workers']} worker(s) burst: {burst['claims_per_s']:.0f} claims/s "
        f"({burst['evaluated']}/{burst['events']} evaluated, "
        f"drained: {burst['drained']})",
        f"bare aiokafka json consumer: {bare['messages_per_s']:.0f} msg/s; ratio {result['ratio']:.4f}",
    ]
    for phase in result["steady"]:
        latency = ", ".join(f"{name} {_format_latency(value)}" for name, value in phase["latency"].items())
        bare_latency = ", ".join(f"{name} {_format_latency(value)}" for name, value in phase["bare_latency"].items())
        lines.append(
            f"latency at {phase['achieved_rate']:.0f}/s: {latency} "
            f"({phase['evaluated']}/{phase['events']} evaluated); bare consumer {bare_latency}"
        )
    lines.append(f"worker peak RSS: {result['worker_peak_rss_bytes'] / 2**20:.0f} MiB")
    return lines


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--burst", type=int, default=50_000, help="remittance events in the burst")
    options.add_argument("--rate", type=float, default=1000.0, help="steady rate, claims per second")
    options.add_argument(
        "--duration", type=float, default=20.0, help="seconds at the steady rate (0: the burst only)"
    )
    options.add_argument("--burst-window", type=float, default=90.0, help="longest wait for the burst (seconds)")
    options.add_argument("--grace", type=float, default=20.0, help="wait for evaluations after a steady phase")
    options.add_argument("--base-claims", type=int, default=3000, help="claims simulated before replication")
    options.add_argument("--partitions", type=int, default=4)
    options.add_argument("--workers", type=int, default=1, help="worker processes in the consumer group")
    options.add_argument("--keep-topics", action="store_true")
    options.add_argument(
        "--profile-worker",
        type=Path,
        metavar="FILE",
        help="run the worker under pyinstrument (FILE.pstats: pstats) or cProfile (FILE.cprof)",
    )
    options.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = options.parse_args(argv)
    result = run_live(
        args.burst, args.rate, args.duration, base_claims=args.base_claims, partitions=args.partitions,
        burst_window=args.burst_window, grace=args.grace, keep_topics=args.keep_topics, profile=args.profile_worker,
        workers=args.workers,
    )  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print("\n".join(summary_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
