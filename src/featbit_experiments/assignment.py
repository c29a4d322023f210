"""What an experiment evaluation served, in the terms every downstream record shares.

An :class:`Assignment` is built once per experiment evaluation and handed to whatever records
or remembers assignments (exposure events, spans, the assignment ledger), so they all carry the
same experiment key, unit, unit ID and variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .policy import Experiment
from .units import UnitKey


@dataclass(frozen=True)
class Assignment:
    """One experiment evaluation that served a variant.

    Args:
        experiment: The experiment declaration in force.
        unit_key: The unit's ID and where it was read from.
        variation_id: FeatBit's variation id.
        variant: The readable variant name.
        value: The value served.
        reason: The OpenFeature reason.
        flag_version: FeatBit's flag version (``updatedAt`` in epoch milliseconds).
        other_ids: The other unit IDs known in the context, by canonical attribute name.
    """

    experiment: Experiment
    unit_key: UnitKey
    variation_id: str
    variant: str
    value: Any
    reason: str
    flag_version: int
    other_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def flag_key(self) -> str:
        return self.experiment.flag_key

    @property
    def experiment_key(self) -> str:
        return self.experiment.experiment_key

    @property
    def unit(self) -> str:
        return self.unit_key.unit
