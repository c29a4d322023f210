"""The README's examples run as written: the Starlette app, CORS for the echoed header and the
FastAPI ``Depends`` pattern, each offline from ``examples/data/flags.json``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api

from tests.support.snippets import python_blocks, run_block

ROOT = Path(__file__).resolve().parents[3]
BLOCKS = python_blocks(ROOT / "adapters" / "starlette" / "README.md")


@pytest.fixture(autouse=True)
def from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    yield
    api.clear_providers()


def test_the_readme_has_the_app_cors_and_fastapi_examples() -> None:
    assert len(BLOCKS) == 3
    assert "bind_units" in BLOCKS[2] and "expose_headers" in BLOCKS[1]


@pytest.mark.parametrize("block", BLOCKS, ids=["starlette-app", "cors", "fastapi-depends"])
def test_a_readme_example_runs(block: str) -> None:
    run_block(block)
