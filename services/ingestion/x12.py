"""A focused, streaming X12 835 parser: every CLP loop becomes a RemittanceEvent or a DeadLetter.

Public API
----------
``parse_path(path, hmac_key)`` / ``parse_bytes(data, file_name, hmac_key)`` /
``parse_stream(binary_stream, file_name, hmac_key)`` return a :class:`ParseRun`: iterate it to get
:class:`RemittanceEvent`, :class:`ProviderAdjustmentEvent` and :class:`DeadLetter` objects in file order;
``run.summary`` (a :class:`FileSummary`) is complete once the iteration ends.

How it reads a file
-------------------
* Delimiters come from the ISA: element separator = the character after ``ISA``, component separator =
  ISA16, segment terminator = the character after ISA16, repetition separator = ISA11 (5010 only). The
  ISA is read by counting separators, not by fixed columns, so unpadded ISAs work too. A second ISA with
  other delimiters switches them from there on.
* A file without ISA (starting with ``ST``) falls back to ``~ * :`` (the element separator is taken from
  the ``ST`` segment) and says so in ``summary.warnings``.
* A UTF-8 BOM, CR, LF or CRLF after terminators, indentation, and line wrapping inside segments are
  tolerated. ``SourceLocation.line`` counts LF (or CR in CR-only files: decided on the first chunk, so in
  a file mixing lone CRs and LFs, line numbers depend on whether the first chunk holds an LF).
* The file is read in chunks (1 MiB by default; the first one at least 32 KiB, so that the search for the
  ISA never depends on the chunk size) and split into segments chunk by chunk; only the current chunk, the
  current claim loop and small counters are in memory, so memory stays flat whatever the size. Items,
  event ids and segment indexes do not depend on the chunk size.
* Files whose ISA16 says ``:`` but that write ``>`` (or the reverse): when SVC01 (or SVC06, PLB03) does not
  split with the declared component separator but does with the other common one, that one is used for
  the rest of the interchange and a warning says so.

What comes out
--------------
* One RemittanceEvent per CLP loop. Names (NM1 03-07) are never read; the member id (NM1*QC09, else
  NM1*IL09) is replaced by ``patient_key`` (see ``services.ingestion.phi``).
* One ProviderAdjustmentEvent per PLB segment.
* A DeadLetter (stage ``parse``) for every claim loop that cannot be turned into an event, and for other
  pieces that cannot be used (a PLB with a bad amount, a transaction that is not an 835, a file that is not
  X12). ``reason`` is one of :data:`DEAD_LETTER_REASONS`. Excerpts are only given for segments that carry
  no PHI (:data:`EXCERPT_SEGMENTS`); NM1/N3/N4/DMG/PER and the like never appear in a dead letter.

Errors and header problems
--------------------------
Errors are per claim, never per file. A header problem does not kill the claims when the claims can still
be described: an invalid BPR16 or DTM*405 date becomes ``None`` with a warning. Only when the payment
itself is unusable (BPR missing, or BPR02 missing or not a number: ``Payment.amount`` is required) are the
claims of that transaction dead-lettered, with reason ``bad_header``.

Balancing (reported, never raised)
----------------------------------
* line: ``SVC02 - sum(line CAS) = SVC03``, for every service line;
* claim: ``CLP03 - sum(claim CAS + line CAS) = CLP04``, checked only when the claim has service lines or
  claim-level CAS (a bare CLP has nothing to balance against);
* transaction: ``sum(CLP04) - sum(PLB amounts) = BPR02`` (negated when BPR03 is ``D``), reported as a
  warning in the file summary (``unbalanced_transactions`` counts them).

Identities
----------
``event_id`` = HMAC-SHA256 with the configured key (CLAIMWATCH_HMAC_KEY, the patient-key secret) of
(ISA13 | GS06 | ST02 | segment index of the CLP in the file | the claim loop's segments joined by the segment
terminator), first 32 hex digits: the same file content and key give the same ids whatever the file's name,
chunk size or line-break style; identical claims at different positions get different ids. Keyed, because
the claim loop's text holds the patient's name and member id (NM1*QC): with a plain hash, whoever holds an
event and guesses a patient could confirm the guess. Dead letters and provider adjustments get ids the same
way.

Performance
-----------
The hot path dispatches on the first three characters of a segment, splits only the segments it must,
builds plain dicts and turns them into models without validation (:func:`_construct`, the equivalent of
``model_construct`` minus its per-field default handling); the unit tests re-validate every constructed
item against the schema so that the two paths cannot drift. A CAS, DTM or AMT segment seen a second time
goes into a memo (parsed once per distinct text from then on; one-off segments, e.g. unique amounts, only
pass through a set of strings, which costs less than churning the memo), SVC01 composites are parsed once
per distinct composite, decimals and dates once per distinct string; all these caches are bounded (cleared
when full). Line numbers are exact except after a second ISA with other delimiters in a file whose line
breaks fall inside segments.

Where the time goes (``scripts/bench_parse.py``, 10,000 claims, 238,000 segments, 5.5 MB): splitting the
text into segments is ~10% of the parse, the per-segment loop ~60% (about 0.85 us a segment), and
assembling the claims ~30% (balance checks, some 50,000 model instances, the sha256 event ids, the
patient keys, and freeing all that once consumed). Building the events, lines and sources alone, with no
parsing, takes over half the time of the whole ``str.split`` baseline, and the event ids another quarter:
that bounds what pure Python can reach on this benchmark.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hmac
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from hashlib import sha256
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from pydantic import BaseModel

from schemas.dead_letter import DeadLetter, DeadLetterLocation
from schemas.remittance import (
    SCHEMA_VERSION,
    Adjustment,
    BalanceIssue,
    Payee,
    Payer,
    Payment,
    ProviderAdjustment,
    ProviderAdjustmentEvent,
    RemittanceEvent,
    ServiceLine,
    SourceLocation,
)
from services.ingestion.phi import PatientKeyer

DEFAULT_CHUNK_SIZE = 1 << 20
MAX_WARNINGS = 200
_CACHE_LIMIT = 20_000

Item = RemittanceEvent | ProviderAdjustmentEvent | DeadLetter

DEAD_LETTER_REASONS = frozenset(
    {
        "bad_amount",  # a money element is not a decimal number (CLP03, SVC02, CAS03, PLB04...)
        "bad_number",  # a quantity element is not a decimal number (SVC05, CAS04...)
        "bad_date",  # a date element of the claim loop (DTM*472, DTM*050...) or PLB02 is not a valid date
        "missing_element",  # a required element is empty (CLP01, SVC01-2, CAS01...)
        "truncated_segment",  # a segment has fewer elements than required, or the file ends inside it
        "unexpected_segment",  # a segment that cannot be placed (bad segment id inside a claim, LQ before SVC)
        "bad_composite",  # a composite with more components than the guide allows (SVC01 > 8, PLB03 > 2)
        "bad_header",  # the transaction's payment (BPR) is missing or unusable: its claims cannot be described
        "not_835",  # a transaction set that is not an 835 (ST01 is not 835): skipped whole
        "not_x12",  # the file holds no ISA and no ST segment
        "internal_error",  # a bug: the claim could not be processed; detail names the exception type
    }
)

EXCERPT_SEGMENTS = frozenset(
    {"CLP", "CAS", "SVC", "DTM", "AMT", "QTY", "LQ", "MOA", "MIA", "PLB", "LX", "TS3", "TS2", "SE", "ST"}
)
"""Segments whose text may be copied into a dead letter: they carry no patient name, address or id."""

_CLAIM_DATES = frozenset({"472", "150", "151", "050", "232", "233"})
_HEADER_SEGMENTS = frozenset({"BPR", "TRN", "N1", "REF", "DTM"})
_REMARK_POSITIONS = {"MOA": (3, 4, 5, 6, 7), "MIA": (5, 20, 21, 22, 23)}
_MEMO_LIMIT = 20_000
_ISA_MAX_LENGTH = 256  # an ISA is 106 characters (more when wrapped); its 16th separator comes before this
_START_WINDOW = 4096  # junk tolerated before the first ISA, and how far the start looks for "ST*835"
_FIRST_CHUNK_MIN = 32 * 1024  # bytes: the first chunk always covers the start window, whatever chunk_size
_BLANKS = frozenset(" \t\r\n")
_CLAIM_ENDERS = frozenset({"CLP", "LX", "PLB", "SE", "GE", "IEA", "ISA", "GS", "ST", "TS3", "TS2"})
_ENVELOPE = frozenset({"ISA", "GS", "ST", "SE", "GE", "IEA"})
_COMMON_COMPONENT_SEPARATORS = (":", ">")
_ZERO = Decimal(0)
_ONE = Decimal(1)

# ----------------------------------------------------------------------------------------------------
# Models without validation


_new = object.__new__
_setattr = object.__setattr__
_SLOTS = BaseModel.__dict__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__

# One "fields set" per model class, shared by its instances: every field is always given, the models are
# frozen (nothing adds to the set in place) and pydantic copies the set before ``model_copy(update=...)``.
_FIELDS: dict[type, set[str]] = {
    cls: set(cls.model_fields)
    for cls in (
        Adjustment, BalanceIssue, Payee, Payer, Payment, ProviderAdjustment, ProviderAdjustmentEvent,
        RemittanceEvent, ServiceLine, SourceLocation,
    )
}  # fmt: skip
_ADJUSTMENT_FIELDS = _FIELDS[Adjustment]
_LINE_FIELDS = _FIELDS[ServiceLine]
_EVENT_FIELDS = _FIELDS[RemittanceEvent]
_SOURCE_FIELDS = _FIELDS[SourceLocation]

# Templates copied for every claim / line (a dict copy is much cheaper than a large dict literal).
_CLAIM_TEMPLATE: dict[str, Any] = {name: None for name in RemittanceEvent.model_fields}
_CLAIM_TEMPLATE.update(schema_version=SCHEMA_VERSION, event_type="remittance")
_LINE_TEMPLATE: dict[str, Any] = {name: None for name in ServiceLine.model_fields}


def _construct(cls: type, values: dict[str, Any], fields_set: set[str] | None = None) -> Any:
    """Instantiate a pydantic model from a dict that holds every field, without validation.

    Equivalent to ``cls.model_construct(**values)`` when ``values`` has every field (which the parser always
    passes; the tests check it and re-validate every event). pydantic's own ``model_construct`` spends far
    more time on per-field default handling. ``values`` becomes the instance's ``__dict__`` (no copy): the
    caller must not touch it afterwards.
    """
    instance = _new(cls)
    _setattr(instance, "__dict__", values)
    _set_fields_set(instance, fields_set if fields_set is not None else _FIELDS[cls])
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


# ----------------------------------------------------------------------------------------------------
# Summary


class Delimiters(NamedTuple):
    element: str
    component: str
    segment: str
    repetition: str | None


STANDARD_DELIMITERS = Delimiters(element="*", component=":", segment="~", repetition="^")


@dataclass
class FileSummary:
    """What the parser saw in one file. ``claims_seen == events_emitted + claim_dead_letters`` always."""

    file: str
    bytes_read: int = 0
    segments: int = 0
    envelope: bool = False
    delimiters: dict[str, str | None] | None = None
    versions: list[str] = field(default_factory=list)
    interchanges: int = 0
    functional_groups: int = 0
    transactions: int = 0
    claims_seen: int = 0
    events_emitted: int = 0
    claim_dead_letters: int = 0
    dead_letters: int = 0
    provider_adjustments: int = 0
    claims_with_balance_issues: int = 0
    unbalanced_transactions: int = 0
    warnings: list[str] = field(default_factory=list)
    warnings_dropped: int = 0
    complete: bool = False

    @property
    def accounted(self) -> bool:
        """Every claim seen is either an event or a dead letter."""
        return self.claims_seen == self.events_emitted + self.claim_dead_letters

    @property
    def readable(self) -> bool:
        """The file held X12 (an ISA or at least one ST)."""
        return self.envelope or self.transactions > 0

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.warnings_dropped += 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["accounted"] = self.accounted
        data["readable"] = self.readable
        return data


# ----------------------------------------------------------------------------------------------------
# Small converters (cached)


def _decimal(text: str) -> Decimal:
    """An X12 decimal (R type): finite, no underscores; leading/trailing blanks tolerated."""
    if "_" in text:
        raise InvalidOperation(f"not an X12 number: {text!r}")
    value = Decimal(text)
    if not value.is_finite():
        raise InvalidOperation(f"not a finite number: {text!r}")
    return value


def _date(text: str) -> dt.date:
    if len(text) != 8 or not text.isdigit():
        raise ValueError("date must be CCYYMMDD")
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))


class _DecimalCache(dict):
    """``cache[text]`` is ``_decimal(text)``, computed once per distinct string (bounded)."""

    __slots__ = ()

    def convert(self, text: str) -> Decimal:
        """A miss: ``get`` then ``convert`` costs less than ``cache[text]`` (no ``__missing__`` lookup)."""
        value = Decimal(text)  # same checks as _decimal, inlined: this runs for most distinct amounts
        if not value.is_finite() or "_" in text:
            raise InvalidOperation(f"not an X12 number: {text!r}")
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[text] = value
        return value

    __missing__ = convert


class _DateCache(dict):
    """``cache[text]`` is ``_date(text)``, computed once per distinct string (bounded)."""

    __slots__ = ()

    def __missing__(self, text: str) -> dt.date:
        value = _date(text)
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[text] = value
        return value


def _is_number(text: str) -> bool:
    try:
        _decimal(text)
    except (InvalidOperation, ValueError):
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        _date(text)
    except ValueError:
        return False
    return True


def _claim_text(terminator: str, parts: list[str], tail: str) -> str:
    """The text of a claim loop read over several buffers (the same whatever the chunk boundaries)."""
    return terminator.join([*parts, tail]) if tail else terminator.join(parts)


def _valid_segment_id(tag: str) -> bool:
    return 2 <= len(tag) <= 3 and tag.isalnum() and tag.isupper() and tag[0].isalpha()


class _ClaimError(Exception):
    """A claim-level problem found on purpose (not by an exception of the hot path)."""

    def __init__(self, reason: str, element: str | None, detail: str, show_value: bool = True):
        super().__init__(detail)
        self.reason = reason
        self.element = element
        self.detail = detail
        self.show_value = show_value


@dataclass
class _Problem:
    reason: str
    detail: str
    segment_id: str | None
    element: str | None
    segment_index: int | None
    line: int | None
    excerpt: str | None


# ----------------------------------------------------------------------------------------------------
# Diagnosis of a segment that raised in the hot path (slow path, for dead letters only)

_AMOUNT_ELEMENTS: dict[str, tuple[tuple[int, str, bool], ...]] = {
    # segment: (element position, label, required)
    "CLP": ((3, "total claim charge", True), (4, "claim payment", True), (5, "patient responsibility", False)),
    "SVC": ((2, "line charge", True), (3, "line payment", True)),
    "AMT": ((2, "amount", True),),
}


def _diagnose(tag: str, elements: list[str]) -> tuple[str, str | None, str, bool]:
    """Find why segment ``elements`` could not be read: (reason, element, detail, value_is_safe)."""
    n = len(elements) - 1  # number of data elements

    def value(position: int) -> str:
        return elements[position] if position <= n else ""

    if tag == "CLP":
        if n < 4:
            return "truncated_segment", f"CLP{n + 1:02d}", f"CLP has {n} elements; CLP01-CLP04 are required", True
        for position, label in ((1, "patient control number"), (2, "claim status")):
            if not value(position).strip():
                return "missing_element", f"CLP{position:02d}", f"CLP{position:02d} ({label}) is empty", True
    if tag == "SVC":
        if n < 3:
            return "truncated_segment", f"SVC{n + 1:02d}", f"SVC has {n} elements; SVC01-SVC03 are required", True
    if tag == "CAS":
        if n < 3:
            return "truncated_segment", f"CAS{n + 1:02d}", f"CAS has {n} elements; CAS01-CAS03 are required", True
        if not value(1).strip():
            return "missing_element", "CAS01", "CAS01 (claim adjustment group code) is empty", True
        for start in range(2, min(n, 19) + 1, 3):
            reason_code, amount, quantity = value(start), value(start + 1), value(start + 2)
            name = f"CAS{start + 1:02d}"
            if not reason_code and not amount and not quantity:
                continue
            if not reason_code:
                return "missing_element", f"CAS{start:02d}", f"CAS{start:02d} (adjustment reason) is empty", True
            if not amount.strip():
                return "missing_element", name, f"{name} (adjustment amount) is empty", True
            if not _is_number(amount):
                return "bad_amount", name, f"{name} {amount!r} is not a decimal amount", True
            if quantity.strip() and not _is_number(quantity):
                name = f"CAS{start + 2:02d}"
                return "bad_number", name, f"{name} {quantity!r} is not a decimal quantity", True
        if n > 19:
            return "truncated_segment", "CAS20", f"CAS has {n} elements; at most 19 (6 triplets)", True
    if tag == "SVC":
        for position, label in ((5, "units"), (7, "original units")):
            text = value(position)
            if text and not _is_number(text):
                return "bad_number", f"SVC{position:02d}", f"SVC{position:02d} {text!r} ({label}) is not a number", True
    if tag == "DTM":
        if n < 2 or not value(2).strip():
            return "missing_element", "DTM02", f"DTM*{value(1)} has no date (DTM02)", True
        if not _is_date(value(2)):
            return "bad_date", "DTM02", f"DTM*{value(1)} date {value(2)!r} is not a valid CCYYMMDD date", True
    if tag == "AMT" and n < 2:
        return "truncated_segment", "AMT02", "AMT has no amount (AMT02)", True
    if tag == "QTY" and n >= 2 and value(2).strip() and not _is_number(value(2)):
        return "bad_number", "QTY02", f"QTY02 {value(2)!r} is not a number", True
    for position, label, required in _AMOUNT_ELEMENTS.get(tag, ()):
        text = value(position)
        name = f"{tag}{position:02d}"
        if not text.strip():
            if required:
                return "missing_element", name, f"{name} ({label}) is empty", True
            continue
        if not _is_number(text):
            return "bad_amount", name, f"{name} {text!r} ({label}) is not a decimal amount", True
    return "internal_error", None, f"{tag} segment could not be processed", False


# ----------------------------------------------------------------------------------------------------
# Reading: chunks of decoded text


def _detect_isa(text: str) -> tuple[Delimiters, list[str]] | None:
    """Delimiters and ISA elements from text starting with ``ISA``, or None when it is not a usable ISA."""
    if len(text) < 4 or not text.startswith("ISA"):
        return None
    element = text[3]
    if element.isalnum() or element.isspace():
        return None
    position = 3
    for _ in range(15):
        # bounded: in a damaged ISA the separators of later segments must not be taken for ISA elements
        # (and the result must not depend on how much text follows, i.e. on the chunk size)
        position = text.find(element, position + 1, _ISA_MAX_LENGTH)
        if position < 0:
            return None
    if position + 2 >= len(text):
        return None
    component = text[position + 1]
    terminator = text[position + 2]
    if terminator == "\r":
        terminator = "\n"
    if component.isalnum() or component in (element, terminator) or terminator.isalnum() or terminator == " ":
        return None
    elements = text[: position + 2].split(element)
    version = elements[12] if len(elements) > 12 else ""
    repetition: str | None = elements[11] if len(elements) > 11 else None
    if (
        repetition is None
        or len(repetition) != 1
        or repetition.isalnum()
        or repetition in (element, component, terminator)
        or version < "00402"
    ):
        repetition = None
    return Delimiters(element, component, terminator, repetition), elements


def _infer_without_isa(text: str) -> Delimiters:
    """Delimiters for a file without ISA: element separator from ``ST``, else the standard ones."""
    element = "*"
    if text.startswith("ST") and len(text) > 2 and not text[2].isalnum() and not text[2].isspace():
        element = text[2]
    terminator = "~"
    # the segment terminator is the first character after "ST*835*control" that is neither alnum nor element
    for char in text[3:200]:
        if char.isalnum() or char == element or char == " ":
            continue
        terminator = "\n" if char == "\r" else char
        break
    component = ":" if ":" not in (element, terminator) else ">"
    return Delimiters(element, component, terminator, None)


class ParseRun:
    """Iterator over the items of one file; ``summary`` is complete when ``summary.complete`` is True."""

    def __init__(self, generator: Iterator[Item], summary: FileSummary):
        self._generator = generator
        self.summary = summary

    def __iter__(self) -> Iterator[Item]:
        return self._generator

    def __next__(self) -> Item:
        return next(self._generator)


class Parser:
    """Parse one 835 stream. Use :func:`parse_path`, :func:`parse_bytes` or :func:`parse_stream`."""

    def __init__(self, file_name: str, hmac_key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.file_name = file_name
        self.chunk_size = max(256, int(chunk_size))
        self.summary = FileSummary(file=file_name)
        self._keyer = PatientKeyer(hmac_key)
        self._id_hash = hmac.new(hmac_key, digestmod=sha256)
        self._decimals = _DecimalCache()
        self._dates = _DateCache()
        self._memo: dict[str, Any] = {}
        self._seen: set[str] = set()  # segments parsed once, not (yet) in the memo
        self._composites: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        self._composite_warned: set[tuple[str, str]] = set()
        # envelope / transaction context
        self.isa13: str | None = None
        self.gs06: str | None = None
        self.st02: str | None = None
        self.delimiters: Delimiters = STANDARD_DELIMITERS
        self._reset_transaction()

    # -- transaction context -----------------------------------------------------------------------

    def _reset_transaction(self) -> None:
        self.st02 = None
        self.in_transaction = False
        self.tx_start_index = 0
        self.bpr: list[str] | None = None
        self.trn: list[str] | None = None
        self.production_date: dt.date | None = None
        self.payer_name: str | None = None
        self.payer_id: str | None = None
        self.payee_name: str | None = None
        self.payee_npi: str | None = None
        self.payee_tax_id: str | None = None
        self.payee_ref_tax_id: str | None = None
        self.n1_context: str | None = None
        self.header: tuple[Payment, Payer, Payee] | None = None
        self.header_problem: str | None = None
        self.tx_paid = _ZERO
        self.tx_paid_known = True
        self.tx_plb = _ZERO
        self.tx_claims = 0
        self.tx_skip = False

    def _header_segment(self, elements: list[str]) -> None:
        """BPR, TRN, N1, REF*TJ, DTM*405 of the transaction header (before the first claim)."""
        tag = elements[0]
        n = len(elements)
        if tag == "BPR":
            self.bpr = elements
        elif tag == "TRN":
            if self.trn is None:
                self.trn = elements
        elif tag == "N1":
            qualifier = elements[1].strip() if n > 1 else ""
            self.n1_context = qualifier
            name = (elements[2].strip() or None) if n > 2 else None
            id_qualifier = elements[3].strip() if n > 3 else ""
            identifier = (elements[4].strip() or None) if n > 4 else None
            if qualifier == "PR":
                self.payer_name = name
                self.payer_id = identifier
            elif qualifier == "PE":
                self.payee_name = name
                if id_qualifier == "XX":
                    self.payee_npi = identifier
                elif id_qualifier == "FI":
                    self.payee_tax_id = identifier
        elif tag == "REF":
            if n > 2 and elements[1] == "TJ" and self.n1_context == "PE":
                self.payee_ref_tax_id = elements[2].strip() or None
        elif tag == "DTM":
            if n > 2 and elements[1] == "405":
                value = elements[2].strip()
                try:
                    self.production_date = _date(value)
                except ValueError:
                    self.production_date = None
                    self.summary.warn(
                        f"transaction ST02={self.st02} (ISA13={self.isa13}): DTM*405 production date "
                        f"{value!r} is not a valid CCYYMMDD date; production_date set to null"
                    )

    def _build_header(self) -> None:
        """Payment/Payer/Payee of the current transaction, shared by its claims (models are immutable)."""
        if self.header is not None or self.header_problem is not None:
            return
        bpr = self.bpr
        if bpr is None:
            self.header_problem = "the transaction has no BPR segment: the payment amount is unknown"
            return
        bpr = bpr + [""] * (17 - len(bpr))
        amount_text = bpr[2].strip()
        if not amount_text:
            self.header_problem = "BPR02 (total payment) is empty"
            return
        try:
            amount = _decimal(amount_text)
        except (InvalidOperation, ValueError):
            self.header_problem = f"BPR02 {amount_text!r} (total payment) is not a decimal amount"
            return
        date = None
        if bpr[16].strip():
            try:
                date = _date(bpr[16].strip())
            except ValueError:
                self.summary.warn(
                    f"transaction ST02={self.st02} (ISA13={self.isa13}): BPR16 payment date {bpr[16]!r} is not "
                    "a valid CCYYMMDD date; payment.date set to null"
                )
        trn = self.trn or []
        trace_number = (trn[2].strip() or None) if len(trn) > 2 else None
        trace_originator = (trn[3].strip() or None) if len(trn) > 3 else None
        payment = _construct(
            Payment,
            {
                "amount": amount,
                "credit_debit": bpr[3].strip() or None,
                "method": bpr[4].strip() or None,
                "date": date,
                "trace_number": trace_number,
                "trace_originator": trace_originator,
            },
        )
        payer_id = self.payer_id or trace_originator
        self.payer_id = payer_id
        payer = _construct(Payer, {"id": payer_id, "name": self.payer_name})
        payee = _construct(
            Payee,
            {"name": self.payee_name, "npi": self.payee_npi, "tax_id": self.payee_tax_id or self.payee_ref_tax_id},
        )
        self.header = (payment, payer, payee)

    def _close_transaction(self, segment_index: int, se: list[str] | None) -> None:
        summary = self.summary
        where = f"transaction ST02={self.st02} (ISA13={self.isa13})"
        if se is None:
            summary.warn(f"{where} is not closed by SE (file truncated or SE missing)")
        else:
            count = segment_index - self.tx_start_index + 1
            if len(se) > 1 and se[1].strip() and se[1].strip() != str(count):
                summary.warn(f"{where}: SE01 says {se[1].strip()} segments, the transaction has {count}")
            if len(se) > 2 and (se[2].strip() or None) != self.st02:
                summary.warn(f"{where}: SE02 {se[2].strip()!r} does not match ST02")
        if not self.tx_skip:
            self._check_transaction_balance(where)
        self._reset_transaction()

    def _check_transaction_balance(self, where: str) -> None:
        summary = self.summary
        if self.header is None and self.header_problem is None and self.bpr is not None:
            self._build_header()
        if self.header is None:
            if self.tx_claims or self.bpr is not None:
                summary.warn(f"{where}: transaction balance not checked ({self.header_problem})")
            return
        if not self.tx_paid_known:
            summary.warn(f"{where}: transaction balance not checked (a CLP04 or PLB amount could not be read)")
            return
        payment = self.header[0]
        expected = -payment.amount if payment.credit_debit == "D" else payment.amount
        actual = self.tx_paid - self.tx_plb
        if actual != expected:
            summary.unbalanced_transactions += 1
            summary.warn(
                f"{where}: sum(CLP04) {self.tx_paid} - sum(PLB) {self.tx_plb} = {actual}, but BPR02 is {payment.amount}"
            )

    def _identity(self, text: str) -> str:
        """A deterministic id for ``text`` (which may hold PHI): keyed hash, first 32 hex digits."""
        digest = self._id_hash.copy()
        digest.update(text.encode())
        return digest.hexdigest()[:32]

    # -- dead letters ------------------------------------------------------------------------------

    def _dead_letter(self, problem: _Problem, identity: str) -> DeadLetter:
        digest = self._identity(f"dead_letter|{self.isa13}|{self.gs06}|{self.st02}|{problem.reason}|{identity}")
        self.summary.dead_letters += 1
        return DeadLetter(
            dead_letter_id=digest,
            stage="parse",
            reason=problem.reason,
            detail=problem.detail,
            location=DeadLetterLocation(
                file=self.file_name,
                interchange_control_number=self.isa13,
                transaction_control_number=self.st02,
                segment_index=problem.segment_index,
                line=problem.line,
                segment_id=problem.segment_id,
                element=problem.element,
            ),
            excerpt=problem.excerpt,
        )

    @staticmethod
    def _problem(
        reason: str,
        detail: str,
        segment_id: str | None,
        element: str | None,
        segment_index: int | None,
        line: int | None,
        segment_text: str | None,
    ) -> _Problem:
        excerpt = segment_text if segment_id in EXCERPT_SEGMENTS and segment_text else None
        if excerpt is not None and len(excerpt) > 500:
            excerpt = excerpt[:500] + "..."
        return _Problem(reason, detail, segment_id, element, segment_index, line, excerpt)

    def _problem_from_exception(
        self, error: BaseException, text: str, element_separator: str, segment_index: int, line: int | None
    ) -> _Problem:
        elements = text.split(element_separator)
        tag = elements[0]
        if isinstance(error, _ClaimError):
            reason, element, detail, safe = error.reason, error.element, error.detail, error.show_value
        else:
            reason, element, detail, safe = _diagnose(tag, elements)
            if reason == "internal_error":
                if isinstance(error, IndexError):
                    reason = "truncated_segment"
                    detail = f"{tag} has {len(elements) - 1} elements: a required element is missing"
                else:
                    detail = f"{detail} ({type(error).__name__})"
        if tag not in EXCERPT_SEGMENTS:
            safe = False
        if not safe:
            # the detail may quote a value: keep it only when the segment carries no PHI
            detail = f"a {tag[:3]!r} segment could not be read ({reason}{', ' + element if element else ''})"
        return self._problem(reason, detail, tag[:3] or None, element, segment_index, line, text)

    # -- claim completion --------------------------------------------------------------------------

    def _finish_claim(
        self,
        claim: dict[str, Any],
        lines: list[dict[str, Any]],
        sums: list[tuple[Decimal, Decimal]],
        ends: list[dt.date],
        member: str | None,
        claim_adjusted: Decimal,
        problem: _Problem | None,
        clp_index: int,
        clp_line: int | None,
        raw: str,
    ) -> Item:
        """The RemittanceEvent of a complete claim loop, or its DeadLetter."""
        if problem is None:
            try:
                return self._claim_event(claim, lines, sums, ends, member, claim_adjusted, clp_index, clp_line, raw)
            except Exception as error:  # a bug must cost one claim, not the file
                problem = self._problem(
                    "internal_error",
                    f"claim could not be assembled ({type(error).__name__})",
                    "CLP",
                    None,
                    clp_index,
                    clp_line,
                    None,
                )
        self.summary.claim_dead_letters += 1
        if problem.reason != "bad_header":
            problem.detail = f"{problem.detail} (claim loop CLP at segment {clp_index})"
        paid = claim["paid_amount"]
        if paid is None:
            self.tx_paid_known = False
        else:
            self.tx_paid += paid
        return self._dead_letter(problem, f"{clp_index}|{raw}")

    def _claim_event(
        self,
        claim: dict[str, Any],
        lines: list[dict[str, Any]],
        sums: list[tuple[Decimal, Decimal]],
        ends: list[dt.date],
        member: str | None,
        claim_adjusted: Decimal,
        clp_index: int,
        clp_line: int | None,
        raw: str,
    ) -> RemittanceEvent:
        total_adjusted = claim_adjusted
        if lines:
            built_lines = []
            append = built_lines.append
            issues = None
            first = last = None
            for line, (line_adjusted, patient) in zip(lines, sums, strict=True):
                paid = line["paid_amount"]
                line["derived_allowed_amount"] = paid + patient if patient else paid
                if line["charge_amount"] - line_adjusted != paid:
                    issues = self._line_issue(claim, line, line_adjusted)
                total_adjusted += line_adjusted
                day = line["service_date"]
                if day is not None:
                    if first is None or day < first:
                        first = day
                    if last is None or day > last:
                        last = day
                instance = _new(ServiceLine)
                _setattr(instance, "__dict__", line)
                _set_fields_set(instance, _LINE_FIELDS)
                _set_extra(instance, None)
                _set_private(instance, None)
                append(instance)
            claim["service_lines"] = built_lines
            if claim["service_date_from"] is None:
                claim["service_date_from"] = first
            if claim["service_date_to"] is None:
                claim["service_date_to"] = max(ends) if ends and (last is None or max(ends) > last) else last
            paid = claim["paid_amount"]
            if claim["charge_amount"] - total_adjusted != paid:
                issues = self._claim_issue(claim, total_adjusted)
        else:
            issues = None
            paid = claim["paid_amount"]
            if claim["adjustments"] and claim["charge_amount"] - total_adjusted != paid:
                issues = self._claim_issue(claim, total_adjusted)
        if issues:
            self.summary.claims_with_balance_issues += 1
        if member:
            claim["patient_key"] = self._keyer(self.payer_id, member)
        claim["event_id"] = self._identity(f"{self.isa13}|{self.gs06}|{self.st02}|{clp_index}|{raw}")
        source = _new(SourceLocation)
        _setattr(
            source,
            "__dict__",
            {
                "file": self.file_name,
                "interchange_control_number": self.isa13,
                "transaction_control_number": self.st02,
                "segment_index": clp_index,
                "line": clp_line,
            },
        )
        _set_fields_set(source, _SOURCE_FIELDS)
        _set_extra(source, None)
        _set_private(source, None)
        claim["source"] = source
        self.tx_paid += paid
        self.summary.events_emitted += 1
        event = _new(RemittanceEvent)
        _setattr(event, "__dict__", claim)
        _set_fields_set(event, _EVENT_FIELDS)
        _set_extra(event, None)
        _set_private(event, None)
        return event

    @staticmethod
    def _line_issue(claim: dict[str, Any], line: dict[str, Any], line_adjusted: Decimal) -> list[BalanceIssue]:
        index = line["line_index"]
        charge = line["charge_amount"]
        paid = line["paid_amount"]
        expected = charge - line_adjusted
        issues: list[BalanceIssue] = claim["balance_issues"]
        issues.append(
            _construct(
                BalanceIssue,
                {
                    "rule": "line",
                    "line_index": index,
                    "expected": expected,
                    "actual": paid,
                    "message": f"line {index}: SVC02 {charge} - CAS {line_adjusted} = {expected}, SVC03 is {paid}",
                },
            )
        )
        return issues

    @staticmethod
    def _claim_issue(claim: dict[str, Any], total_adjusted: Decimal) -> list[BalanceIssue]:
        charge = claim["charge_amount"]
        paid = claim["paid_amount"]
        expected = charge - total_adjusted
        issues: list[BalanceIssue] = claim["balance_issues"]
        issues.append(
            _construct(
                BalanceIssue,
                {
                    "rule": "claim",
                    "line_index": None,
                    "expected": expected,
                    "actual": paid,
                    "message": f"CLP03 {charge} - CAS {total_adjusted} = {expected}, CLP04 is {paid}",
                },
            )
        )
        return issues

    # -- segments parsed once per distinct text (memoised) -----------------------------------------

    def _parse_cas(self, text: str, element_separator: str) -> tuple[tuple[Adjustment, ...], Decimal, Decimal]:
        """(adjustments, sum of amounts, sum of PR amounts) of one CAS segment."""
        elements = text.split(element_separator)
        n = len(elements)
        if (n == 4 or n == 5) and elements[0] == "CAS" and elements[1] and elements[2]:
            # one triplet, the usual case
            group = elements[1]
            amount = self._decimals[elements[3]]
            adjustment = _new(Adjustment)
            _setattr(
                adjustment,
                "__dict__",
                {
                    "group_code": group,
                    "reason_code": elements[2],
                    "amount": amount,
                    "quantity": self._decimals[elements[4]] if n == 5 and elements[4] else None,
                },
            )
            _set_fields_set(adjustment, _ADJUSTMENT_FIELDS)
            _set_extra(adjustment, None)
            _set_private(adjustment, None)
            return (adjustment,), amount, (amount if group == "PR" else _ZERO)
        if elements[0] != "CAS":
            raise _ClaimError("unexpected_segment", None, f"segment {elements[0]!r} is not CAS")
        group = elements[1].strip() if n > 1 else ""
        if not group or n < 4 or n > 20:
            raise ValueError("CAS")
        decimals = self._decimals
        adjustments = []
        total = _ZERO
        for position in range(2, n, 3):
            reason = elements[position].strip()
            amount_text = elements[position + 1] if position + 1 < n else ""
            quantity_text = elements[position + 2] if position + 2 < n else ""
            if not reason:
                if amount_text.strip() or quantity_text.strip():
                    raise ValueError("CAS")
                continue
            amount = decimals[amount_text]
            adjustment = _new(Adjustment)
            _setattr(
                adjustment,
                "__dict__",
                {
                    "group_code": group,
                    "reason_code": reason,
                    "amount": amount,
                    "quantity": decimals[quantity_text] if quantity_text else None,
                },
            )
            _set_fields_set(adjustment, _ADJUSTMENT_FIELDS)
            _set_extra(adjustment, None)
            _set_private(adjustment, None)
            adjustments.append(adjustment)
            total += amount
        if not adjustments:
            raise ValueError("CAS")
        return tuple(adjustments), total, (total if group == "PR" else _ZERO)

    def _parse_composite(self, text: str, component: str) -> tuple[tuple[str, str, tuple[str, ...]], str]:
        """(qualifier, code, modifiers) of SVC01, and the component separator (after any fallback)."""
        composite, component = self._split_composite(text, component, "SVC01")
        if len(composite) < 2 or not composite[1]:
            raise _ClaimError("missing_element", "SVC01-2", f"SVC01 {text!r} has no procedure code")
        if not composite[0]:
            raise _ClaimError("missing_element", "SVC01-1", f"SVC01 {text!r} has no qualifier")
        if len(composite) > 8:
            raise _ClaimError("bad_composite", "SVC01", f"SVC01 {text!r} has more than 8 components")
        # C003: 01 qualifier, 02 code, 03-06 modifiers, 07 description, 08 product/service id
        modifiers = tuple(modifier for modifier in composite[2:6] if modifier)
        return (composite[0], composite[1], modifiers), component

    def _svc_originals(self, line: dict[str, Any], elements: list[str], component: str) -> str:
        """SVC06 (original procedure) and SVC07 (original units) into ``line``; returns the component sep."""
        n = len(elements)
        if elements[6].strip():
            original, component = self._split_composite(elements[6], component, "SVC06")
            if len(original) > 1 and original[1]:
                line["original_procedure_code"] = original[1]
        if n > 7 and elements[7]:
            line["original_units"] = self._decimals[elements[7]]
        return component

    def _parse_dtm(self, text: str, element_separator: str) -> tuple[str, dt.date | None]:
        elements = text.split(element_separator)
        if elements[0] != "DTM":
            raise _ClaimError("unexpected_segment", None, f"segment {elements[0]!r} is not DTM")
        qualifier = elements[1]
        if qualifier in _CLAIM_DATES:
            return qualifier, self._dates[elements[2]]
        return qualifier, None

    # -- PLB ---------------------------------------------------------------------------------------

    def _provider_adjustment(
        self, elements: list[str], segment_index: int, line: int | None, text: str, component: str
    ) -> tuple[Item, str]:
        """A ProviderAdjustmentEvent (or a DeadLetter) for one PLB segment; returns the component separator."""

        def fail(reason: str, element: str | None, detail: str) -> DeadLetter:
            self.tx_paid_known = False
            problem = self._problem(reason, detail, "PLB", element, segment_index, line, text)
            return self._dead_letter(problem, f"{segment_index}|{text}")

        n = len(elements) - 1
        if n < 4:
            return fail("truncated_segment", f"PLB{n + 1:02d}", f"PLB has {n} elements; PLB01-04 required"), component
        provider_id = elements[1].strip()
        if not provider_id:
            return fail("missing_element", "PLB01", "PLB01 (provider identifier) is empty"), component
        fiscal = elements[2].strip()
        fiscal_date = None
        if fiscal:
            try:
                fiscal_date = _date(fiscal)
            except ValueError:
                return fail("bad_date", "PLB02", f"PLB02 {fiscal!r} is not a valid CCYYMMDD date"), component
        if n > 14:
            return fail("truncated_segment", "PLB15", f"PLB has {n} elements; at most 14 (6 adjustments)"), component
        adjustments = []
        total = _ZERO
        for position in range(3, n + 1, 2):
            composite = elements[position].strip()
            amount_text = elements[position + 1].strip() if position + 1 <= n else ""
            if not composite and not amount_text:
                continue
            name = f"PLB{position:02d}"
            if not composite:
                return fail("missing_element", name, f"{name} (adjustment reason) is empty"), component
            if not amount_text:
                name = f"PLB{position + 1:02d}"
                return fail("missing_element", name, f"{name} (adjustment amount) is empty"), component
            parts = composite.split(component)
            if len(parts) == 1 and len(composite) > 2:
                parts, component = self._split_composite(composite, component, "PLB")
            if len(parts) > 2:
                return fail("bad_composite", name, f"{name} {composite!r} has more than 2 components"), component
            try:
                amount = _decimal(amount_text)
            except (InvalidOperation, ValueError):
                name = f"PLB{position + 1:02d}"
                return fail("bad_amount", name, f"{name} {amount_text!r} is not a decimal amount"), component
            total += amount
            adjustments.append(
                _construct(
                    ProviderAdjustment,
                    {
                        "reason_code": parts[0],
                        "reference_id": (parts[1] or None) if len(parts) > 1 else None,
                        "amount": amount,
                    },
                )
            )
        if not adjustments:
            return fail("missing_element", "PLB03", "PLB carries no adjustment"), component
        self._build_header()
        if self.header is None:
            return fail("bad_header", None, f"payment of the transaction is unusable: {self.header_problem}"), component
        self.tx_plb += total
        payment, payer, payee = self.header
        event = _construct(
            ProviderAdjustmentEvent,
            {
                "schema_version": SCHEMA_VERSION,
                "event_type": "provider_adjustment",
                "event_id": self._identity(f"plb|{self.isa13}|{self.gs06}|{self.st02}|{segment_index}|{text}"),
                "source": _construct(
                    SourceLocation,
                    {
                        "file": self.file_name,
                        "interchange_control_number": self.isa13,
                        "transaction_control_number": self.st02,
                        "segment_index": segment_index,
                        "line": line,
                    },
                ),
                "payment": payment,
                "payer": payer,
                "payee": payee,
                "provider_id": provider_id,
                "fiscal_period_date": fiscal_date,
                "adjustments": adjustments,
            },
        )
        self.summary.provider_adjustments += 1
        return event, component

    def _split_composite(self, text: str, component: str, where: str) -> tuple[list[str], str]:
        """Split a composite; fall back to the other common component separator (warned once)."""
        parts = text.split(component)
        if len(parts) == 1:
            for other in _COMMON_COMPONENT_SEPARATORS:
                if other != component and other in text:
                    key = (component, other)
                    if key not in self._composite_warned:
                        self._composite_warned.add(key)
                        self.summary.warn(
                            f"interchange ISA13={self.isa13}: component separator {component!r} declared in ISA16 "
                            f"but {where} uses {other!r}; using {other!r} for the rest of the interchange"
                        )
                    return text.split(other), other
        return parts, component

    # -- reading -----------------------------------------------------------------------------------

    def _texts(self, stream: BinaryIO) -> Iterator[str]:
        """Decoded text chunks; the first one is long enough to hold an ISA, BOM removed."""
        chunk_size = self.chunk_size
        summary = self.summary
        first = stream.read(chunk_size)
        while first and len(first) < _FIRST_CHUNK_MIN:
            more = stream.read(chunk_size)
            if not more:
                break
            first += more
        summary.bytes_read += len(first)
        if first.startswith(codecs.BOM_UTF8):
            first = first[3:]
        encoding = "utf-8"
        start = first.lstrip()
        if start.startswith(b"ISA") and len(start) > 4 and start[3] >= 0x80:
            encoding = "latin-1"  # non-ASCII delimiters: keep bytes 1:1
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        yield decoder.decode(first, False)
        while True:
            data = stream.read(chunk_size)
            summary.bytes_read += len(data)
            if not data:
                tail = decoder.decode(b"", True)
                if tail:
                    yield tail
                return
            yield decoder.decode(data, False)

    def _start(self, text: str) -> tuple[str, int, Delimiters]:
        """Find the ISA (or decide there is none): (text from the first segment, its line, delimiters)."""
        summary = self.summary
        leading = len(text) - len(text.lstrip())
        first_line = 1 + text.count("\n", 0, leading)
        text = text[leading:]
        detected = _detect_isa(text)
        if detected is None:
            at = text.find("ISA", 0, _START_WINDOW)
            if at > 0 and (detected := _detect_isa(text[at:])) is not None:
                summary.warn(f"{at} characters before the ISA were ignored")
                first_line += text.count("\n", 0, at)
                text = text[at:]
        if detected is not None:
            delimiters = detected[0]
        else:
            delimiters = _infer_without_isa(text)
            if f"ST{delimiters.element}835" in text[:_START_WINDOW]:
                summary.warn(
                    f"no ISA envelope: delimiters inferred (element {delimiters.element!r}, "
                    f"segment {delimiters.segment!r}, component {delimiters.component!r})"
                )
        return text, first_line, delimiters

    # -- the main loop -----------------------------------------------------------------------------

    def items(self, stream: BinaryIO) -> Iterator[Item]:
        """Every item of the stream, in file order. One long function on purpose: it is the hot path."""
        summary = self.summary
        texts = self._texts(stream)
        text, line_base, delimiters = self._start(next(texts, ""))
        self.delimiters = delimiters
        summary.delimiters = delimiters._asdict()
        E, C, T = delimiters.element, delimiters.component, delimiters.segment
        K_LQ, K_LX, K_REF6R = "LQ" + E, "LX" + E, f"REF{E}6R{E}"
        line_char = "\r" if "\n" not in text and "\r" in text else "\n"
        decimals = self._decimals
        number, convert = decimals.get, decimals.convert
        memo = self._memo
        memo_get = memo.get
        # a parsed segment is kept in the memo from its second sighting on: one-off segments (unique
        # amounts) would only churn the memo and the memory
        seen = self._seen
        parse_cas, parse_dtm = self._parse_cas, self._parse_dtm
        composites = self._composites
        composites_get = composites.get
        finish = self._finish_claim
        claim_template = _CLAIM_TEMPLATE.copy
        line_template = _LINE_TEMPLATE.copy
        any_segment = False

        seg_base = 0  # number of segments before segs[0]
        # claim state
        claim: dict[str, Any] | None = None
        lines: list[dict[str, Any]] = []
        sums: list[tuple[Decimal, Decimal]] = []
        ends: list[dt.date] = []
        adjustments: list[Adjustment] = []
        line: dict[str, Any] | None = None
        line_adjusted = line_patient = claim_adjusted = _ZERO
        member_qc: str | None = None
        member_il: str | None = None
        problem: _Problem | None = None
        clp_index = 0
        clp_line: int | None = None
        clp_start = 0  # index in segs of the CLP (0 when the claim started in an earlier buffer)
        clp_parts: list[str] = []  # text of the claim from earlier buffers
        in_lines = False  # a SVC was seen in the current claim

        carry = ""
        pending: str | None = text
        keep_going = True
        general_end_line = line_base
        truncated_last = False
        force_general = False  # set for good once a segment with surrounding blanks is seen

        while keep_going:
            if pending is None:
                chunk = next(texts, None)
                if chunk is None:
                    keep_going = False
                    buf = carry
                else:
                    buf = carry + chunk if carry else chunk
                carry = ""
            else:
                buf = pending
                pending = None

            # -- split this buffer into clean segments; segment k is on line line_base + k * step
            seg_lines: list[int] | None = None
            step = 0
            held_cr = False
            if T == "\n":
                held_cr = keep_going and buf.endswith("\r")
                if held_cr:
                    buf = buf[:-1]  # maybe the CR of a CRLF cut by the chunk boundary: read it with its LF
                if "\r" in buf:
                    buf = buf.replace("\r\n", "\n").replace("\r", "\n")
                segs = buf.split("\n")
                separator = "\n"
                step = 1
                if force_general:
                    segs = [segment.strip() for segment in segs]
            elif line_char not in buf and "\r" not in buf and not force_general:
                segs = buf.split(T)
                separator = T
            else:
                # the newline that follows the previous buffer's last terminator may start this one
                lead = len(buf) - len(buf.lstrip("\r\n"))
                if lead:
                    line_base += buf.count(line_char, 0, lead)
                    buf = buf[lead:]
                if "\r" in buf and line_char == "\n":
                    buf = buf.replace("\r\n", "\n")
                    if keep_going and buf.endswith("\r") and buf.count("\r") == 1:
                        buf = buf[:-1]  # the CR of a CRLF cut by the chunk boundary
                newline = None
                if "\r" not in buf and not force_general:
                    # one segment per line (the usual layout) when every LF follows a terminator and every
                    # terminator but a last one is followed by a LF
                    segs = buf.split(T + "\n")
                    lines_count = len(segs) - 1
                    if buf.count("\n") == lines_count and buf.count(T) == lines_count + buf.endswith(T):
                        newline = T + "\n"
                if newline is not None:
                    separator = newline
                    step = 1
                else:
                    # newlines anywhere: wrapped files, indentation, blank lines, CR-only files
                    raw_segments = buf.split(T)
                    separator = T
                    segs = []
                    seg_lines = []
                    current = line_base
                    last = len(raw_segments) - 1
                    for position, raw in enumerate(raw_segments):
                        if position == last and keep_going:
                            segs.append(raw)  # the carry: counted with the next buffer
                            seg_lines.append(current)
                            break
                        lead = len(raw) - len(raw.lstrip())
                        seg_lines.append(current + raw.count(line_char, 0, lead))
                        current += raw.count(line_char)
                        if "\n" in raw or "\r" in raw:
                            raw = raw.replace("\r", "").replace("\n", "")
                        segs.append(raw.strip())
                    general_end_line = current

            if keep_going:
                carry = segs.pop() + "\r" if held_cr else segs.pop()
                if seg_lines is not None:
                    seg_lines.pop()
            else:
                # the last piece has no terminator: a clean end when it is blank
                truncated_last = bool(segs) and segs[-1].strip() != ""
                if segs and not truncated_last:
                    segs.pop()
                    if seg_lines is not None:
                        seg_lines.pop()

            restart_at = -1
            index = -1
            for index, seg in enumerate(segs):
                k = seg[:3]
                try:
                    if k == "CAS":
                        if claim is None:
                            raise _ClaimError("unexpected_segment", None, "CAS outside a claim loop")
                        hit = memo_get(seg)
                        if hit is None:
                            e = seg.split(E)
                            n = len(e)
                            if (n == 4 or n == 5) and e[0] == "CAS" and e[1] and e[2]:
                                # one triplet, the usual case: _parse_cas inlined
                                amount = number(e[3])
                                if amount is None:
                                    amount = convert(e[3])
                                quantity = None
                                if n == 5 and e[4]:
                                    quantity = number(e[4])
                                    if quantity is None:
                                        quantity = convert(e[4])
                                adjustment = _new(Adjustment)
                                _setattr(
                                    adjustment,
                                    "__dict__",
                                    {"group_code": e[1], "reason_code": e[2], "amount": amount, "quantity": quantity},
                                )
                                _set_fields_set(adjustment, _ADJUSTMENT_FIELDS)
                                _set_extra(adjustment, None)
                                _set_private(adjustment, None)
                                hit = ((adjustment,), amount, amount if e[1] == "PR" else _ZERO)
                            else:
                                hit = parse_cas(seg, E)
                            if seg in seen:
                                if len(memo) >= _MEMO_LIMIT:
                                    memo.clear()
                                memo[seg] = hit
                            else:
                                if len(seen) >= _MEMO_LIMIT:
                                    seen.clear()
                                seen.add(seg)
                        adjustments += hit[0]
                        if in_lines:
                            line_adjusted += hit[1]
                            line_patient += hit[2]
                        else:
                            claim_adjusted += hit[1]
                    elif k == "DTM":
                        if claim is None:
                            if self.in_transaction:
                                self._header_segment(seg.split(E))
                            continue
                        hit = memo_get(seg)
                        if hit is None:
                            hit = parse_dtm(seg, E)
                            if seg in seen:
                                if len(memo) >= _MEMO_LIMIT:
                                    memo.clear()
                                memo[seg] = hit
                            else:
                                if len(seen) >= _MEMO_LIMIT:
                                    seen.clear()
                                seen.add(seg)
                        qualifier = hit[0]
                        if in_lines:
                            if qualifier == "472" or qualifier == "150":
                                line["service_date"] = hit[1]
                            elif qualifier == "151":
                                ends.append(hit[1])
                        elif qualifier == "050":
                            claim["claim_received_date"] = hit[1]
                        elif qualifier == "232":
                            claim["service_date_from"] = hit[1]
                        elif qualifier == "233":
                            claim["service_date_to"] = hit[1]
                    elif k == "SVC":
                        if claim is None:
                            raise _ClaimError("unexpected_segment", None, "SVC outside a claim loop")
                        e = seg.split(E)
                        n = len(e)
                        if n < 4:
                            raise ValueError("SVC")
                        composite = composites_get(e[1])
                        if composite is None:
                            composite, C = self._parse_composite(e[1], C)
                            if len(composites) >= _MEMO_LIMIT:
                                composites.clear()
                            composites[e[1]] = composite
                        if line is not None:
                            sums.append((line_adjusted, line_patient))
                            line_adjusted = line_patient = _ZERO
                        line = line_template()
                        line["line_index"] = len(lines)
                        line["procedure_qualifier"] = composite[0]
                        line["procedure_code"] = composite[1]
                        line["modifiers"] = list(composite[2])
                        value = number(e[2])
                        line["charge_amount"] = convert(e[2]) if value is None else value
                        value = number(e[3])
                        line["paid_amount"] = convert(e[3]) if value is None else value
                        if n > 4:
                            line["revenue_code"] = e[4] or None
                            if n > 5 and e[5]:
                                value = number(e[5])
                                line["units"] = convert(e[5]) if value is None else value
                            else:
                                line["units"] = _ONE
                            if n > 6:
                                C = self._svc_originals(line, e, C)
                        else:
                            line["units"] = _ONE
                        line["adjustments"] = adjustments = []
                        line["remark_codes"] = []
                        line["amounts"] = {}
                        lines.append(line)
                        in_lines = True
                    elif k == "REF":
                        if in_lines:
                            if seg.startswith(K_REF6R):
                                value = seg[7:]
                                if E in value:
                                    value = value.split(E)[0]
                                line["line_control_number"] = value.strip() or None
                        elif claim is None and self.in_transaction:
                            self._header_segment(seg.split(E))
                    elif k == "AMT":
                        if claim is not None:
                            hit = memo_get(seg)
                            if hit is None:
                                e = seg.split(E)  # _parse_amt inlined
                                if e[0] != "AMT":
                                    raise _ClaimError("unexpected_segment", None, f"segment {e[0]!r} is not AMT")
                                qualifier = e[1]
                                amount = number(e[2])
                                if amount is None:
                                    amount = convert(e[2])
                                hit = (qualifier, amount)
                                if seg in seen:
                                    if len(memo) >= _MEMO_LIMIT:
                                        memo.clear()
                                    memo[seg] = hit
                                else:
                                    if len(seen) >= _MEMO_LIMIT:
                                        seen.clear()
                                    seen.add(seg)
                            qualifier, amount = hit
                            if in_lines:
                                line["amounts"][qualifier] = amount
                                if qualifier == "B6":
                                    line["reported_allowed_amount"] = amount
                            else:
                                claim["amounts"][qualifier] = amount
                                if qualifier == "B6":
                                    claim["reported_allowed_amount"] = amount
                    elif k == "NM1":
                        if claim is not None:
                            e = seg.split(E)
                            entity = e[1]
                            if entity == "QC":
                                if len(e) > 9 and e[9].strip():
                                    member_qc = e[9]
                            elif entity == "IL":
                                if len(e) > 9 and e[9].strip():
                                    member_il = e[9]
                            elif entity == "82" and len(e) > 9 and e[8] == "XX":
                                claim["rendering_provider_npi"] = e[9].strip() or None
                    elif k == "CLP":
                        if self.tx_skip:
                            continue
                        if claim is not None:
                            if line is not None:
                                sums.append((line_adjusted, line_patient))
                            tail = T.join(segs[clp_start:index])
                            yield finish(
                                claim, lines, sums, ends, member_qc or member_il, claim_adjusted, problem,
                                clp_index, clp_line, _claim_text(T, clp_parts, tail) if clp_parts else tail,
                            )  # fmt: skip
                            claim = None
                        # a new claim
                        summary.claims_seen += 1
                        self.tx_claims += 1
                        clp_index = seg_base + index + 1
                        clp_line = seg_lines[index] if seg_lines is not None else line_base + index * step
                        clp_start = index
                        clp_parts = []
                        problem = None
                        lines = []
                        sums = []
                        ends = []
                        adjustments = []
                        line = None
                        line_adjusted = line_patient = claim_adjusted = _ZERO
                        member_qc = member_il = None
                        in_lines = False
                        header = self.header
                        if header is None:
                            self._build_header()
                            header = self.header
                        claim = claim_template()
                        if header is not None:
                            claim["payment"], claim["payer"], claim["payee"] = header
                        claim["production_date"] = self.production_date
                        claim["adjustments"] = adjustments
                        claim["remark_codes"] = []
                        claim["amounts"] = {}
                        claim["service_lines"] = lines
                        claim["balance_issues"] = []
                        e = seg.split(E)
                        n = len(e)
                        if e[0] != "CLP":
                            raise _ClaimError("unexpected_segment", None, f"segment {e[0]!r} is not CLP")
                        if n > 4 and e[4]:
                            value = number(e[4])
                            claim["paid_amount"] = convert(e[4]) if value is None else value
                        if header is None:
                            raise _ClaimError(
                                "bad_header", None, f"payment of the transaction is unusable: {self.header_problem}"
                            )
                        if n < 12:
                            e += [""] * (12 - n)
                        if not e[1] or not e[2] or not e[3] or not e[4]:
                            raise ValueError("CLP")
                        claim["patient_control_number"] = e[1]
                        claim["status_code"] = e[2]
                        value = number(e[3])
                        claim["charge_amount"] = convert(e[3]) if value is None else value
                        if e[5]:
                            value = number(e[5])
                            claim["patient_responsibility_amount"] = convert(e[5]) if value is None else value
                        claim["claim_filing_indicator"] = e[6] or None
                        claim["payer_claim_id"] = e[7] or None
                        claim["facility_type_code"] = e[8] or None
                        claim["frequency_code"] = e[9] or None
                        claim["drg_code"] = e[11] or None
                    elif k == K_LQ:
                        if in_lines:
                            e = seg.split(E)
                            if e[1] == "HE" and len(e) > 2 and e[2]:
                                line["remark_codes"].append(e[2])
                        elif claim is not None:
                            raise _ClaimError("unexpected_segment", None, "LQ before any SVC of the claim")
                    elif k == K_LX:
                        if claim is not None:
                            if line is not None:
                                sums.append((line_adjusted, line_patient))
                            tail = T.join(segs[clp_start:index])
                            yield finish(
                                claim, lines, sums, ends, member_qc or member_il, claim_adjusted, problem,
                                clp_index, clp_line, _claim_text(T, clp_parts, tail) if clp_parts else tail,
                            )  # fmt: skip
                            claim = line = None
                            in_lines = False
                        if self.in_transaction and self.header is None:
                            self._build_header()
                    elif k == "MOA" or k == "MIA":
                        if claim is not None:
                            e = seg.split(E)
                            remarks = claim["remark_codes"]
                            for position in _REMARK_POSITIONS[k]:
                                if position < len(e) and e[position]:
                                    remarks.append(e[position])
                    else:
                        # envelope, header and rare segments
                        if not seg:
                            continue
                        if seg[:1] in _BLANKS and seg_lines is None and not force_general:
                            # indentation: re-split the rest of the file in the general (stripping) mode
                            force_general = True
                            restart_at = index
                            break
                        e = seg.split(E)
                        t = e[0]
                        if claim is not None and t in _CLAIM_ENDERS:
                            if line is not None:
                                sums.append((line_adjusted, line_patient))
                            tail = T.join(segs[clp_start:index])
                            yield finish(
                                claim, lines, sums, ends, member_qc or member_il, claim_adjusted, problem,
                                clp_index, clp_line, _claim_text(T, clp_parts, tail) if clp_parts else tail,
                            )  # fmt: skip
                            claim = line = None
                            in_lines = False
                        position_index = seg_base + index + 1
                        seg_line = seg_lines[index] if seg_lines is not None else line_base + index * step
                        if claim is not None:
                            if not _valid_segment_id(t):
                                raise _ClaimError(
                                    "unexpected_segment", None, "a segment with an invalid id inside the claim loop"
                                )
                            continue  # QTY, REF at claim level, PER, NM1 of other entities...
                        if t == "PLB":
                            if self.in_transaction and not self.tx_skip:
                                item, C = self._provider_adjustment(e, position_index, seg_line, seg, C)
                                yield item
                        elif seg.startswith("ISA"):
                            following = segs[index + 1] if index + 1 < len(segs) else carry
                            found = _detect_isa(seg + T + following)
                            if found is not None and found[0] != delimiters:
                                # other delimiters: re-split the rest of the buffer with them
                                delimiters = found[0]
                                self.delimiters = delimiters
                                E, C, T = delimiters.element, delimiters.component, delimiters.segment
                                K_LQ, K_LX, K_REF6R = "LQ" + E, "LX" + E, f"REF{E}6R{E}"
                                memo.clear()
                                seen.clear()
                                composites.clear()
                                summary.warn(
                                    f"interchange at segment {position_index} uses other delimiters: "
                                    f"{delimiters._asdict()}"
                                )
                                restart_at = index
                                break
                            any_segment = True
                            if self.in_transaction:
                                self._close_transaction(position_index - 1, None)
                            summary.interchanges += 1
                            summary.envelope = True
                            C = delimiters.component
                            self._composite_warned.clear()
                            memo.clear()
                            seen.clear()
                            composites.clear()
                            self.isa13 = e[13].strip() if len(e) > 13 else None
                            self.gs06 = None
                            if len(e) > 12:
                                self._version(e[12].strip())
                        elif t == "GS":
                            any_segment = True
                            summary.functional_groups += 1
                            self.gs06 = e[6].strip() if len(e) > 6 else None
                            if len(e) > 8:
                                self._version(e[8].strip())
                        elif t == "ST":
                            any_segment = True
                            if self.in_transaction:
                                self._close_transaction(position_index - 1, None)
                            summary.transactions += 1
                            self.in_transaction = True
                            self.st02 = e[2].strip() if len(e) > 2 else None
                            self.tx_start_index = position_index
                            kind = e[1].strip() if len(e) > 1 else ""
                            if kind != "835":
                                self.tx_skip = True
                                skipped = self._problem(
                                    "not_835",
                                    f"transaction set {kind!r} is not an 835; skipped",
                                    "ST",
                                    "ST01",
                                    position_index,
                                    seg_line,
                                    seg,
                                )
                                yield self._dead_letter(skipped, f"{position_index}|{seg}")
                        elif t == "SE":
                            if self.in_transaction:
                                self._close_transaction(position_index, e)
                            else:
                                summary.warn(f"SE at segment {position_index} outside a transaction")
                        elif t == "GE":
                            pass
                        elif t == "IEA":
                            if len(e) > 2 and self.isa13 is not None and e[2].strip() != self.isa13:
                                summary.warn(f"IEA02 {e[2].strip()!r} does not match ISA13 {self.isa13!r}")
                        elif self.in_transaction and not self.tx_skip:
                            if t in _HEADER_SEGMENTS:
                                self._header_segment(e)
                            elif not _valid_segment_id(t):
                                summary.warn(f"segment {position_index} is not an X12 segment; ignored")
                        elif not self.in_transaction and not _valid_segment_id(t):
                            summary.warn(f"segment {position_index} is not an X12 segment; ignored")
                except Exception as error:
                    if self.tx_skip:
                        continue
                    position_index = seg_base + index + 1
                    seg_line = seg_lines[index] if seg_lines is not None else line_base + index * step
                    if claim is not None:
                        if problem is None:
                            problem = self._problem_from_exception(error, seg, E, position_index, seg_line)
                    else:
                        orphan = self._problem_from_exception(error, seg, E, position_index, seg_line)
                        yield self._dead_letter(orphan, f"{position_index}|{seg}")

            # -- end of buffer bookkeeping
            processed = restart_at if restart_at >= 0 else len(segs)
            if claim is not None and clp_start < processed:
                clp_parts.append(T.join(segs[clp_start:processed]))
            clp_start = 0
            if restart_at >= 0:
                rest = separator.join(segs[restart_at:])
                pending = rest + separator + carry if keep_going else rest
                carry = ""
                keep_going = True
                line_base = seg_lines[restart_at] if seg_lines is not None else line_base + restart_at * step
                seg_base += restart_at
                continue
            if seg_lines is not None:
                line_base = general_end_line
            else:
                line_base += len(segs) * step
            seg_base += len(segs)
            if not keep_going and truncated_last and claim is not None and problem is None:
                last_index = len(segs) - 1
                last = segs[last_index]
                tag = last.split(E)[0]
                if tag not in _ENVELOPE:
                    problem = self._problem(
                        "truncated_segment",
                        f"the file ends inside a {tag[:3]!r} segment (no segment terminator)",
                        tag[:3] or None,
                        None,
                        seg_base,
                        seg_lines[last_index] if seg_lines is not None else line_base - step,
                        last,
                    )

        # -- end of file
        summary.segments = seg_base
        if claim is not None:
            if line is not None:
                sums.append((line_adjusted, line_patient))
            yield finish(
                claim, lines, sums, ends, member_qc or member_il, claim_adjusted, problem,
                clp_index, clp_line, T.join(clp_parts),
            )  # fmt: skip
        if self.in_transaction:
            self._close_transaction(seg_base, None)
        if not any_segment and summary.transactions == 0 and summary.claims_seen == 0:
            not_x12 = self._problem(
                "not_x12", "the file holds no ISA and no ST segment: not an X12 file", None, None, None, None, None
            )
            yield self._dead_letter(not_x12, "file")
        elif summary.claims_seen == 0 and summary.provider_adjustments == 0:
            summary.warn("the file holds no claim (CLP) and no provider adjustment (PLB)")
        summary.complete = True

    def _version(self, version: str) -> None:
        versions = self.summary.versions
        if version and version not in versions and len(versions) < 10:
            versions.append(version)


# ----------------------------------------------------------------------------------------------------
# Entry points


def parse_stream(
    stream: BinaryIO, file_name: str, hmac_key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> ParseRun:
    """Parse an open binary stream (read in ``chunk_size`` pieces)."""
    parser = Parser(file_name, hmac_key, chunk_size)
    return ParseRun(parser.items(stream), parser.summary)


def parse_bytes(data: bytes, file_name: str, hmac_key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ParseRun:
    """Parse an 835 held in memory (tests, small files)."""
    import io

    if isinstance(data, str):
        data = data.encode("utf-8")
    return parse_stream(io.BytesIO(data), file_name, hmac_key, chunk_size=chunk_size)


def parse_path(path: str | os.PathLike[str], hmac_key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ParseRun:
    """Parse a file; it is opened lazily and closed when the iteration ends."""
    path = Path(path)
    parser = Parser(path.name, hmac_key, chunk_size)

    def generate() -> Iterator[Item]:
        with open(path, "rb") as stream:
            yield from parser.items(stream)

    return ParseRun(generate(), parser.summary)
