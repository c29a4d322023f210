"""Read the audit's decisions from the JSON that ``featbit-experiments audit --json`` writes.

The lifecycle command consumes the audit's output file, not its internals, and relies on these
fields only:

- ``experiments``: a list, one object per experiment run, each with
- ``experiment_key`` (string) and ``decision.action`` (the decision hint's name: ``continue``,
  ``pause``, ``roll_back``, ``segment``, ``ship`` or ``redesign``);
- optionally ``flag_keys`` (list of strings; the experiment key stands for the flag key when
  absent), ``decision.reason`` (shown as is) and ``metrics[].metric`` (the metric names, whose
  ``track()`` calls belong to the experiment).

Anything else in the file is ignored; a file without these fields is an error naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["DECIDED", "Decision", "read_decisions"]

#: Decision hints that end an experiment: its branches and flag are to be cleaned up.
DECIDED = frozenset({"ship", "roll_back"})


@dataclass(frozen=True)
class Decision:
    """The audit's decision hint for one experiment."""

    experiment_key: str
    flag_keys: tuple[str, ...]
    action: str
    reason: str
    metrics: tuple[str, ...]

    @property
    def decided(self) -> bool:
        return self.action in DECIDED


def read_decisions(path: str | Path) -> list[Decision]:
    """The decisions in an audit JSON file; ConfigurationError names the file and field."""
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{file}: audit JSON not found") from None
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"{file}: not readable audit JSON: {error}") from error
    experiments = raw.get("experiments") if isinstance(raw, dict) else None
    if not isinstance(experiments, list):
        raise ConfigurationError(
            f"{file}: no 'experiments' list; expected the output of "
            "`featbit-experiments audit --json`"
        )
    return [_decision(file, index, item) for index, item in enumerate(experiments)]


def _decision(file: Path, index: int, item: Any) -> Decision:
    key = item.get("experiment_key") if isinstance(item, dict) else None
    decision = item.get("decision") if isinstance(item, dict) else None
    action = decision.get("action") if isinstance(decision, dict) else None
    if not isinstance(key, str) or not isinstance(action, str):
        raise ConfigurationError(
            f"{file}: experiments[{index}] lacks 'experiment_key' or 'decision.action'"
        )
    flags = item.get("flag_keys")
    metrics = item.get("metrics")
    return Decision(
        experiment_key=key,
        flag_keys=tuple(str(f) for f in flags) if isinstance(flags, list) and flags else (key,),
        action=action,
        reason=str(decision.get("reason") or "") if isinstance(decision, dict) else "",
        metrics=tuple(str(m["metric"]) for m in metrics if isinstance(m, dict) and "metric" in m)
        if isinstance(metrics, list)
        else (),
    )
