"""The clean-up list: which flags, branches and event names an experiment left behind.

Four findings, each with every code location to change:

- ``decided``: the audit's decision hint is ship or roll back; the experiment's branches, flag
  and outcome events (``track()`` names) are to go.
- ``one_variant``: a flag has served one variant to everyone for at least N days (switched
  off, or a default rule at 100 % with nothing else served): it is a constant now.
- ``missing_in_featbit``: code evaluates a flag key FeatBit does not have (a typo, or a flag
  already deleted whose code stayed).
- ``never_referenced``: an experiment flag that no code evaluates.

This module only compares what it is given; reading files and FeatBit happens elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..policy import UnitPolicy
from .code_scan import CodeReference, Kind
from .decisions import Decision
from .flag_facts import FlagFacts

__all__ = ["CleanupItem", "LifecycleReport", "build_report", "known_keys"]

DECIDED, ONE_VARIANT = "decided", "one_variant"
MISSING_IN_FEATBIT, NEVER_REFERENCED = "missing_in_featbit", "never_referenced"


@dataclass(frozen=True)
class CleanupItem:
    """One thing to clean up: a flag, why, its event names and every place to change."""

    kind: str
    flag_key: str
    reason: str
    references: tuple[CodeReference, ...] = ()
    event_names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "flag_key": self.flag_key,
            "reason": self.reason,
            "event_names": list(self.event_names),
            "references": [
                {"path": r.path, "line": r.line, "kind": r.kind, "key": r.key}
                for r in self.references
            ],
        }


@dataclass(frozen=True)
class LifecycleReport:
    """The clean-up list; ``exit_code`` is 1 when there is anything to clean up (for CI)."""

    items: tuple[CleanupItem, ...]
    as_of: datetime
    stale_days: float
    flags_checked: int = 0
    references_found: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        return 1 if self.items else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "stale_days": self.stale_days,
            "flags_checked": self.flags_checked,
            "references_found": self.references_found,
            "items": [item.to_json() for item in self.items],
            "notes": list(self.notes),
        }

    def render_text(self) -> str:
        lines = [
            f"{len(self.items)} to clean up ({self.flags_checked} flags, "
            f"{self.references_found} code references, stale after {self.stale_days:g} days)"
        ]
        for item in self.items:
            lines.append("")
            lines.append(f"{item.flag_key}  [{item.kind}]  {item.reason}")
            if item.event_names:
                lines.append(f"  event names: {', '.join(item.event_names)}")
            for ref in item.references:
                lines.append(f"  {ref.where()}  {ref.kind}  {ref.key}")
            if not item.references:
                lines.append("  no code location found")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines) + "\n"


def build_report(
    flags: Iterable[FlagFacts],
    references: Iterable[CodeReference],
    *,
    decisions: Iterable[Decision] = (),
    policy: UnitPolicy | None = None,
    stale_days: float = 30,
    now: datetime,
) -> LifecycleReport:
    """Compare flags, decisions and code references; every finding with its locations."""
    decisions = list(decisions)
    by_key = {f.key: f for f in flags}
    refs = list(references)
    refs_of: dict[str, list[CodeReference]] = {}
    for ref in refs:
        refs_of.setdefault(ref.key, []).append(ref)
    events = _event_names(decisions, policy)
    items: list[CleanupItem] = []
    done: set[str] = set()
    for decision in decisions:
        if not decision.decided:
            continue
        names = events.get(decision.experiment_key, ())
        for key in decision.flag_keys:
            reason = f"audit decided {decision.action}" + (
                f": {decision.reason}" if decision.reason else ""
            )
            found = [*refs_of.get(key, ()), *(r for n in names for r in refs_of.get(n, ()))]
            items.append(CleanupItem(DECIDED, key, reason, tuple(sorted(set(found))), names))
            done.add(key)
    for facts in by_key.values():
        days = facts.days_unchanged(now)
        if facts.key in done or len(facts.served) != 1 or days is None or days < stale_days:
            continue
        state = "on" if facts.enabled else "off"
        reason = (
            f"serves {facts.served[0]!r} to everyone (flag {state}), unchanged for {days:.0f} days"
        )
        items.append(CleanupItem(ONE_VARIANT, facts.key, reason, tuple(refs_of.get(facts.key, ()))))
    evaluated = {r.key for r in refs if r.kind in Kind.USES}
    for key in sorted(evaluated - set(by_key)):
        reason = "evaluated in code but FeatBit has no such flag (callers get their default)"
        items.append(CleanupItem(MISSING_IN_FEATBIT, key, reason, tuple(refs_of[key])))
    declared = set(policy.experiments) if policy is not None else set()
    for facts in by_key.values():
        is_experiment = facts.unit_tagged or facts.key in declared
        if is_experiment and facts.key not in evaluated:
            reason = "experiment flag that no code evaluates"
            items.append(
                CleanupItem(NEVER_REFERENCED, facts.key, reason, tuple(refs_of.get(facts.key, ())))
            )
    return LifecycleReport(
        tuple(items), now, stale_days, flags_checked=len(by_key), references_found=len(refs)
    )


def _event_names(
    decisions: Iterable[Decision], policy: UnitPolicy | None
) -> Mapping[str, tuple[str, ...]]:
    """Outcome event names by experiment key: the audit's metrics and the policy's."""
    names: dict[str, dict[str, None]] = {}
    for decision in decisions:
        names.setdefault(decision.experiment_key, {}).update(dict.fromkeys(decision.metrics))
    if policy is not None:
        for metric in policy.metrics.values():
            for experiment in metric.experiments:
                names.setdefault(experiment, {})[metric.name] = None
    return {key: tuple(found) for key, found in names.items()}


def known_keys(
    flags: Iterable[FlagFacts], decisions: Iterable[Decision], policy: UnitPolicy | None
) -> set[str]:
    """Every key worth finding in text: flag keys, decided flags and event names."""
    decisions = list(decisions)
    keys = {f.key for f in flags}
    for decision in decisions:
        keys.update(decision.flag_keys)
        keys.update(decision.metrics)
    if policy is not None:
        keys.update(policy.experiments)
        keys.update(policy.metrics)
    return keys
