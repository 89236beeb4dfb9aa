"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder beside the checkout (real CMS files and public 835 samples)."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is absent: tests on the public sample files are skipped")
    return SHARED_DIR


@pytest.fixture(scope="session")
def cms_2025_dir(shared_dir: Path) -> Path:
    folder = shared_dir / "data" / "cms" / "pfs2025"
    if not folder.is_dir():
        pytest.skip("../shared/data/cms/pfs2025 is absent")
    return folder


@pytest.fixture(scope="session")
def x12_samples_dir(shared_dir: Path) -> Path:
    folder = shared_dir / "data" / "x12" / "835"
    if not folder.is_dir():
        pytest.skip("../shared/data/x12/835 is absent")
    return folder
