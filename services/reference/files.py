"""Reference files as a mapping of relative POSIX path -> bytes.

Every loader (pricing, adequacy, NSA) takes such a mapping, so the same code builds reference data from
a folder on disk (offline CLI, tests) and from the compacted reference topics (live workers).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ReferenceFiles = Mapping[str, bytes]

IGNORED_NAMES = {".DS_Store", "README.md", "README.txt"}


class ReferenceError(ValueError):
    """A reference file is missing or malformed. The message names file, line, column and expectation."""

    def __init__(self, file: str, message: str, line: int | None = None, column: str | None = None):
        self.file = file
        self.line = line
        self.column = column
        where = file
        if line is not None:
            where += f":{line}"
        if column:
            where += f" column {column!r}"
        super().__init__(f"{where}: {message}")


def read_folder(root: Path) -> dict[str, bytes]:
    """Read every file below ``root`` (recursively) into a {relative posix path: content} mapping."""
    root = Path(root)
    if not root.is_dir():
        raise ReferenceError(str(root), "reference folder does not exist or is not a directory")
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in IGNORED_NAMES and not path.name.startswith("."):
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def decode_text(name: str, content: bytes) -> str:
    """Decode a reference file: UTF-8 (with or without BOM), falling back to Latin-1 (CMS files)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("latin-1")
