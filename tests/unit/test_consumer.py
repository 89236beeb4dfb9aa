"""The worker's commit rule (services/consumer.py): a commit never passes an offset that was not processed."""

from __future__ import annotations

import pytest
from faust.types import TP, Message
from intervaltree import IntervalTree

from services.consumer import ContiguousCommitConsumer, commit_offset
from services.topics import CLAIMS, REMITTANCES


def test_the_commit_advances_through_consecutive_acknowledged_offsets_from_the_committed_one():
    assert commit_offset(10, [10, 11, 12]) == (13, 3)


def test_an_offset_not_acknowledged_holds_the_commit_however_many_follow_it():
    assert commit_offset(10, [10, 11, 13, 14, 15]) == (12, 2)
    assert commit_offset(10, [11, 12, 13]) == (10, 0)  # Faust's rule committed 14: the event at 10 was passed


def test_offsets_below_the_committed_one_and_repeats_are_accounted_for_without_moving_it():
    assert commit_offset(10, [7, 8, 10, 10, 11]) == (12, 5)
    assert commit_offset(10, [7, 8]) == (10, 2)


def test_absent_offsets_are_passed_only_where_the_fetcher_found_them_absent():
    gap = IntervalTree.from_tuples([(12, 15)])

    def absent_until(offset):
        return max(interval.end for interval in gap.at(offset)) if gap.at(offset) else None

    assert commit_offset(10, [10, 11, 15, 16], absent_until) == (17, 4)
    assert commit_offset(10, [10, 11], absent_until) == (15, 2)  # a hole before an offset not acknowledged yet
    assert commit_offset(10, [10, 11, 15, 16]) == (12, 2)  # no hole known: 12..14 were not processed


@pytest.fixture
def consumer():
    from services.app import app, settings

    consumer = app.consumer
    assert isinstance(consumer, ContiguousCommitConsumer)
    topics = REMITTANCES.full_name(settings), CLAIMS.full_name(settings)
    app.topics._acking_topics.update(topics)  # what subscribing an agent to them does
    for bookkeeping in (consumer._acked, consumer._acked_index, consumer._committed_offset, consumer._gap):
        bookkeeping.clear()  # the app's consumer is shared by the tests of this module
    for own in (consumer._log_start, consumer._delivered_upto, consumer._sought):
        own.clear()
    return consumer, TP(topics[0], 0), TP(topics[1], 0)


def message(tp: TP, offset: int, tracked: bool) -> Message:
    made = Message(tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None)
    made.tracked = tracked
    return made


def test_a_message_the_stream_skipped_is_not_counted_as_processed(consumer):
    consumer, remittances, _ = consumer
    consumer._committed_offset[remittances] = 100
    skipped, processed = message(remittances, 100, tracked=False), message(remittances, 101, tracked=True)
    assert consumer.ack(skipped) is False
    assert skipped.acked  # nothing acknowledges it later
    assert consumer.ack(processed) is True
    assert consumer._new_offset(remittances) is None  # 100 was skipped, not processed: no commit past it
    assert consumer.ack(message(remittances, 100, tracked=True)) is True  # re-read after the next seek
    assert consumer._new_offset(remittances) == 102


def test_a_jump_in_fetched_offsets_is_a_gap_only_beyond_what_was_handed_out_before(consumer):
    import asyncio

    consumer, remittances, claims = consumer
    for tp, delivered_upto in ((remittances, 19), (claims, 10)):
        consumer._committed_offset[tp] = 10
        consumer._delivered_upto[tp] = delivered_upto
        asyncio.run(consumer._add_gap(tp, 11, 20))  # Faust: read offset 10 (a seek), then offset 20 fetched
        for offset in (10, 11):
            assert consumer.ack(message(tp, offset, tracked=True))
    assert consumer._new_offset(remittances) == 12  # 12..19 were handed out before the seek: not absent
    assert consumer._new_offset(claims) == 20  # 12..19 absent; 20 itself fetched, not processed yet


def test_offsets_between_a_seek_and_the_first_one_fetched_after_it_are_absent_unless_handed_out_before(
    consumer, monkeypatch
):
    consumer, remittances, claims = consumer
    delivered = []
    monkeypatch.setattr(consumer, "_deliver", delivered.append)  # Faust's handler, called last
    consumer._delivered_upto[claims] = 30
    for tp in (remittances, claims):
        consumer._committed_offset[tp] = 20
        consumer._sought[tp] = 20
    consumer.callback(message(remittances, 21, tracked=False))  # 20 absent: a transaction marker
    consumer.callback(message(claims, 31, tracked=False))  # the rest of a batch fetched before the seek
    assert [m.offset for m in delivered] == [21, 31]
    assert consumer._new_offset(remittances) is None
    assert consumer.ack(message(remittances, 21, tracked=True))
    assert consumer._new_offset(remittances) == 22
    assert consumer.ack(message(claims, 31, tracked=True))
    assert consumer._new_offset(claims) is None  # 20..30 were handed out before the seek, not processed yet


def test_nothing_is_committed_for_a_partition_before_its_seek(consumer):
    consumer, remittances, _ = consumer
    remittances_1 = TP(remittances.topic, 1)
    assert consumer.ack(message(remittances_1, 0, tracked=True))
    assert consumer._new_offset(remittances_1) is None
    consumer._log_start[remittances_1] = 0
    assert consumer._new_offset(remittances_1) == 1


class _ConsumerThread:
    """What seek_to_committed asks of the consumer thread: committed offsets, log starts, seeks."""

    def __init__(self, committed: dict, starts: dict) -> None:
        self.committed, self.starts, self.sought = committed, starts, {}

    async def seek_to_committed(self):
        return dict(self.committed)

    async def earliest_offsets(self, *partitions):
        return {tp: self.starts[tp] for tp in partitions}

    async def seek_wait(self, partitions):
        self.sought.update(partitions)


def test_partitions_never_committed_or_committed_below_the_log_start_are_sought_to_the_log_start(
    consumer, monkeypatch, caplog
):
    import asyncio

    consumer, remittances, _ = consumer
    p0, p1, p2, p3 = (TP(remittances.topic, partition) for partition in range(4))
    thread = _ConsumerThread(committed={p0: 5, p1: None, p2: 0, p3: 50}, starts={p0: 0, p1: 3, p2: 0, p3: 60})
    monkeypatch.setattr(consumer, "_thread", thread)
    assert asyncio.run(consumer.seek_to_committed()) == {p0: 5, p1: 3, p2: 0, p3: 60}
    assert thread.sought == {p1: 3, p2: 0, p3: 60}
    assert consumer._sought == {p0: 5, p1: 3, p2: 0, p3: 60}  # the first fetch after it tells what is absent
    assert "offsets 50..59 were deleted by the topic's retention" in caplog.text
    assert consumer._log_start[p2] == 0  # Faust stores a committed 0 as None: the commit floor comes from here
