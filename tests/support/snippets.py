"""The ``python`` code blocks of a Markdown file, for tests that run a README's examples as
written (each block on its own, from the repository root, where ``examples/data`` is)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(markdown: Path) -> list[str]:
    """Every fenced ``python`` block of ``markdown``, in order."""
    return _BLOCK.findall(markdown.read_text(encoding="utf-8"))


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
