"""Small, strict parsers shared by the pricing reference loaders.

Every problem becomes a :class:`ReferenceError` that names the file, the 1-based line, the column and
what was expected. Loaders collect problems in an :class:`ErrorCollector` so that ``claimwatch reference
check`` can list all of them at once instead of stopping at the first.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from services.reference.files import ReferenceError, decode_text

MAX_ERRORS_PER_FILE = 50


class ReferenceValidationError(ReferenceError):
    """Several reference problems at once; ``errors`` lists every one (in file order)."""

    def __init__(self, errors: list[ReferenceError]):
        if not errors:
            raise ValueError("ReferenceValidationError needs at least one error")
        self.errors = list(errors)
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        super().__init__(first.file, f"{_message_of(first)}{more}", first.line, first.column)


def _message_of(error: ReferenceError) -> str:
    text = str(error)
    where = error.file
    if error.line is not None:
        where += f":{error.line}"
    if error.column:
        where += f" column {error.column!r}"
    prefix = f"{where}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


class ErrorCollector:
    """Collects reference problems; at most ``MAX_ERRORS_PER_FILE`` are kept per file."""

    def __init__(self) -> None:
        self.errors: list[ReferenceError] = []
        self._per_file: dict[str, int] = {}
        self.warnings: list[str] = []

    def add(self, file: str, message: str, line: int | None = None, column: str | None = None) -> None:
        self.add_error(ReferenceError(file, message, line, column))

    def add_error(self, error: ReferenceError) -> None:
        if isinstance(error, ReferenceValidationError):
            for inner in error.errors:
                self.add_error(inner)
            return
        count = self._per_file.get(error.file, 0) + 1
        self._per_file[error.file] = count
        if count < MAX_ERRORS_PER_FILE:
            self.errors.append(error)
        elif count == MAX_ERRORS_PER_FILE:
            self.errors.append(ReferenceError(error.file, "too many problems; the rest of this file is not listed"))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ReferenceValidationError(self.errors)


def parse_decimal(text: str, *, file: str, line: int, column: str, minimum: Decimal | None = Decimal(0)) -> Decimal:
    """A plain decimal number (``123``, ``123.45``, ``.5``); no exponent, no thousands separator."""
    value = text.strip()
    try:
        if not value or any(ch in value for ch in "eEnN,$% "):
            raise InvalidOperation
        number = Decimal(value)
    except InvalidOperation:
        raise ReferenceError(file, f"expected a decimal number like 123.45, got {text!r}", line, column) from None
    if minimum is not None and number < minimum:
        raise ReferenceError(file, f"expected a number >= {minimum}, got {text!r}", line, column)
    return number


def parse_date(text: str, *, file: str, line: int, column: str) -> dt.date:
    value = text.strip()
    try:
        if len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ReferenceError(file, f"expected a date YYYY-MM-DD, got {text!r}", line, column) from None


def parse_bool(text: str, *, file: str, line: int, column: str, default: bool = False) -> bool:
    value = text.strip().lower()
    if not value:
        return default
    if value in {"true", "yes", "y", "1"}:
        return True
    if value in {"false", "no", "n", "0"}:
        return False
    raise ReferenceError(file, f"expected true or false, got {text!r}", line, column)


class CsvRow:
    """One data row of a headed CSV file: values by (lower-case) column name, plus where it came from."""

    __slots__ = ("file", "line", "values")

    def __init__(self, file: str, line: int, values: dict[str, str]):
        self.file = file
        self.line = line
        self.values = values

    def get(self, column: str) -> str:
        return self.values.get(column, "").strip()

    def error(self, column: str | None, message: str) -> ReferenceError:
        return ReferenceError(self.file, message, self.line, column)


def read_headed_csv(
    name: str,
    content: bytes,
    *,
    required: Iterable[str],
    optional: Iterable[str] = (),
) -> Iterator[CsvRow]:
    """Yield the data rows of a CSV file whose first line is a header.

    Column names are matched case-insensitively; a column named ``notes`` is always allowed. Unknown
    columns and missing required columns are errors (a typo in a header would otherwise silently drop
    a term). Blank lines and lines starting with ``#`` are skipped.
    """
    required = [column.lower() for column in required]
    allowed = set(required) | {column.lower() for column in optional} | {"notes"}
    text = decode_text(name, content)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            unknown = [cell for cell in header if cell not in allowed]
            missing = [column for column in required if column not in header]
            duplicated = sorted({cell for cell in header if header.count(cell) > 1})
            problems = []
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown column(s) {', '.join(unknown)}")
            if duplicated:
                problems.append(f"duplicated column(s) {', '.join(duplicated)}")
            if problems:
                expected = ", ".join(required) + (
                    f" (optional: {', '.join(sorted(allowed - set(required)))})" if allowed - set(required) else ""
                )
                raise ReferenceError(name, "; ".join(problems) + f"; expected header columns {expected}", line)
            continue
        if len(row) > len(header):
            extra = row[len(header) :]
            if any(cell.strip() for cell in extra):
                raise ReferenceError(
                    name,
                    f"{len(row)} fields but the header has {len(header)} (quote a value that contains a comma)",
                    line,
                )
        values = {column: (row[index] if index < len(row) else "") for index, column in enumerate(header)}
        yield CsvRow(name, line, values)
    if header is None:
        raise ReferenceError(name, "empty file: expected a header line " + ",".join(required))
