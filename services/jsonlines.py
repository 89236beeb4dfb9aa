"""Reading JSON lines of events on stdin for the offline commands (price, opportunities, nsa-cases).

Every line is a RemittanceEvent, a ClaimContext (``event_type`` "claim_context") or a provider adjustment;
a bad line is reported on stderr as JSON with its line number and the rest is processed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from pydantic import ValidationError

from schemas.claims import ClaimContext
from schemas.remittance import RemittanceEvent

Decoder = Callable[[str], tuple[str, Any]]


def validation_detail(error: ValidationError) -> str:
    parts = [f"{'.'.join(str(item) for item in err['loc']) or '(root)'}: {err['msg']}" for err in error.errors()[:5]]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def report(stream: TextIO, reason: str, detail: str, line: int, file: str | None = None) -> None:
    record: dict[str, Any] = {"reason": reason, "detail": detail, "line": line}
    if file:
        record["file"] = file
    print(json.dumps(record), file=stream)


def decode_event(text: str) -> tuple[str, Any]:
    """(kind, model) of one JSON line; kind in remittance, claim_context, provider_adjustment."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a JSON object was expected")
    event_type = data.get("event_type", "remittance")
    if event_type == "claim_context":
        return "claim_context", ClaimContext.model_validate(data)
    if event_type == "remittance":
        return "remittance", RemittanceEvent.model_validate_json(text)
    if event_type == "provider_adjustment":
        return "provider_adjustment", None
    raise ValueError(f"unknown event_type {event_type!r} (expected remittance or claim_context)")


def read_event_lines(
    stream: TextIO, counts: Counter, errors: TextIO, file: str | None = None, decode: Decoder = decode_event
) -> Iterator[tuple[int, str, Any]]:
    """(line number, kind, model) of every good line; bad lines are counted as rejected and reported."""
    for number, raw in enumerate(stream, start=1):
        text = raw.strip()
        if not text:
            continue
        counts["lines_in"] += 1
        try:
            kind, model = decode(text)
        except json.JSONDecodeError as error:
            counts["rejected"] += 1
            report(errors, "invalid_json", str(error), number, file)
            continue
        except ValidationError as error:
            counts["rejected"] += 1
            report(errors, "invalid_event", validation_detail(error), number, file)
            continue
        except (ValueError, ArithmeticError) as error:
            counts["rejected"] += 1
            report(errors, "invalid_event", str(error), number, file)
            continue
        yield number, kind, model
