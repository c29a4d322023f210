"""Every Python block of the core README runs, in file order (whatever order the tests run
in), in one namespace, so a snippet that drifts from the code fails here; TOML policy blocks
load as policy files. A block is left out only with a stated reason
(``<!-- snippet: skip: <reason> -->`` on the line before its fence).

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


class ReadmeRun:
    """One README's Python blocks run in file order in one namespace, each at most once.

    The tests run in random order, so a block's test first runs the blocks before it that
    have not run yet (a block uses what earlier ones defined, as a reader's session would);
    each block's own outcome is kept so its test, whenever it comes, reports that block."""

    def __init__(self, path: Path) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__readme__"}
        self._blocks = [s for s in SNIPPETS if s.path == path and s.language == "python"]
        self._outcomes: dict[Snippet, BaseException | None] = {}

    def run_through(self, snippet: Snippet) -> BaseException | None:
        """Run every block up to and including ``snippet`` not run yet; ``snippet``'s error."""
        for block in self._blocks[: self._blocks.index(snippet) + 1]:
            if block in self._outcomes or block.skip_reason is not None:
                continue
            try:
                exec(compile(block.code, block.id, "exec"), self.namespace)
            except Exception as error:
                self._outcomes[block] = error
            else:
                self._outcomes[block] = None
        return self._outcomes[snippet]


@pytest.fixture(scope="module")
def readme_runs() -> Iterator[dict[Path, ReadmeRun]]:
    """One run per README; its providers are shut down after the module."""
    runs: dict[Path, ReadmeRun] = {}
    yield runs
    for run in runs.values():
        for value in run.namespace.values():
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
    readme_runs: dict[Path, ReadmeRun],
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
    run = readme_runs.setdefault(snippet.path, ReadmeRun(snippet.path))
    error = run.run_through(snippet)
    if error is not None:
        raise error


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
