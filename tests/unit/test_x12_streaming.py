"""Streaming: chunk boundaries anywhere give the same result, memory stays flat, caches stay bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.ingestion import x12
from services.ingestion.synthetic import generate_835, iter_835
from tests.unit.test_x12_support import FIXTURES, check_items, events, parse_file, parse_text

PROJECT = Path(__file__).resolve().parents[2]


def signature(items) -> list[str]:
    return [item.model_dump_json() for item in items]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.835")), ids=lambda path: path.name)
def test_any_chunk_size_gives_the_same_items(path):
    reference, reference_summary = parse_file(path)
    for chunk_size in range(256, 300):
        items, summary = parse_file(path, chunk_size=chunk_size)
        assert signature(items) == signature(reference), chunk_size
        assert summary.to_dict() == reference_summary.to_dict(), chunk_size


@pytest.mark.parametrize("newline", ["", "\n", "\r\n"])
def test_segments_split_across_many_chunk_boundaries(newline):
    text = generate_835(600, seed=5, claims_per_transaction=150, newline=newline)
    assert len(text) > 20 * 4096
    whole, whole_summary = parse_text(text)
    check_items(whole, whole_summary)
    assert whole_summary.claims_seen == whole_summary.events_emitted == 600
    assert whole_summary.warnings == [] and whole_summary.claims_with_balance_issues == 0
    for chunk_size in (4096, 4097, 65_536 + 3):
        items, summary = parse_text(text, chunk_size=chunk_size)
        assert signature(items) == signature(whole)
        assert summary.segments == whole_summary.segments


def test_event_ids_do_not_depend_on_line_breaks_or_file_name():
    one_line = generate_835(50, seed=9, newline="")
    crlf = generate_835(50, seed=9, newline="\r\n")
    a, _ = parse_text(one_line, name="a.835")
    b, _ = parse_text(crlf, name="b.835")
    assert [event.event_id for event in events(a)] == [event.event_id for event in events(b)]
    assert [event.source.line for event in events(a)] == [1] * 50
    assert events(b)[0].source.line == events(b)[0].source.segment_index


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    sys.path.insert(0, sys.argv[2])
    from services.ingestion.x12 import parse_path
    run = parse_path(sys.argv[1], b"memory-probe")
    for item in run:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"maxrss_kib": maxrss, "claims": run.summary.claims_seen, "accounted": run.summary.accounted}))
    """
)


def _write_repeated(path: Path, target_bytes: int) -> int:
    """A large file made of distinct transactions (unique amounts) repeated until ``target_bytes``."""
    pieces = list(iter_835(2_000, seed=11, claims_per_transaction=250, unique_amounts=True))
    header, transactions, trailer = pieces[:2], pieces[2:-1], pieces[-1]
    size = 0
    with open(path, "w", encoding="ascii", newline="") as handle:
        for piece in header:
            handle.write(piece)
            size += len(piece)
        while size < target_bytes:
            for piece in transactions:
                handle.write(piece)
                size += len(piece)
        handle.write(trailer)
    return size


def _probe(path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path), str(PROJECT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(result.stdout)


def test_memory_is_flat_on_a_50_mb_file(tmp_path):
    small = tmp_path / "small.835"
    large = tmp_path / "large.835"
    _write_repeated(small, 5 * 10**6)
    assert _write_repeated(large, 50 * 10**6) >= 50 * 10**6
    small_probe = _probe(small)
    large_probe = _probe(large)
    assert small_probe["accounted"] and large_probe["accounted"]
    assert large_probe["claims"] > 8 * small_probe["claims"]
    growth_mib = (large_probe["maxrss_kib"] - small_probe["maxrss_kib"]) / 1024
    # 10x the input, (almost) the same memory: the chunk, the current claim and bounded caches
    assert growth_mib < 24, (small_probe, large_probe)


def test_caches_are_bounded(monkeypatch):
    monkeypatch.setattr(x12, "_CACHE_LIMIT", 50)
    monkeypatch.setattr(x12, "_MEMO_LIMIT", 40)
    parser = x12.Parser("bounded.835", b"k", chunk_size=4096)
    largest = {"memo": 0, "decimals": 0}
    text = generate_835(300, seed=3, unique_amounts=True).encode()
    import io

    for _ in parser.items(io.BytesIO(text)):
        largest["memo"] = max(largest["memo"], len(parser._memo))
        largest["decimals"] = max(largest["decimals"], len(parser._decimals))
    assert parser.summary.events_emitted == 300
    assert largest["memo"] <= 40 and largest["decimals"] <= 50
