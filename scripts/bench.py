#!/usr/bin/env python3
"""``make bench``: every claimwatch benchmark in one run, one table, written to BENCHMARKS.md.

    python scripts/bench.py [--quick] [--no-live] [--output BENCHMARKS.md] [--json FILE]

1. 835 parse (``scripts/bench_parse.py``): a synthetic 10,000-claim 835, the parser's MB/s and claims/s
   beside ISA-aware ``str.split`` baselines of the same file (best of interleaved repeats), with realistic
   amount repetition and with unique random amounts (the worst case for the parser's caches).
2. Offline pricing + underpayment evaluation (``scripts/bench_price.py``'s events): ``evaluate`` +
   ``apply_remittance`` on one core, claims/s and lines/s (CPU time; wall time beside it).
3. Live path (``scripts/bench_live.py``) on the real broker at CLAIMWATCH_BOOTSTRAP_SERVERS: a burst of
   remittances through a real ``claimwatch worker`` (claims/s from the first to the last evaluation) beside
   a bare aiokafka consumer that only json-decodes the same topic (ratio = worker / bare), then the
   remittance-to-evaluation latency p50/p95/p99 at a steady rate, and the worker's peak RSS; then the same
   burst through two workers in one consumer group.

``--quick`` scales everything down (smoke run, about two minutes); the full run takes about 10 minutes on
a 2-core machine. BENCHMARKS.md is overwritten with the latest table, the date and the command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "scripts"))

import bench_live  # noqa: E402
import bench_parse  # noqa: E402
import bench_price  # noqa: E402

FULL = {
    "parse_claims": 10_000,
    "parse_repeats": 5,
    "price_claims": 20_000,
    "burst": 50_000,
    "rate": 1000.0,
    "duration": 20.0,
    "burst_window": 90.0,
    "grace": 20.0,
    "scaling_workers": 2,
}
QUICK = {
    "parse_claims": 2_000,
    "parse_repeats": 3,
    "price_claims": 3_000,
    "burst": 5_000,
    "rate": 1000.0,
    "duration": 5.0,
    "burst_window": 30.0,
    "grace": 10.0,
    "scaling_workers": 2,
}


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT, capture_output=True, text=True).stdout
        commit += " (with uncommitted changes)" if dirty.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        commit = os.environ.get("BENCH_COMMIT", "unknown")  # e.g. a `git archive` export has no .git
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def measure_pricing(claims: int, seed: int = 7) -> dict:
    """``bench_price``'s events through evaluate + apply_remittance on one core (this process, one thread)."""
    from services.pricing.reference import load_pricing_folder
    from services.underpayment.evaluate import apply_remittance, evaluate

    reference = load_pricing_folder(PROJECT / "services" / "reference" / "demo")
    events = bench_price.build_events(claims, reference, random.Random(seed))
    lines = sum(len(event.service_lines) for event, _ in events)
    gc.collect()
    gc.freeze()  # the pre-built inputs stay alive for the whole run; a live worker drops each event after use
    try:
        states: dict = {}
        alerts = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for event, context in events:
            evaluation = evaluate(event, context, reference)
            state, alert, _ = apply_remittance(states.get(evaluation.claim_key), evaluation)
            states[evaluation.claim_key] = state
            alerts += alert is not None
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        gc.unfreeze()
    return {
        "claims": len(events),
        "lines": lines,
        "alerts": alerts,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "claims_per_s": len(events) / cpu,
        "lines_per_s": lines / cpu,
        "wall_claims_per_s": len(events) / wall,
        "wall_lines_per_s": lines / wall,
    }


# ----------------------------------------------------------------------------------------------------
# The table


def _n(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def _latency(phase: dict, key: str) -> str:
    return ", ".join(f"{name} {bench_live._format_latency(value)}" for name, value in phase[key].items())


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    baseline_names = {
        "split": "split, elements kept (issue #3's baseline)",
        "split_gc_off": "the same, garbage collector off",
        "split_streaming": "streaming split, nothing kept",
    }
    for parse in results["parse"]:
        data = "unique random amounts" if parse["unique_amounts"] else "realistic repetition"
        for position, (name, baseline) in enumerate(parse["baselines"].items()):
            rows.append(
                (
                    f"835 parse: {parse['claims']:,} claims, {parse['file_bytes'] / 1e6:.1f} MB ({data})"
                    if position == 0
                    else "",
                    f"{_n(parse['parser_mb_per_s'], 1)} MB/s, {_n(parse['parser_claims_per_s'])} claims/s"
                    if position == 0
                    else "",
                    f"{baseline_names[name]}: {_n(baseline['mb_per_s'], 1)} MB/s, "
                    f"{_n(baseline['claims_per_s'])} claims/s",
                    f"{baseline['ratio']:.2f}",
                )
            )
    price = results["pricing"]
    rows.append(
        (
            f"Pricing + underpayment evaluation, one core ({price['claims']:,} claims, {price['lines']:,} lines)",
            f"{_n(price['claims_per_s'])} claims/s, {_n(price['lines_per_s'])} lines/s (CPU time)",
            f"wall: {_n(price['wall_claims_per_s'])} claims/s, {_n(price['wall_lines_per_s'])} lines/s",
            "",
        )
    )
    live = results.get("live")
    if live is None:
        rows.append(("Live path", "not run (--no-live)", "", ""))
        return rows
    if "error" in live:
        rows.append(("Live path", f"failed: {live['error']}", "", ""))
        return rows
    burst, bare = live["burst"], live["bare"]
    drained = (
        "all evaluated"
        if burst["drained"]
        else f"{burst['evaluated']:,} evaluated in the {burst['window_seconds']:.0f} s window, not drained"
    )
    rows.append(
        (
            f"Live worker throughput: burst of {burst['events']:,} remittances, {live['partitions']} partitions",
            f"{_n(burst['claims_per_s'])} claims/s ({drained})",
            f"bare aiokafka consumer (json.loads only): {_n(bare['messages_per_s'])} msg/s",
            f"{live['ratio']:.3f}",
        )
    )
    for phase in live["steady"]:
        rows.append(
            (
                f"Remittance-to-evaluation latency at {phase['target_rate']:g} claims/s for "
                f"{phase['events'] / phase['target_rate']:.0f} s",
                f"{_latency(phase, 'latency')} ({phase['evaluated']:,}/{phase['events']:,} evaluated within "
                f"{phase['grace_seconds']:.0f} s of the last send)",
                f"bare consumer of the remittances topic: {_latency(phase, 'bare_latency')}",
                "",
            )
        )
    rows.append(("Worker peak RSS", f"{live['worker_peak_rss_bytes'] / 2**20:,.0f} MiB (VmHWM)", "", ""))
    scaling = results.get("live_scaling")
    if scaling is not None:
        if "error" in scaling:
            rows.append(("Live worker throughput, several workers", f"failed: {scaling['error']}", "", ""))
        else:
            burst = scaling["burst"]
            drained = (
                "all evaluated"
                if burst["drained"]
                else f"{burst['evaluated']:,} evaluated in the {burst['window_seconds']:.0f} s window, not drained"
            )
            rows.append(
                (
                    f"Live throughput, {scaling['workers']} workers in one group: the same burst",
                    f"{_n(burst['claims_per_s'])} claims/s ({drained}); peak RSS "
                    f"{scaling['worker_peak_rss_bytes'] / 2**20:,.0f} MiB each at most",
                    f"bare aiokafka consumer: {_n(scaling['bare']['messages_per_s'])} msg/s",
                    f"{scaling['ratio']:.3f}",
                )
            )
    return rows


def render(results: dict) -> str:
    info = results["machine"]
    header = [
        f"Run {results['date']} on {info['cpu_count']} CPUs ({info['usable_cpus']} usable, {info['cpu_model']}), "
        f"Python {info['python']}, commit {info['commit']}, load average before the run "
        f"{', '.join(f'{value:.2f}' for value in info['load_average'] or ())}; total {results['seconds']:.0f} s.",
        "",
        "| Measurement | claimwatch | Baseline / comparison | Ratio |",
        "| --- | --- | --- | --- |",
    ]
    body = [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table_rows(results)]
    return "\n".join(header + body)


NOTES = """\
## How the figures are made

* **835 parse** (`scripts/bench_parse.py`): `services.ingestion.synthetic.write_835` writes the file (one
  ISA/GS, one ST per 500 claims, 1-5 service lines per claim with claim/line CAS, AMT*B6, LQ, MOA,
  reversals, PLB). Parser: `parse_path` with every item consumed (RemittanceEvent objects built, nothing
  printed). Baselines, each reading the file and taking the delimiters from the ISA: *split, elements
  kept* splits it into segments and every segment into elements with `str.split` and keeps that list of
  element lists (what a split-based parser starts from); it is the baseline issue #3 describes, whose
  figure there (about 17 MB/s on these machines) it reproduces. Two leaner variants are printed beside it
  so that no single baseline has to be taken on trust: the same with the cyclic garbage collector off
  (most of the split's time is the collector walking the kept lists), and a streaming split that drops
  each segment's elements at once and only counts CLP (about five times the issue's figure). Best of
  interleaved repeats of each. Ratio = parser throughput / baseline throughput.
* **Pricing + evaluation** (`scripts/bench_price.py`'s events against `services/reference/demo`):
  `evaluate` (prices the claim) + `apply_remittance` per event, claim state in a dict, one thread.
* **Live path** (`scripts/bench_live.py`): a fresh topic prefix and consumer group on the real broker; the
  simulator's world (`services.simulate`) for 3,000 claims, parsed by the project's parser, replicated with
  new payer claim numbers (CLP07: new claim keys and states; CLP01 and so the claim context shared with the
  original); `claimwatch topics create`, `claimwatch reference load` (the simulator's reference),
  a `claimwatch worker` subprocess; every claim context is published and held by the worker before any
  remittance. Burst: the events are produced as fast as aiokafka goes; worker throughput = evaluations /
  (broker timestamp of the last evaluation - of the first), over the burst or the window. When the worker
  does not drain the burst in the window, it is stopped, its group's offsets on the remittances topic and
  the adequacy tracker's internal topic are moved to the end and it is started again; when it drained the
  burst it gets up to a minute to work off the tracker's topic (the tracker trails the evaluations): the
  latency phases start from idle queues, and so does each phase after the first. Latency:
  events are stamped `ingested_at` just before they are sent at the steady rate; latency = arrival of the
  evaluation (by event id) at a consumer of the evaluations topic - `ingested_at`. When the worker cannot
  keep up with the requested rate, a phase at half its measured throughput comes first, and evaluations
  still missing at the end of the grace period count as lower bounds (">"). The bare consumer figures come
  from an aiokafka consumer of the same remittances topic in the same run (latency: during the same
  seconds; throughput: the whole topic from the beginning after the worker stopped). Peak RSS: VmHWM of
  the worker process from /proc (largest of its runs). Then the same burst through two workers in one
  consumer group (`--workers 2`: they split the 4 partitions; burst only, no latency phases).
* Everything shares the machine with the broker (and with whatever else runs on it): figures move by
  +-20 % between runs on a busy 2-core machine.
"""


def write_markdown(path: Path, results: dict, command: str) -> None:
    text = (
        "# claimwatch benchmarks\n\n"
        f"Produced by `{command}` on {results['date']} (overwritten by every run).\n\n"
        f"{render(results)}\n\n{NOTES}"
    )
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--quick", action="store_true", help="scaled-down smoke run (about a minute)")
    options.add_argument("--no-live", action="store_true", help="skip the live path (no broker needed)")
    options.add_argument("--burst", type=int, help="remittances in the live burst (default 50,000; quick 5,000)")
    options.add_argument("--output", type=Path, default=PROJECT / "BENCHMARKS.md", help="markdown file written")
    options.add_argument("--no-write", action="store_true", help="print the table only")
    options.add_argument("--json", type=Path, metavar="FILE", help="also write every figure as JSON")
    args = options.parse_args(argv)
    plan = dict(QUICK if args.quick else FULL)
    if args.burst:
        plan["burst"] = args.burst
    command = "make bench" if argv is None and os.environ.get("MAKELEVEL") else "python scripts/bench.py"
    extra = sys.argv[1:] if argv is None else argv
    if extra:
        command = "python scripts/bench.py " + shlex.join(extra)

    started = time.perf_counter()
    results: dict = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "plan": plan,
    }
    _log(f"835 parse: {plan['parse_claims']:,} claims, best of {plan['parse_repeats']}")
    results["parse"] = [
        bench_parse.measure(plan["parse_claims"], 1, plan["parse_repeats"], unique_amounts=unique)
        for unique in (False, True)
    ]
    _log(f"835 parse: ratio {results['parse'][0]['ratio']:.2f} (realistic), {results['parse'][1]['ratio']:.2f}")
    _log(f"pricing + evaluation: {plan['price_claims']:,} claims")
    results["pricing"] = measure_pricing(plan["price_claims"])
    _log(f"pricing + evaluation: {results['pricing']['claims_per_s']:,.0f} claims/s")
    if not args.no_live:
        _log(f"live path on {bench_live.BOOTSTRAP}")
        try:
            results["live"] = bench_live.run_live(
                plan["burst"], plan["rate"], plan["duration"], burst_window=plan["burst_window"], grace=plan["grace"]
            )
        except Exception as error:  # the other figures still go to the table
            _log(f"live path failed: {type(error).__name__}: {error}")
            results["live"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        workers = plan["scaling_workers"]
        _log(f"live path, the same burst through {workers} workers in one group")
        try:
            results["live_scaling"] = bench_live.run_live(
                plan["burst"], plan["rate"], 0.0, burst_window=plan["burst_window"], workers=workers
            )
        except Exception as error:
            _log(f"live path with {workers} workers failed: {type(error).__name__}: {error}")
            results["live_scaling"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    results["seconds"] = time.perf_counter() - started
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if not args.no_write:
        write_markdown(args.output, results, command)
        _log(f"wrote {args.output}")
    return 1 if "error" in results.get("live", {}) or "error" in results.get("live_scaling", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
