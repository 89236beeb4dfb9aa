"""The worker's Kafka consumer: Faust's, with offset commits that never pass an event it did not process.

faust-streaming 0.15 commits, per partition, the first run of consecutive offsets its streams acknowledged,
counting as acknowledged the "gaps" its fetcher saw (offsets absent from the log: compaction, transaction
markers). Four details of that let it commit offsets of events that were never processed; a crash after
such a commit loses them (the SIGKILL fault test lost 120 of 1,040 events in one run out of about a dozen):

* A gap is the distance between a fetched offset and the partition's read offset. Recovery resumes the
  stream partitions and only then seeks them to their committed offsets (faust/tables/recovery.py
  ``_resume_streams``); when the fetcher already runs then (after a rebalance, or on a start that restored
  tables from their changelogs), the seek resets the read offset while it is still handing out a batch it
  fetched in between, so the rest of that batch looks like a jump and its offsets, delivered to the agent's
  queue but not processed yet, are recorded as a gap. The commit then jumps over them as soon as the agent
  acknowledges the first events of the queue. (A gap also included the fetched offset itself.)
* A message a stream skips (fetched under an earlier consumer generation, or taken from its queue while the
  flow is suspended around a rebalance) is acknowledged as if processed.
* The first acknowledged offset may be one past the committed offset, and any offset when the committed
  offset is 0 or absent (Faust stores 0 as "unknown"), so the event at the committed offset can be passed.
* With no committed offset, or 0, the seek to the committed offsets does not move the partition: events
  fetched before it and dropped from the queue by a rebalance are never fetched again. (And a committed
  offset older than the log start, after retention deleted what was never read, holds the commit forever.)

Here, instead:
* a jump in fetched offsets counts as absent offsets only beyond the highest offset already handed to the
  streams: the part below it was delivered before the seek moved the read offset back (the artefact
  above), and is acknowledged when processed; a gap no longer includes the offset that was fetched. Real
  holes (compaction, transaction markers) still count wherever they are;
* an acknowledgement counts only for a message that was handed to a stream (Faust marks those ``tracked``);
* a partition's commit advances only from its committed offset (or, before the group ever committed, from
  the start of the log: ``consumer_auto_offset_reset`` is ``earliest``) through consecutive acknowledged or
  absent offsets. Offsets between a seek's target and the first offset fetched after it are absent unless
  they were handed out before (Faust records no gap there and instead lets the commit pass the offset
  after the committed one: a loss when that event was fetched but not processed);
* a partition without a committed offset, or one below the start of its log, is sought to the start of its
  log explicitly (the latter with a warning: those events were deleted unread).

A partition whose next offset is never acknowledged holds its commit there (visible as consumer lag, and
re-read by its next owner) rather than let the commit pass it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message
from intervaltree import IntervalTree

log = logging.getLogger(__name__)


class ContiguousCommitConsumer(AIOKafkaConsumer):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._log_start: dict[TP, int] = {}
        self._delivered_upto: dict[TP, int] = {}
        self._sought: dict[TP, int] = {}
        self._deliver = self.callback
        self.callback = self._on_message

    def _on_message(self, message: Message) -> Awaitable[None]:
        """Faust's handler of each fetched message, remembering the highest offset handed out. The first
        message after a seek to ``sought`` makes the offsets from there to it absent, except those handed out
        before (Faust's own gap check starts from its read offset, one past the sought offset)."""
        tp, offset = message.tp, message.offset
        delivered_upto = self._delivered_upto.get(tp, -1)
        sought = self._sought.pop(tp, None)
        if sought is not None and max(sought, delivered_upto + 1) < offset:
            self._gap[tp].addi(max(sought, delivered_upto + 1), offset)
        if offset > delivered_upto:
            self._delivered_upto[tp] = offset
        return self._deliver(message)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = dict(await super().seek_to_committed())
        if not committed:
            return committed
        starts = await self._thread.earliest_offsets(*committed)
        moved = {tp: starts[tp] for tp, offset in committed.items() if not offset or offset < starts[tp]}
        for tp, start in moved.items():
            if committed[tp]:
                log.warning(
                    "%s: offsets %d..%d were deleted by the topic's retention before this group read them",
                    tp,
                    committed[tp],
                    start - 1,
                )
        if moved:
            await self._thread.seek_wait(moved)
            committed.update(moved)
            self._log_start.update(moved)
        self._sought.update((tp, offset) for tp, offset in committed.items() if offset is not None)
        return committed

    async def seek(self, partition: TP, offset: int) -> None:
        self._sought[partition] = offset
        await super().seek(partition, offset)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._log_start.pop(tp, None)
            self._delivered_upto.pop(tp, None)
            self._sought.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def ack(self, message: Message) -> bool:
        if not message.acked and not message.tracked:
            # Skipped by the stream (an earlier generation, or flow suspended): not processed. Marked so
            # that nothing acknowledges it later; the partition's owner reads it again from the commit.
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        return super().ack(message)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust calls this when it fetches ``offset_to`` while its read offset is ``offset_from - 1``."""
        absent_from = max(offset_from, self._delivered_upto.get(tp, -1) + 1)
        if absent_from > offset_from:
            log.info(
                "%s: offsets %d..%d were handed out before a seek moved the read offset back; not a gap",
                tp,
                offset_from,
                absent_from - 1,
            )
        if absent_from < offset_to:  # Faust's gap would include the fetched offset itself
            await super()._add_gap(tp, absent_from, offset_to - 1)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        floor = committed if committed is not None else self._log_start.get(tp)
        if not acked or floor is None:  # None: not sought yet (recovery seeks each stream partition first)
            return None
        acked.sort()
        gap = self._gap[tp]
        next_offset, consumed = commit_offset(floor, acked, partial(_gap_end, gap) if gap else None)
        self._acked_index[tp].difference_update(acked[:consumed])
        del acked[:consumed]
        if gap:
            gap.chop(0, next_offset)
        return next_offset if next_offset > floor else None


def _gap_end(gap: IntervalTree, offset: int) -> int | None:
    intervals = gap.at(offset)
    return max(interval.end for interval in intervals) if intervals else None


def commit_offset(
    floor: int, acked: list[int], absent_until: Callable[[int], int | None] | None = None
) -> tuple[int, int]:
    """The offset to commit and how many of the sorted ``acked`` offsets it accounts for.

    Starting at ``floor`` (the committed offset), the commit advances over each acknowledged offset and, when
    ``absent_until(offset)`` says where a run of absent offsets starting there ends, over that run; it stops
    at the first offset that is neither. Acknowledged offsets below ``floor`` (already committed) are
    accounted for too.
    """
    next_offset = floor
    consumed = 0
    while True:
        if consumed < len(acked) and acked[consumed] <= next_offset:
            if acked[consumed] == next_offset:
                next_offset += 1
            consumed += 1
        elif absent_until is not None and (end := absent_until(next_offset)) is not None:
            next_offset = end
        else:
            return next_offset, consumed
