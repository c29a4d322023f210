"""FeatBit's rule for whether an evaluation counts in the flag's experiment (``sendToExperiment``).

FeatBit's experiment analysis reads only the flag insights sent with ``sendToExperiment: true``
(the evaluation server stores the field as ``tag_2``; a missing field is ``false``). The server
SDKs decide it at evaluation time; fb-python-sdk 1.2.1 stopped doing so, so this module decides
it the way FeatBit's other server SDKs do (read in featbit-dotnet-sdk ``Evaluator.cs``,
featbit-go-sdk and fb-python-sdk 1.2.0 ``evaluator.py``, which agree):

* flag off: not in the experiment;
* individually targeted: in it exactly when the flag's ``exptIncludeAllTargets`` is set;
* matched rule or fallthrough: in it when ``exptIncludeAllTargets`` is set; otherwise only if
  that rollout's ``includedInExpt`` is set, and then a share ``exptRollout / width`` of the
  served variation's bucket (capped at 1) is in, chosen by hashing ``"expt" + dispatch key``
  with FeatBit's own bucketing.

It decides, nothing more: the hashing, the rule matching and the user's attribute lookup are
passed in (``_sdk`` hands over fbclient's own), so bucketing keeps a single source of truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: FeatBit's reason strings for the three ways an evaluation succeeds with a rollout or target.
FLAG_OFF = "flag off"
TARGET_MATCH = "target match"
RULE_MATCH = "rule match"
FALLTHROUGH = "fall through all rules"

#: What FeatBit's SDKs prefix the dispatch key with to draw the experiment sample.
EXPERIMENT_KEY_PREFIX = "expt"

InRollout = Callable[[str, Sequence[float]], bool]
RuleMatches = Callable[[Mapping[str, Any]], bool]
AttributeOf = Callable[[str], str]


def sent_to_experiment(
    flag: Mapping[str, Any],
    reason: str,
    variation_id: str,
    *,
    attribute_of: AttributeOf,
    rule_matches: RuleMatches,
    in_rollout: InRollout,
) -> bool:
    """Whether FeatBit's SDKs would send this evaluation to the flag's experiment.

    Args:
        flag: The flag exactly as it was evaluated.
        reason: FeatBit's reason for the result.
        variation_id: The variation served.
        attribute_of: The user's value for an attribute, resolved as fbclient resolves it
            (``""`` when missing).
        rule_matches: Whether a rule's conditions all match the user.
        in_rollout: FeatBit's bucketing: whether a key falls in a ``[low, high]`` range.
    """
    include_all_targets = flag.get("exptIncludeAllTargets") is True
    if reason == TARGET_MATCH:
        return include_all_targets
    if reason == RULE_MATCH:
        rollouts = next((r for r in flag.get("rules") or () if rule_matches(r)), None)
    elif reason == FALLTHROUGH:
        rollouts = flag.get("fallthrough")
    else:  # flag off, or a reason this rule does not know
        return False
    if include_all_targets:
        return True
    if not rollouts or rollouts.get("includedInExpt") is not True:
        return False
    dispatch_key = str(flag.get("key", "")) + attribute_of(rollouts.get("dispatchKey") or "keyid")
    served = next(
        (v for v in rollouts.get("variations") or () if in_rollout(dispatch_key, _range(v))),
        None,
    )
    bounds = _range(served) if served is not None else []
    if served is None or len(bounds) != 2 or str(served.get("id")) != variation_id:
        return False
    width, share = bounds[1] - bounds[0], _number(served.get("exptRollout"))
    if width <= 0 or share <= 0:
        return False
    return in_rollout(EXPERIMENT_KEY_PREFIX + dispatch_key, [0.0, min(1.0, share / width)])


def _range(variation: Mapping[str, Any]) -> list[float]:
    """A rollout's ``[low, high]``; empty (matching nothing) when malformed."""
    rollout = variation.get("rollout")
    if not isinstance(rollout, Sequence) or len(rollout) != 2:
        return []
    return [_number(rollout[0]), _number(rollout[1])]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)
