"""The README's examples run as written: a router with the handler and outcomes, and the
LangGraph pattern (a checkpointed ``StateGraph`` whose thread is the conversation), each
offline from ``examples/data/flags.json``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api

from tests.support.snippets import python_blocks, run_block

ROOT = Path(__file__).resolve().parents[3]
BLOCKS = python_blocks(ROOT / "adapters" / "langchain" / "README.md")


@pytest.fixture(autouse=True)
def from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    yield
    api.clear_providers()


def test_the_readme_has_the_router_and_langgraph_examples() -> None:
    assert len(BLOCKS) == 2
    assert "experiment_branch" in BLOCKS[0] and "InMemorySaver" in BLOCKS[1]


@pytest.mark.parametrize("block", BLOCKS, ids=["router", "langgraph"])
def test_a_readme_example_runs(block: str) -> None:
    run_block(block)
