"""Stable IDs, measured in a pilot: the share of an experiment's evaluations refused because
the unit's ID was missing or invalid, per source (the seed's last checklist question: "do you
have a stable ID?").

Exposures are recorded once per unit and variant, so the refused share is taken over refusals
plus exposures: an upper bound on the share of evaluations (a unit evaluated many times counts
once), which is the safe side for a warning.
"""

from __future__ import annotations

from .model import Finding, Rule, Severity
from .pilot import PilotStats
from .subject import Subject

__all__ = ["ERROR_SHARE", "WARNING_SHARE", "stable_id_findings"]

#: Refused shares from which the report warns, and from which it calls the ID unusable.
WARNING_SHARE = 0.01
ERROR_SHARE = 0.10


def stable_id_findings(subject: Subject, pilot: PilotStats | None) -> list[Finding]:
    if pilot is None:
        return []
    unit = subject.unit.name
    total = pilot.refused + pilot.exposures
    if total == 0:
        return [
            Finding(
                Severity.NOTE,
                Rule.PILOT_LOG,
                "the pilot log has no evaluation of this experiment: stable IDs not measured",
            )
        ]
    share = pilot.refused / total
    by_source = "; ".join(
        f"{source}: {count} ({count / total:.1%})"
        for source, count in sorted(pilot.refused_by_source.items(), key=lambda kv: -kv[1])
    )
    summary = (
        f"{pilot.refused} evaluation(s) refused for a missing or invalid {unit} ID against "
        f"{pilot.exposures} exposure(s): at most {share:.1%}"
        + (f" (by source: {by_source})" if by_source else "")
    )
    if share >= ERROR_SHARE:
        return [
            Finding(
                Severity.ERROR,
                Rule.STABLE_IDS,
                f"{summary}; the {unit} ID is not reliable enough to randomize on: fix the "
                "sources above or choose a unit with a stable ID",
            )
        ]
    if share >= WARNING_SHARE:
        return [
            Finding(
                Severity.WARNING,
                Rule.STABLE_IDS,
                f"{summary}; those units get the default and are left out of the experiment",
            )
        ]
    return [Finding(Severity.OK, Rule.STABLE_IDS, summary)]
