"""Keep a broker outage from flooding the log.

While the broker is unreachable, aiokafka and kafka-python log every failed connection, metadata refresh and
fetch, several times a second per connection (a worker in the broker-restart fault test wrote 160,000 lines in
20 seconds). ``RepeatedMessageFilter`` lets the first record of a kind (logger, level, message template)
through, drops the repeats for a window, and appends to the next one it lets through how many it dropped.
The outage stays visible (a line per kind per window, and the worker's health and lag metrics); the
volume does not grow with the number of retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

CLIENT_LOGGERS = ("aiokafka", "kafka")
"""Kafka client libraries: the loggers whose repeats are collapsed."""
WINDOW_S = 30.0
MAX_KINDS = 1000
"""Kinds remembered at the most; the memory starts over beyond (bounded whatever the messages)."""


class RepeatedMessageFilter(logging.Filter):
    def __init__(
        self,
        loggers: Iterable[str] = CLIENT_LOGGERS,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.loggers = tuple(loggers)
        self.window_s = window_s
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], list[float | int]] = {}

    def _applies_to(self, name: str) -> bool:
        return any(name == logger or name.startswith(logger + ".") for logger in self.loggers)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._applies_to(record.name):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [{seen[1]} more like this in the last {now - seen[0]:.0f} s not shown]"
        if len(self._kinds) >= MAX_KINDS:
            self._kinds.clear()
        self._kinds[kind] = [now, 0]
        return True
