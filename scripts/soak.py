"""`make soak`: a worker under a steady stream for minutes; does its memory stay bounded?

Not part of CI (it runs for ten minutes by default). It uses the live benchmark's workload (the simulator's
world, replicated with new claim numbers: every event is a new claim, so the claim-state, context and
adequacy tables keep growing as they would in production) and its worker harness (scripts/bench_live.py),
on the broker of CLAIMWATCH_BOOTSTRAP_SERVERS:

1. fresh topics, reference data loaded, one `claimwatch worker`, every claim context published first;
2. remittances produced at ``--rate`` per second for ``--duration`` seconds (kafka-python, acks=all);
3. every ``--sample`` seconds: the worker's resident memory (VmRSS), evaluations so far, consumer lag;
4. verdict: the RSS of the last fifth of the run against the RSS of the middle fifth (after warm-up). The
   run fails (exit 1) when it grew by more than ``--max-growth`` percent, or when the worker fell behind
   (fewer evaluations than remittances sent, 60 s after the last send).

Prints one line per sample and a summary; ``--json`` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_live import (
    BOOTSTRAP,
    WorkerProcess,
    _delete_topics,
    build_workload,
    prepare_run,
    run_environment,
    stamp,
)
from kafka import KafkaProducer


def _log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _mib(value: float) -> str:
    return f"{value / (1 << 20):.0f} MiB"


def soak(rate: float, duration: float, sample: float, partitions: int, base_claims: int) -> dict:
    app_id = f"soak-{uuid.uuid4().hex[:10]}"
    prefix = f"{app_id}."
    total = int(rate * duration)
    _log(f"building the workload ({total} remittance events)")
    workload = build_workload(total, base_claims)
    env = run_environment(app_id, partitions)
    samples: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        root = Path(folder)
        worker = WorkerProcess(env, root)
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
        try:
            prepare_run(env, root, workload)
            worker.start()
            for key, value in workload.contexts:
                producer.send(f"{prefix}claims", key=key, value=value)
            producer.flush()
            worker.wait_for_metric(
                "claimwatch_events_in_total", len(workload.contexts), timeout=300, topic=f"{prefix}claims"
            )
            _log(f"worker ready, {len(workload.contexts)} claim contexts held; {rate:g}/s for {duration:g} s")
            started = time.monotonic()
            next_sample = started
            sent = 0
            while sent < total:
                now = time.monotonic()
                due = min(total, int((now - started) * rate))
                for _event_id, key, value in workload.events[sent:due]:
                    producer.send(f"{prefix}remittances", key=key, value=stamp(value))
                sent = due
                if now >= next_sample:
                    samples.append(_sample(worker, now - started, sent, prefix))
                    next_sample += sample
                time.sleep(0.01)
            producer.flush()
            deadline = time.monotonic() + 60
            evaluated = worker.metric_total("claimwatch_claims_evaluated_total")
            while evaluated < total and time.monotonic() < deadline:
                time.sleep(1)
                evaluated = worker.metric_total("claimwatch_claims_evaluated_total")
            samples.append(_sample(worker, time.monotonic() - started, sent, prefix))
            dead_letters = int(worker.metric_total("claimwatch_dead_letters_total"))
        finally:
            producer.close()
            worker.stop()
            _delete_topics(app_id)
    fifth = max(1, len(samples) // 5)
    middle = samples[2 * fifth : 3 * fifth] or samples
    last = samples[-fifth:]
    middle_rss = sum(item["rss"] for item in middle) / len(middle)
    last_rss = sum(item["rss"] for item in last) / len(last)
    return {
        "rate": rate,
        "duration_s": duration,
        "sent": total,
        "evaluated": int(evaluated),
        "dead_letters": dead_letters,
        "samples": samples,
        "middle_rss_bytes": middle_rss,
        "last_rss_bytes": last_rss,
        "growth_percent": 100.0 * (last_rss - middle_rss) / middle_rss,
        "peak_rss_bytes": max(item["rss"] for item in samples),
    }


def _sample(worker: WorkerProcess, elapsed: float, sent: int, prefix: str) -> dict:
    rss = worker._status().get("VmRSS", 0)
    evaluated = worker.metric_total("claimwatch_claims_evaluated_total")
    lag = worker.metric_total("claimwatch_consumer_lag_messages", topic=f"{prefix}remittances")
    _log(f"t={elapsed:6.0f} s  sent {sent:7d}  evaluated {evaluated:7.0f}  lag {lag:6.0f}  RSS {_mib(rss)}")
    return {"t": round(elapsed, 1), "sent": sent, "evaluated": int(evaluated), "lag": int(lag), "rss": rss}


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rate", type=float, default=100.0, help="remittances per second")
    options.add_argument("--duration", type=float, default=600.0, help="seconds of steady stream")
    options.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    options.add_argument("--partitions", type=int, default=4)
    options.add_argument("--base-claims", type=int, default=3000, help="claims simulated before replication")
    options.add_argument("--max-growth", type=float, default=20.0, help="largest accepted RSS growth, percent")
    options.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = options.parse_args(argv)
    result = soak(args.rate, args.duration, args.sample, args.partitions, args.base_claims)
    behind = result["evaluated"] < result["sent"]
    grew = result["growth_percent"] > args.max_growth
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"soak: {result['sent']} remittances at {args.rate:g}/s for {args.duration:g} s; "
            f"{result['evaluated']:.0f} evaluated, {result['dead_letters']:.0f} dead letters; "
            f"RSS middle fifth {_mib(result['middle_rss_bytes'])}, last fifth {_mib(result['last_rss_bytes'])} "
            f"({result['growth_percent']:+.1f} %), peak {_mib(result['peak_rss_bytes'])}"
        )
    if behind:
        print(f"soak: the worker fell behind ({result['evaluated']:.0f} of {result['sent']} evaluated)")
    if grew:
        print(f"soak: RSS grew by more than {args.max_growth:g} % between the middle and the end of the run")
    return 1 if behind or grew else 0


if __name__ == "__main__":
    sys.exit(main())
