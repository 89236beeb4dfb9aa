"""The live mode of ``claimwatch simulate``: stream the simulated group to Kafka at a steady rate.

The remittance events are what ``claimwatch ingest`` would publish: each week's 835 text is parsed by the
project's parser (``services.ingestion.x12.parse_bytes``) and every item is published as it comes out —
RemittanceEvent and ProviderAdjustmentEvent to the remittances topic, a DeadLetter (there should be none)
to the dead-letter topic. Before the first remittance of a claim, its ClaimContext is published to the
claims topic (same partition key), so a worker always has the context when the remittance arrives.

The rate counts claims: the first remittance of claim ``i`` is published at ``start + i / rate`` on the
``time.monotonic`` clock, so pacing does not drift however long a publish takes; later remittances of a
claim already sent (secondary payer, reversal and correction) follow their file without waiting. Claim
contexts keep a steady lead over their remittances (``context_lead_s``, 2 seconds of claims by default).
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from schemas.claims import ClaimContext
from schemas.dead_letter import DeadLetter
from schemas.remittance import ProviderAdjustmentEvent, RemittanceEvent
from services.simulate.generate import Simulation, WeekBatch

PROGRESS_INTERVAL_S = 1.0
DEFAULT_CONTEXT_LEAD_S = 2.0


class EventSink(Protocol):
    """What the stream needs of services.ingestion.publish.Publisher."""

    def claim_context(self, context: ClaimContext) -> None: ...

    def remittance(self, event: RemittanceEvent | ProviderAdjustmentEvent) -> None: ...

    def dead_letter(self, letter: DeadLetter) -> None: ...

    def flush(self) -> None: ...


@dataclass
class StreamStats:
    rate: float
    claims: int = 0
    contexts: int = 0
    remittances: int = 0
    reversals: int = 0
    provider_adjustments: int = 0
    dead_letters: int = 0
    balance_issues: int = 0
    files: int = 0
    weeks: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def achieved_rate(self) -> float:
        return round(self.claims / self.elapsed_s, 2) if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["achieved_rate"] = self.achieved_rate
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data


class _ContextQueue:
    """Claim contexts in the order of their claims' first remittances, numbered with the global claim index.

    Weeks are added one ahead of the week being streamed, so the lead runs across week boundaries.
    """

    def __init__(self, max_claims: int | None):
        self.queue: deque[tuple[int, ClaimContext | None]] = deque()
        self.numbered: set[str] = set()
        self.next_index = 0
        self.max_claims = max_claims

    def add_week(self, contexts: list[ClaimContext], pieces: list) -> None:
        by_key = {context.partition_key: context for context in contexts}
        for piece in pieces:
            if isinstance(piece, RemittanceEvent) and piece.partition_key not in self.numbered:
                self.numbered.add(piece.partition_key)
                self.queue.append((self.next_index, by_key.get(piece.partition_key)))
                self.next_index += 1

    def publish_through(self, claim_index: int, sink: EventSink, stats: StreamStats) -> None:
        """Publish the contexts of the claims up to global index ``claim_index`` (included)."""
        while self.queue and self.queue[0][0] <= claim_index:
            index, context = self.queue[0]
            if self.max_claims is not None and index >= self.max_claims:
                return
            self.queue.popleft()
            if context is not None:
                sink.claim_context(context)
                stats.contexts += 1


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stream(
    simulation: Simulation,
    sink: EventSink,
    *,
    rate: float,
    hmac_key: bytes,
    max_claims: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    context_lead_s: float = DEFAULT_CONTEXT_LEAD_S,
    progress: Callable[[str], None] | None = _stderr,
    interval: float = PROGRESS_INTERVAL_S,
) -> StreamStats:
    """Publish the simulation at ``rate`` claims per second (at most ``max_claims`` claims).

    The ClaimContext of claim ``i`` goes out with claim ``i - rate * context_lead_s`` (a steady lead, never
    after its first remittance; the first ones go out together at the start), so that a worker has the
    context in its table when the remittance arrives: in life the 837 precedes the 835 by weeks.
    """
    from services.ingestion.x12 import parse_bytes

    if rate <= 0:
        raise ValueError("rate must be positive")
    stats = StreamStats(rate=rate)
    start = clock()
    next_report = start + interval
    sent_keys: set[str] = set()

    def report(now: float) -> None:
        nonlocal next_report
        if progress is None:
            return
        elapsed = max(now - start, 1e-9)
        progress(
            f"simulate: {elapsed:7.1f}s  {stats.claims} claims ({stats.claims / elapsed:.1f}/s, target {rate:g}/s)  "
            f"{stats.remittances} remittance events  {stats.dead_letters} dead letters"
        )
        next_report = now + interval

    def wait_until(target: float) -> None:
        while True:
            now = clock()
            if now >= next_report:
                report(now)
            if now >= target:
                return
            sleep(min(target, next_report) - now)

    lead = max(0, math.ceil(rate * context_lead_s))
    queue = _ContextQueue(max_claims)

    def prepared(batches: Iterator[WeekBatch]) -> Iterator[list]:
        """Each week's parsed pieces, with the next week's contexts already queued (one week ahead)."""
        current: list | None = None
        for batch in batches:
            pieces = []
            for item in batch.files:
                stats.files += 1
                pieces.extend(parse_bytes(item.text.encode("ascii"), item.name, hmac_key))
            queue.add_week(batch.contexts, pieces)
            if current is not None:
                yield current
            current = pieces
        if current is not None:
            yield current

    for pieces in prepared(simulation.weeks()):
        stats.weeks += 1
        for piece in pieces:
            if isinstance(piece, RemittanceEvent):
                key = piece.partition_key
                if key not in sent_keys:
                    if max_claims is not None and stats.claims >= max_claims:
                        stats.stopped_early = True
                        break
                    wait_until(start + stats.claims / rate)
                    queue.publish_through(stats.claims + lead, sink, stats)
                    sent_keys.add(key)
                    stats.claims += 1
                sink.remittance(piece)
                stats.remittances += 1
                stats.reversals += piece.status_code == "22"
                stats.balance_issues += len(piece.balance_issues)
            elif isinstance(piece, ProviderAdjustmentEvent):
                sink.remittance(piece)
                stats.provider_adjustments += 1
            else:
                sink.dead_letter(piece)
                stats.dead_letters += 1
                stats.dead_letter_reasons[piece.reason] = stats.dead_letter_reasons.get(piece.reason, 0) + 1
        if stats.stopped_early:
            break
    sink.flush()
    stats.elapsed_s = clock() - start
    report(clock())
    return stats
