"""Find where a code base uses flag keys and event names, so a decided experiment's branches,
flags and metrics can be removed everywhere.

Python files are read as syntax trees: ``experiment_branch(KEY, ...)``, OpenFeature's
``get_<type>_value`` / ``get_<type>_details`` (and their ``_async`` forms) and ``track(NAME)``
calls whose key is a string literal or a module-level constant holding one; any other string
literal equal to a known key is recorded too. Other text files are searched for the known keys
as whole words. The scan only reads files; it never imports or runs them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeReference", "Kind", "scan"]

#: Directories never scanned (tool caches, virtual environments, build output).
SKIPPED_DIRECTORIES = frozenset(
    {".git", ".hg", ".venv", "venv", ".tools", "node_modules", "__pycache__", ".mypy_cache",
     ".ruff_cache", ".pytest_cache", "dist", "build", "out", ".tox", ".nox"}
)  # fmt: skip
MAX_TEXT_BYTES = 1_000_000
_EVALUATION = re.compile(r"^get_(boolean|string|integer|float|object)_(value|details)(_async)?$")


class Kind:
    """How a code location refers to a key."""

    BRANCH = "branch"  # experiment_branch(key, ...)
    EVALUATION = "evaluation"  # client.get_string_value(key, ...)
    TRACK = "track"  # client.track(name, ...)
    LITERAL = "literal"  # any other Python string literal equal to a known key
    TEXT = "text"  # a whole-word match in a non-Python file

    USES = frozenset({BRANCH, EVALUATION})


@dataclass(frozen=True, order=True)
class CodeReference:
    """One place a key appears: ``path:line``, how, and the key."""

    path: str
    line: int
    kind: str
    key: str

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def scan(
    roots: Iterable[Path], known: Iterable[str] = (), *, exclude: Iterable[Path] = ()
) -> list[CodeReference]:
    """Every reference under ``roots``: calls with literal keys (any key), and literals or
    whole-word text matches of the ``known`` keys. ``exclude`` skips files (the flag data
    being compared against, which names every flag)."""
    known_keys = frozenset(k for k in known if k)
    pattern = _word_pattern(known_keys)
    skipped = {p.resolve() for p in exclude}
    found: set[CodeReference] = set()
    for root in roots:
        for file in _files(root):
            if file.resolve() in skipped:
                continue
            shown = _shown(file)
            if file.suffix == ".py":
                found.update(_python(file, shown, known_keys))
            elif pattern is not None:
                found.update(_text(file, shown, pattern))
    return sorted(found)


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.iterdir()):
        if path.is_dir():
            if path.name not in SKIPPED_DIRECTORIES and not path.name.endswith(".egg-info"):
                yield from _files(path)
        elif path.is_file():
            yield path


def _shown(file: Path) -> str:
    """The path as a person types it: relative to the working directory when inside it."""
    try:
        return file.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return file.as_posix()


def _word_pattern(keys: frozenset[str]) -> re.Pattern[str] | None:
    if not keys:
        return None
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![\w.-])({alternatives})(?![\w-])")


def _text(file: Path, shown: str, pattern: re.Pattern[str]) -> Iterator[CodeReference]:
    try:
        if file.stat().st_size > MAX_TEXT_BYTES:
            return
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    for number, line in enumerate(text.splitlines(), start=1):
        for match in pattern.finditer(line):
            yield CodeReference(shown, number, Kind.TEXT, match.group(1))


def _python(file: Path, shown: str, known: frozenset[str]) -> Iterator[CodeReference]:
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return
    constants = _module_constants(tree)
    in_calls: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kind = _call_kind(node.func)
        if kind is None:
            continue
        argument = _key_argument(node, kind)
        key = _string(argument, constants)
        if key is not None and argument is not None:
            in_calls.add(id(argument))
            yield CodeReference(shown, node.lineno, kind, key)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in known
            and id(node) not in in_calls
        ):
            yield CodeReference(shown, node.lineno, Kind.LITERAL, node.value)


def _call_kind(func: ast.expr) -> str | None:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name == "experiment_branch":
        return Kind.BRANCH
    if name == "track" and isinstance(func, ast.Attribute):
        return Kind.TRACK
    if isinstance(func, ast.Attribute) and _EVALUATION.match(func.attr):
        return Kind.EVALUATION
    return None


_KEYWORDS = {
    Kind.BRANCH: "flag_key",
    Kind.EVALUATION: "flag_key",
    Kind.TRACK: "tracking_event_name",
}


def _key_argument(call: ast.Call, kind: str) -> ast.expr | None:
    if call.args:
        return call.args[0]
    for keyword in call.keywords:
        if keyword.arg == _KEYWORDS[kind]:
            return keyword.value
    return None


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "literal"`` assignments (how keys are usually named)."""
    constants: dict[str, str] = {}
    for statement in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = value.value
    return constants


def _string(node: ast.expr | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None
