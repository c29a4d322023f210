"""Code blocks of the READMEs, for the test that runs them so they cannot drift from the code.

A fenced ```` ```python ```` block is run; a ```` ```toml ```` block holding ``[experiments.*]``
or ``[metrics.*]`` tables is loaded as a policy file. A block is left out only when the line
right before its fence says why: ``<!-- snippet: skip: <reason> -->`` (a reason is required).
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```(\w+)\s*$")
_SKIP = re.compile(r"^<!--\s*snippet:\s*skip:\s*(?P<reason>.*?)\s*-->\s*$")
_SKIP_WITHOUT_REASON = re.compile(r"^<!--\s*snippet:\s*skip\s*:?\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    """One code block: where it starts (the fence's line), its language, text and skip reason."""

    path: Path
    line: int
    language: str
    code: str
    skip_reason: str | None

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}:{self.line}"


def snippets(path: Path) -> list[Snippet]:
    """The python and toml blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        if fence.group(1) not in ("python", "toml"):
            continue
        before = lines[start - 1] if start > 0 else ""
        if _SKIP_WITHOUT_REASON.match(before):
            raise ValueError(f"{path}:{start}: a skipped snippet must say why")
        skip = _SKIP.match(before)
        found.append(
            Snippet(path, start + 1, fence.group(1), "\n".join(body) + "\n",
                    skip.group("reason") if skip else None)
        )  # fmt: skip
    return found


def python_blocks(path: Path) -> list[str]:
    """The code of every runnable ``python`` block of a Markdown file, in order."""
    return [s.code for s in snippets(path) if s.language == "python" and s.skip_reason is None]


def run_block(block: str, name: str = "readme_example") -> dict[str, object]:
    """Run one block as a module of its own (registered while it runs, so dataclasses and
    FastAPI's annotation lookups find it); returns its namespace."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(block, f"<{name}>", "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module.__dict__
