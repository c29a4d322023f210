"""Attributes guardrail events to experiment runs: by experiment key and run id when given; by
experiment key alone when that experiment has one run; by flag key when one run uses that
flag. A guardrail that fits no single run is reported as unattributed, never dropped.

An experiment known only from guardrails (every evaluation refused) still gets a run, so its
refusals are audited.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from .tallies import GuardrailTally, RunKey, RunTallies

__all__ = ["attribute_guardrails"]


def attribute_guardrails(
    runs: MutableMapping[RunKey, RunTallies], tallies: Iterable[GuardrailTally]
) -> tuple[dict[RunKey, list[GuardrailTally]], dict[str, int]]:
    """Guardrail tallies per run, and occurrences per name that fit no single run."""
    tallies = list(tallies)
    for tally in tallies:
        key, run_id = tally.experiment_key, tally.run_id
        if key is not None and run_id is not None:
            runs.setdefault((key, run_id), RunTallies(key, run_id))
        elif key is not None and not any(k == key for k, _ in runs):
            runs[(key, "")] = RunTallies(key, "")
    by_run: dict[RunKey, list[GuardrailTally]] = {}
    unattributed: dict[str, int] = {}
    for tally in tallies:
        if tally.experiment_key is not None:
            candidates = [
                rk for rk in runs if rk[0] == tally.experiment_key and tally.run_id in (None, rk[1])
            ]
        elif tally.flag_key is not None:
            candidates = [rk for rk, run in runs.items() if tally.flag_key in run.flag_keys]
        else:
            candidates = []
        if len(candidates) == 1:
            by_run.setdefault(candidates[0], []).append(tally)
        else:
            unattributed[tally.name] = unattributed.get(tally.name, 0) + tally.events
    return by_run, unattributed
