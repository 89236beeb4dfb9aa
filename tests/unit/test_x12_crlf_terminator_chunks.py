"""Bug found by the fuzz target: CR LF as the segment terminator, cut by a chunk boundary.

When the ISA's segment terminator is a line break (the character after ISA16 is CR or LF), the parser reads
in "newline terminator" mode and turns CR LF into one LF. A chunk that ended between the CR and the LF
turned that CR into a line break of its own, so the LF starting the next chunk made an extra, empty
segment: every later segment index moved by one (event_id includes the CLP's index, so ids depended on the
chunk size), line numbers moved, and SE01 was reported as wrong.
"""

from __future__ import annotations

import pytest

from services.ingestion.synthetic import generate_835
from tests.unit.test_x12_support import check_items, parse_text


@pytest.mark.parametrize("line_end", ["\r\n", "\r", "\n"])
def test_line_break_terminator_gives_the_same_items_whatever_the_chunk_size(line_end):
    text = generate_835(3, seed=5).replace("~\n", line_end)
    reference, summary = parse_text(text)
    check_items(reference, summary)
    assert summary.warnings == [] and summary.events_emitted == 3
    expected = [item.model_dump() for item in reference]
    for chunk_size in range(256, 700):  # every boundary position over the first claims
        items, chunked = parse_text(text, chunk_size=chunk_size)
        assert [item.model_dump() for item in items] == expected, chunk_size
        assert chunked.segments == summary.segments and chunked.warnings == [], chunk_size
