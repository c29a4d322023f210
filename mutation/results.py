"""Read mutmut's verdicts for a module, match them with the checked-in explanations, tally.

A surviving mutant is either a gap in the tests or equivalent: no observable behaviour differs.
Equivalent ones are listed in ``mutation/equivalent.toml`` with the mutated line and the reason.
An explanation is checked against today's mutant: it must still exist, still survive, and still
make the same change; otherwise it is reported as stale (and fails the run), so the file never
excuses a mutant it no longer describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

from .scratch import ROOT, Module

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the dev environment runs 3.11+
    import tomli as tomllib

EQUIVALENT_FILE = ROOT / "mutation" / "equivalent.toml"
#: The kill rate a module must reach, not counting mutants explained as equivalent.
THRESHOLD = 0.90
#: Verdicts that mean a test noticed the mutant (a mutant that hangs the tests is caught).
DETECTED = frozenset({"killed", "timeout"})


@dataclass(frozen=True)
class Explanation:
    mutant: str
    line: str
    reason: str


@dataclass
class Tally:
    """One module's row of the table."""

    module: str
    statuses: Mapping[str, str]
    explained: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    seconds: float | None = None

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)

    @property
    def total(self) -> int:
        return len(self.statuses)

    @property
    def detected(self) -> int:
        return sum(1 for s in self.statuses.values() if s in DETECTED)

    @property
    def rate(self) -> float:
        """Detected over all mutants but those explained as equivalent."""
        considered = self.total - len(self.explained)
        return self.detected / considered if considered else 1.0

    @property
    def passes(self) -> bool:
        return self.total > 0 and self.rate >= THRESHOLD and not self.stale


def load_explanations(path: Path = EQUIVALENT_FILE) -> dict[str, Explanation]:
    raw = tomllib.loads(path.read_text("utf-8")).get("equivalent", [])
    explanations: dict[str, Explanation] = {}
    for entry in raw:
        explanation = Explanation(entry["mutant"], entry["line"], entry["reason"])
        if not explanation.reason.strip():
            raise SystemExit(f"{path.name}: {explanation.mutant} needs a reason")
        explanations[explanation.mutant] = explanation
    return explanations


def statuses(module: Module) -> dict[str, str]:
    """Each mutant of the module and mutmut's verdict (``killed``, ``survived``, ...)."""
    meta = module.scratch / "mutants" / (module.mutated_path + ".meta")
    if not meta.exists():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def mutated_lines(module: Module, mutant: str) -> list[str]:
    """The lines the mutant puts in place of the original (``+`` lines of its diff)."""
    with _inside(module.scratch):
        diff = get_diff_for_mutant(mutant, path=module.mutated_path)
    return [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]


def tally(module: Module, explanations: Mapping[str, Explanation]) -> Tally:
    result = Tally(module.name, statuses(module))
    for mutant, status in sorted(result.statuses.items()):
        explanation = explanations.get(mutant)
        if status in DETECTED:
            if explanation is not None:
                result.stale.append(f"{mutant}: explained as equivalent but now {status}")
            continue
        if explanation is None:
            result.unexplained.append(mutant)
        elif status != "survived":
            result.stale.append(f"{mutant}: explained as equivalent but {status}")
        elif not any(explanation.line.strip() in line for line in mutated_lines(module, mutant)):
            result.stale.append(
                f"{mutant}: the mutant changed; it no longer writes {explanation.line!r}"
            )
        else:
            result.explained.append(mutant)
    if result.statuses:
        for mutant in explanations:
            if module.owns(mutant) and mutant not in result.statuses:
                result.stale.append(f"{mutant}: explained as equivalent but no longer exists")
    return result


@contextlib.contextmanager
def _inside(directory: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)
