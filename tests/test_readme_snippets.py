"""Every Python block of the core README runs, in order, in one namespace, so a snippet that
drifts from the code fails here; TOML policy blocks load as policy files. A block is left out
only with a stated reason (``<!-- snippet: skip: <reason> -->`` on the line before its fence).

The snippets run as a reader would run them: in a fresh working directory holding the
examples' ``flags.json`` and policy (as ``experiments.toml``), with ``FEATBIT_ENV_SECRET``,
``FEATBIT_STREAMING_URL`` and ``FEATBIT_EVENT_URL`` naming a local FeatBit server that holds
the examples' flags, ``REDIS_URL`` a Redis and ``ID_HASH_KEY`` a hashing key."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.transaction_context import clear_transaction_context_propagator

from examples._flags import EXAMPLE_FLAGS
from examples._settings import FLAGS, POLICY, REPOSITORY
from featbit_experiments import FeatBitProvider, load_policy
from tests.support.featbit_server import FeatBitTestServer
from tests.support.snippets import Snippet, snippets

#: The adapters' READMEs are run by their own tests (adapters/*/tests/test_readme.py), each
#: block on its own from the repository root.
READMES = [REPOSITORY / "README.md"]
SNIPPETS = [snippet for readme in READMES for snippet in snippets(readme)]


@pytest.fixture(scope="module")
def featbit() -> Iterator[FeatBitTestServer]:
    with FeatBitTestServer() as server:
        server.set_flags([flag.to_featbit() for flag in EXAMPLE_FLAGS])
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("readme")
    shutil.copy(FLAGS, directory / "flags.json")
    shutil.copy(POLICY, directory / "experiments.toml")
    return directory


@pytest.fixture(scope="module")
def namespaces() -> Iterator[dict[Path, dict[str, Any]]]:
    """One namespace per README, shared by its blocks in order; providers shut down after."""
    spaces: dict[Path, dict[str, Any]] = {}
    yield spaces
    for space in spaces.values():
        for value in space.values():
            if isinstance(value, FeatBitProvider):
                value.shutdown()
    api.clear_providers()
    clear_transaction_context_propagator()


@pytest.fixture
def reader_environment(
    featbit: FeatBitTestServer, workdir: Path, main_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("FEATBIT_ENV_SECRET", featbit.env_secret)
    monkeypatch.setenv("FEATBIT_STREAMING_URL", featbit.streaming_url)
    monkeypatch.setenv("FEATBIT_EVENT_URL", featbit.event_url)
    monkeypatch.setenv("REDIS_URL", main_redis)
    monkeypatch.setenv("ID_HASH_KEY", "readme-snippets-hash-key-0123456789")


def test_the_readmes_have_snippets() -> None:
    assert any(s.path.name == "README.md" and s.language == "python" for s in SNIPPETS)
    assert {s.path for s in SNIPPETS} >= {REPOSITORY / "README.md"}


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet_runs(
    snippet: Snippet,
    reader_environment: None,
    namespaces: dict[Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    if snippet.skip_reason is not None:
        pytest.skip(snippet.skip_reason)
    if snippet.language == "toml":
        if "[experiments." in snippet.code or "[metrics." in snippet.code:
            policy_file = tmp_path / "snippet.toml"
            policy_file.write_text(snippet.code, encoding="utf-8")
            load_policy(policy_file)
        return
    namespace = namespaces.setdefault(snippet.path, {"__name__": "__readme__"})
    code = compile(snippet.code, f"{snippet.id}", "exec")
    exec(code, namespace)


def test_a_skipped_snippet_must_say_why(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- snippet: skip -->\n```python\nprint(1)\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must say why"):
        snippets(readme)


def test_a_skip_reason_is_kept_and_other_languages_are_ignored(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "```sh\nmake test\n```\n<!-- snippet: skip: needs a GPU -->\n```python\nx = 1\n```\n",
        encoding="utf-8",
    )
    [snippet] = snippets(readme)
    assert (snippet.skip_reason, snippet.code, snippet.line) == ("needs a GPU", "x = 1\n", 5)
