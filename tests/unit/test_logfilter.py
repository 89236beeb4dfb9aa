"""The filter that keeps a broker outage from flooding the log (services/logfilter.py)."""

from __future__ import annotations

import logging

from services.logfilter import RepeatedMessageFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_of_a_client_message_are_dropped_for_the_window_then_counted() -> None:
    clock = Clock()
    repeats = RepeatedMessageFilter(window_s=30.0, clock=clock)
    template = "Unable connect to node with id %s: %s"
    assert repeats.filter(record("aiokafka", template, 1, "refused"))
    passed = 0
    for second in range(1, 30):
        clock.now = second
        passed += repeats.filter(record("aiokafka", template, 1, f"refused {second}"))
        passed += repeats.filter(record("aiokafka", template, 2, "refused"))
    assert passed == 0
    clock.now = 31.0
    after = record("aiokafka", template, 1, "refused")
    assert repeats.filter(after)
    shown = "Unable connect to node with id 1: refused [58 more like this in the last 31 s not shown]"
    assert after.getMessage() == shown
    clock.now = 32.0
    assert not repeats.filter(record("aiokafka", template, 1, "refused"))


def test_other_kinds_and_other_loggers_pass() -> None:
    clock = Clock()
    repeats = RepeatedMessageFilter(clock=clock)
    fetcher, template = "aiokafka.consumer.fetcher", "Failed fetch messages from %s"
    assert repeats.filter(record(fetcher, template, 1))
    assert repeats.filter(record(fetcher, template, 1, level=logging.WARNING))
    assert repeats.filter(record("kafka.cluster", template, 1))
    assert not repeats.filter(record(fetcher, template, 2))
    for _ in range(3):  # the project's own loggers (dead letters...) are never collapsed
        assert repeats.filter(record("services.streams", "dead letter %s: %s", "not_json", "x"))
        assert repeats.filter(record("kafkaesque", "not a client logger"))
