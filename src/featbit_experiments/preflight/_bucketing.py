"""Bucketing alignment: FeatBit splits traffic on the experiment's unit, individual targeting
can still match, and every variation a unit can be given maps to a branch the code routes.

The dispatch-key rule is the resolver's own (:meth:`FlagView.dispatch_mismatches`), called here
rather than restated, so the preflight refuses exactly what evaluation refuses.
"""

from __future__ import annotations

from ..flag_view import KEY_DISPATCH, Rollout
from ..units import StandardUnit
from .model import Finding, Rule, Severity
from .subject import Subject, served_variation_ids, targeted_keys

__all__ = ["bucketing_findings"]


def bucketing_findings(subject: Subject) -> list[Finding]:
    return [
        *_dispatch(subject),
        *_targeting(subject),
        *_variations(subject),
    ]


def _dispatch(subject: Subject) -> list[Finding]:
    unit = subject.unit
    mismatches = subject.view.dispatch_mismatches(unit.attribute_names)
    if mismatches:
        return [
            Finding(
                Severity.ERROR,
                Rule.DISPATCH_KEY,
                f"{rollout.where} buckets on {rollout.dispatch_key!r}, not the {unit.name} ID "
                f"({unit.attribute}): every evaluation is refused (dispatch_key_mismatch) "
                "until the rollout buckets on the unit",
            )
            for rollout in mismatches
        ]
    splits = subject.view.splits
    if not splits:
        return [
            Finding(
                Severity.NOTE,
                Rule.TRAFFIC_SPLIT,
                f"no rule or fallthrough splits traffic yet: every {unit.name} gets the same "
                "variation until the rollout is set",
            )
        ]
    described = "; ".join(f"{r.where} on {_bucket(r, unit.name)}" for r in splits)
    return [Finding(Severity.OK, Rule.DISPATCH_KEY, f"splits traffic by {unit.name}: {described}")]


def _bucket(rollout: Rollout, unit: str) -> str:
    dispatch = rollout.dispatch_key or ""
    if dispatch.lower() in KEY_DISPATCH:
        return f"the FeatBit key (the {unit} ID)"
    return f"attribute {dispatch} (the {unit} ID)"


def _targeting(subject: Subject) -> list[Finding]:
    keys = targeted_keys(subject.flag)
    if not keys or subject.unit.name == StandardUnit.USER:
        return []
    unit = subject.unit.name
    return [
        Finding(
            Severity.WARNING,
            Rule.INDIVIDUAL_TARGETING,
            f"individual targeting lists {keys} key(s), which FeatBit matches against the "
            f"{unit} ID here, so user keys never match: target people with a rule on the "
            "userId attribute instead",
        )
    ]


def _variations(subject: Subject) -> list[Finding]:
    served = sorted(served_variation_ids(subject.flag))
    named = subject.experiment.variant_names
    findings: list[Finding] = []
    if named:
        raw = subject.view.raw_values
        unnamed = [v for v in served if v not in named and raw.get(v) not in named]
        findings += [
            Finding(
                Severity.WARNING,
                Rule.VARIATIONS_MAPPED,
                f"variation {v!r} is served but the policy's variants do not name it",
            )
            for v in unnamed
        ]
    branches = subject.plan.branches
    if branches:
        findings += [
            Finding(
                Severity.WARNING,
                Rule.VARIATIONS_MAPPED,
                f"variation {subject.variant_of(v)!r} is served but the code routes no branch "
                "for it: units given it run the router's default",
            )
            for v in served
            if subject.variant_of(v) not in branches
        ]
    if branches and not findings:
        variants = ", ".join(sorted({subject.variant_of(v) for v in served}))
        findings.append(
            Finding(
                Severity.OK,
                Rule.VARIATIONS_MAPPED,
                f"every served variation has a branch: {variants}",
            )
        )
    return findings
