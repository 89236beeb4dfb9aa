#!/usr/bin/env python3
"""Throughput of the 835 parser beside a plain ISA-aware ``str.split`` of the same file, in one run.

    python scripts/bench_parse.py [--claims 10000] [--seed 1] [--repeats 3] [--unique-amounts] [--keep]

Writes a synthetic 835 (``services.ingestion.synthetic.write_835``: one ISA/GS, one ST per 500 claims,
1-5 service lines per claim with claim/line CAS, AMT*B6 most of the time, LQ*HE remarks, MOA, reversals,
PLB) and times, best of ``--repeats`` each, interleaved:

* split baseline, the one issue #3 describes ("a plain ISA-aware str.split of the same file runs at about
  17 MB/s, about 47,000 claims/s, on these machines"): read the file, take the element separator and
  segment terminator from the ISA, split it into segments and every segment into elements with
  ``str.split``, keeping the result (a list of element lists, what a split-based parser starts from), count
  CLP segments. It measures 14-16 MB/s here, the issue's figure;
* two leaner splits, printed beside it so that nobody has to take one baseline on trust: the same with the
  cyclic garbage collector off (the kept lists make the collector walk them again and again), and a
  streaming split that drops each segment's elements at once and keeps nothing (about 80 MB/s: five times
  the issue's figure, so not the baseline it measured);
* parser: ``parse_path`` over the same file, every item consumed (events are built, nothing is printed).

Amounts repeat the way real remittances do by default (one charge master, one fee schedule per product,
a panel of patients); ``--unique-amounts`` draws every charge and allowed amount at random, the worst case
for the parser's per-text caches. Peak memory is measured in a separate, untimed parser run with
tracemalloc (Python allocations); the process maxrss printed beside it includes the split baseline's kept
lists, so it is an upper bound.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from services.ingestion.synthetic import write_835  # noqa: E402
from services.ingestion.x12 import parse_path  # noqa: E402

HMAC_KEY = b"bench-key"


def _read_with_delimiters(path: Path) -> tuple[str, str, str]:
    """The file's text, element separator and segment terminator, taken from the ISA."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    start = text.find("ISA")
    element = text[start + 3]
    position = start + 3
    for _ in range(15):  # the 16th element separator precedes ISA16; the terminator follows ISA16
        position = text.find(element, position + 1)
    return text, element, text[position + 2]


def baseline(path: Path) -> int:
    """The issue's split baseline: every segment split into its elements, the result kept; count CLP."""
    text, element, terminator = _read_with_delimiters(path)
    segments = [segment.strip().split(element) for segment in text.split(terminator)]
    return sum(1 for elements in segments if elements[0] == "CLP")


def baseline_gc_off(path: Path) -> int:
    """The split baseline with the cyclic garbage collector off for the run."""
    gc.disable()
    try:
        return baseline(path)
    finally:
        gc.enable()


def baseline_streaming(path: Path) -> int:
    """A split that keeps nothing: each segment's elements are dropped as soon as CLP is counted."""
    text, element, terminator = _read_with_delimiters(path)
    claims = 0
    for segment in text.split(terminator):
        if segment.strip().split(element)[0] == "CLP":
            claims += 1
    return claims


BASELINES = {
    "split": baseline,
    "split_gc_off": baseline_gc_off,
    "split_streaming": baseline_streaming,
}


def parser(path: Path) -> tuple[int, dict]:
    run = parse_path(path, HMAC_KEY)
    events = 0
    for item in run:
        if item.event_type == "remittance":
            events += 1
    return events, run.summary.to_dict()


def best_of(function, path: Path, repeats: int) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        result = function(path)
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(claims: int = 10_000, seed: int = 1, repeats: int = 3, unique_amounts: bool = False) -> dict:
    """Write the file, time baseline and parser (interleaved, best of ``repeats``), measure peak memory."""
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as folder:
        path = Path(folder) / "bench.835"
        size = write_835(path, claims, seed, unique_amounts=unique_amounts)
        baseline_best = dict.fromkeys(BASELINES, float("inf"))
        baseline_claims = dict.fromkeys(BASELINES, 0)
        parser_best = float("inf")
        summary: dict = {}
        for _ in range(repeats):  # interleaved so that all of them see the same machine load
            for name, function in BASELINES.items():
                seconds, baseline_claims[name] = best_of(function, path, 1)
                baseline_best[name] = min(baseline_best[name], seconds)
            seconds, (_events, summary) = best_of(parser, path, 1)
            parser_best = min(parser_best, seconds)
        tracemalloc.start()
        parser(path)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "claims": claims,
        "file_bytes": size,
        "baselines": {
            name: {
                "seconds": baseline_best[name],
                "mb_per_s": size / baseline_best[name] / 1e6,
                "claims_per_s": baseline_claims[name] / baseline_best[name],
                "ratio": baseline_best[name] / parser_best,
            }
            for name in BASELINES
        },
        "baseline_seconds": baseline_best["split"],
        "baseline_mb_per_s": size / baseline_best["split"] / 1e6,
        "baseline_claims_per_s": baseline_claims["split"] / baseline_best["split"],
        "parser_seconds": parser_best,
        "parser_mb_per_s": size / parser_best / 1e6,
        "parser_claims_per_s": summary["claims_seen"] / parser_best,
        "ratio": baseline_best["split"] / parser_best,
        "parser_peak_tracemalloc_mib": peak / 2**20,
        "process_maxrss_mib": maxrss_kib / 1024,
        "events": summary["events_emitted"],
        "dead_letters": summary["dead_letters"],
        "accounted": summary["accounted"],
        "unique_amounts": unique_amounts,
    }


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--claims", type=int, default=10_000)
    options.add_argument("--seed", type=int, default=1)
    options.add_argument("--repeats", type=int, default=3)
    options.add_argument("--unique-amounts", action="store_true", help="random amounts (cache worst case)")
    options.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = options.parse_args(argv)
    result = measure(args.claims, args.seed, args.repeats, args.unique_amounts)
    if args.json:
        print(json.dumps(result))
        return 0
    data = "unique random amounts" if result["unique_amounts"] else "realistic repetition"
    print(f"835 parse benchmark: {result['claims']} claims, {result['file_bytes'] / 1e6:.2f} MB ({data})")
    print(f"  {'':16} {'MB/s':>8} {'claims/s':>10} {'best s':>8} {'parser ratio':>13}")
    for name, figures in result["baselines"].items():
        print(
            f"  {name:16} {figures['mb_per_s']:8.1f} {figures['claims_per_s']:10.0f} {figures['seconds']:8.3f} "
            f"{figures['ratio']:13.2f}"
        )
    print(
        f"  {'parser':16} {result['parser_mb_per_s']:8.1f} {result['parser_claims_per_s']:10.0f} "
        f"{result['parser_seconds']:8.3f}"
    )
    print(f"  ratio parser/split baseline: {result['ratio']:.2f}")
    print(
        f"  parser peak memory: {result['parser_peak_tracemalloc_mib']:.1f} MiB (tracemalloc), "
        f"process maxrss {result['process_maxrss_mib']:.0f} MiB (with the split baseline's lists)"
    )
    print(f"  events {result['events']}, dead letters {result['dead_letters']}, accounted {result['accounted']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
