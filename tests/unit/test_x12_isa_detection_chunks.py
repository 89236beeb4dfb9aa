"""Bug found by the fuzz target: a damaged ISA was read differently depending on the chunk size.

The ISA's delimiters are found by counting 16 element separators from ``ISA``. That count was not bounded,
so when the ISA was damaged (here its element separator replaced by the segment terminator) the separators
of later segments completed it when the first chunk was long (1 MiB: nonsense delimiters, every claim a
dead letter) but not when it was short (fallback to the standard delimiters, every claim an event). An ISA
is 106 characters: the search now stops there, and the first chunk always covers the start's look-ahead.
"""

from __future__ import annotations

import pytest

from services.ingestion.synthetic import generate_835
from tests.unit.test_x12_support import check_items, parse_text


@pytest.mark.parametrize("newline", ["\r\n", "\n", ""])
def test_damaged_isa_is_read_the_same_whatever_the_chunk_size(newline):
    data = generate_835(3, seed=13, newline=newline, unique_amounts=True).encode().replace(b"ISA*", b"ISA~", 1)
    reference, summary = parse_text(data)
    check_items(reference, summary)
    assert summary.delimiters == {"element": "*", "component": ":", "segment": "~", "repetition": None}
    assert summary.events_emitted == 3 and summary.accounted
    for chunk_size in (256, 300, 1000, 4096):
        items, chunked = parse_text(data, chunk_size=chunk_size)
        assert [item.model_dump() for item in items] == [item.model_dump() for item in reference]
        assert chunked.delimiters == summary.delimiters and chunked.warnings == summary.warnings


def test_isa_separators_are_only_looked_for_inside_the_isa():
    from services.ingestion.x12 import _detect_isa

    good = generate_835(1, seed=1)
    assert _detect_isa(good) is not None
    # an ISA with too few elements, followed by segments whose separators would complete it
    damaged = "ISA*00*00~" + "SOME*LONGER*SEGMENT*ZZZZZZZZZZZZZZZZZ*:~" * 20
    assert _detect_isa(damaged) is None
