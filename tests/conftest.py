"""Shared fixtures: paths to the bundled test data, and one extraction pipeline per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
GOLD = FIXTURES / "gold"
SEEDS = ROOT / "data" / "seeds"


@pytest.fixture(scope="session")
def extractor():  # type: ignore[no-untyped-def]
    from nlp.pipeline import Extractor

    return Extractor()
