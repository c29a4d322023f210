"""Check one FeatBit flag (the wire format of ``data-sync``) the way FeatBit itself would.

Offline data written by hand or by :mod:`featbit_experiments.flag_builder` must be data FeatBit
could hold, or a test passes against a flag no FeatBit environment can have. The rules come
from FeatBit's own checks (featbit/featbit ``modules/back-end``:
``CreateFeatureFlagValidator``, ``Variation.IsValid``, ``FeatureFlag.KeyPattern``,
``VariationTypes``; and the targeting page's checks in ``modules/front-end``: a default rule
that is not empty, rollouts that sum to 100 %, rules with conditions), plus what the SDKs need
to serve a value: ids that resolve and values that parse as the flag's type.

This module only reads and reports; it never repairs a flag.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .errors import ConfigurationError

__all__ = ["FlagDataError", "flag_problems", "validate_flag"]

KEY_PATTERN = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_KEY_LENGTH = MAX_NAME_LENGTH = 128
VARIATION_TYPES = frozenset({"boolean", "json", "number", "string"})
#: FeatBit's rule operators (``Domain/Targeting/OperatorTypes.cs``).
OPERATORS = frozenset(
    {
        "LessThan", "BiggerThan", "LessEqualThan", "BiggerEqualThan", "Equal", "NotEqual",
        "Contains", "NotContain", "StartsWith", "EndsWith", "MatchRegex", "NotMatchRegex",
        "IsOneOf", "NotOneOf", "IsTrue", "IsFalse",
    }
)  # fmt: skip
MULTI_VALUE_OPERATORS = frozenset({"IsOneOf", "NotOneOf"})
NO_VALUE_OPERATORS = frozenset({"IsTrue", "IsFalse"})
SEGMENT_PROPERTIES = frozenset({"User is in segment", "User is not in segment"})
_TOLERANCE = 1e-9


class FlagDataError(ConfigurationError):
    """Flag data that FeatBit would refuse; the message lists every problem found."""


def validate_flag(flag: Mapping[str, Any]) -> None:
    """Raise :class:`FlagDataError` listing every problem of ``flag``; return when none."""
    problems = flag_problems(flag)
    if problems:
        label = flag.get("key") if isinstance(flag, Mapping) else None
        raise FlagDataError(f"flag {label!r}: " + "; ".join(problems))


def flag_problems(flag: Mapping[str, Any]) -> list[str]:
    """Every reason FeatBit would refuse ``flag`` (empty when it would accept it)."""
    if not isinstance(flag, Mapping):
        return ["is not a JSON object"]
    problems: list[str] = []
    _check_key_and_name(flag, problems)
    variation_type = flag.get("variationType")
    if variation_type not in VARIATION_TYPES:
        problems.append(
            f"variationType {variation_type!r} is not one of {', '.join(sorted(VARIATION_TYPES))}"
        )
    ids = _check_variations(flag.get("variations"), variation_type, problems)
    if not isinstance(flag.get("isEnabled"), bool):
        problems.append("isEnabled must be true or false")
    if flag.get("disabledVariationId") not in ids:
        problems.append(f"disabledVariationId {flag.get('disabledVariationId')!r} is no variation")
    fallthrough = flag.get("fallthrough")
    if not isinstance(fallthrough, Mapping):
        problems.append("fallthrough (the default rule) is missing")
    else:
        _check_served(fallthrough.get("variations"), ids, "fallthrough", problems)
    _check_rules(flag.get("rules", []), ids, problems)
    _check_targets(flag.get("targetUsers", []), ids, problems)
    tags = flag.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append("tags must be a list of strings")
    _check_updated_at(flag.get("updatedAt"), problems)
    return problems


def _check_key_and_name(flag: Mapping[str, Any], problems: list[str]) -> None:
    key, name = flag.get("key"), flag.get("name")
    if not isinstance(key, str) or not key:
        problems.append("key is required")
    elif len(key) > MAX_KEY_LENGTH or not KEY_PATTERN.match(key):
        problems.append(f"key {key!r} must be 1-{MAX_KEY_LENGTH} letters, digits, '.', '_' or '-'")
    if not isinstance(name, str) or not name.strip():
        problems.append("name is required")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"name is longer than {MAX_NAME_LENGTH} characters")
    if not isinstance(flag.get("id"), str) or not flag.get("id"):
        problems.append("id is required")


def _check_variations(variations: Any, variation_type: Any, problems: list[str]) -> set[str]:
    if not isinstance(variations, list) or not variations:
        problems.append("variations must be a non-empty list")
        return set()
    ids: set[str] = set()
    for index, variation in enumerate(variations):
        where = f"variations[{index}]"
        if not isinstance(variation, Mapping):
            problems.append(f"{where} is not an object")
            continue
        variation_id, name = variation.get("id"), variation.get("name")
        if not isinstance(variation_id, str) or not variation_id.strip():
            problems.append(f"{where} needs an id")
        elif variation_id in ids:
            problems.append(f"variation id {variation_id!r} appears twice")
        else:
            ids.add(variation_id)
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where} ({variation_id!r}) needs a name")
        value = variation.get("value")
        if not isinstance(value, str):
            problems.append(f"{where} ({name!r}): value must be a string on the wire")
        elif variation_type in VARIATION_TYPES and not _parses(value, variation_type):
            problems.append(f"{where} ({name!r}): value {value!r} is not a {variation_type}")
    return ids


def _parses(value: str, variation_type: str) -> bool:
    if variation_type == "boolean":
        return value in ("true", "false")
    if variation_type == "number":
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    if variation_type == "json":
        try:
            json.loads(value)
        except ValueError:
            return False
    return True


def _check_served(served: Any, ids: set[str], where: str, problems: list[str]) -> None:
    """A rollout: variations that exist, with ranges that cover [0, 1] exactly once."""
    if not isinstance(served, list) or not served:
        problems.append(f"{where} serves no variation")
        return
    ranges: list[tuple[float, float]] = []
    for item in served:
        if not isinstance(item, Mapping):
            problems.append(f"{where}: a served variation is not an object")
            return
        if item.get("id") not in ids:
            problems.append(f"{where} serves unknown variation {item.get('id')!r}")
        bounds: Any = item.get("rollout")
        if not _is_range(bounds):
            problems.append(f"{where}: rollout {bounds!r} is not a [low, high] range in [0, 1]")
            return
        expt = item.get("exptRollout", 1)
        if not _is_number(expt) or not 0 <= expt <= 1:
            problems.append(f"{where}: exptRollout {expt!r} is not in [0, 1]")
        ranges.append((float(bounds[0]), float(bounds[1])))
    ranges.sort()
    edge = 0.0
    for low, high in ranges:
        if abs(low - edge) > _TOLERANCE:
            problems.append(
                f"{where}: rollouts must cover [0, 1] exactly (sum to 100 %); "
                f"{'gap' if low > edge else 'overlap'} at {edge:g}"
            )
            return
        edge = high
    if abs(edge - 1.0) > _TOLERANCE:
        problems.append(f"{where}: rollouts cover [0, {edge:g}], not [0, 1] (sum to 100 %)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_range(bounds: Any) -> bool:
    return (
        isinstance(bounds, Sequence)
        and len(bounds) == 2
        and all(_is_number(b) for b in bounds)
        and 0 <= bounds[0] <= bounds[1] <= 1
    )


def _check_rules(rules: Any, ids: set[str], problems: list[str]) -> None:
    if not isinstance(rules, list):
        problems.append("rules must be a list")
        return
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            problems.append(f"rules[{index}] is not an object")
            continue
        rule_id = rule.get("id")
        where = f"rule {rule.get('name') or rule_id or index!r}"
        if not isinstance(rule_id, str) or not rule_id:
            problems.append(f"{where} needs an id")
        elif rule_id in seen:
            problems.append(f"rule id {rule_id!r} appears twice")
        else:
            seen.add(rule_id)
        conditions = rule.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            problems.append(f"{where} has no conditions")
        else:
            for condition in conditions:
                _check_condition(condition, where, problems)
        _check_served(rule.get("variations"), ids, where, problems)


def _check_condition(condition: Any, where: str, problems: list[str]) -> None:
    if not isinstance(condition, Mapping):
        problems.append(f"{where}: a condition is not an object")
        return
    prop, op, value = condition.get("property"), condition.get("op"), condition.get("value")
    if not isinstance(prop, str) or not prop:
        problems.append(f"{where}: a condition has no property")
        return
    if prop in SEGMENT_PROPERTIES:
        if not _json_list(value):
            problems.append(f"{where}: segment condition needs a JSON list of segment ids")
        return
    if op not in OPERATORS:
        problems.append(f"{where}: condition on {prop!r} has unknown operator {op!r}")
    elif op in MULTI_VALUE_OPERATORS:
        if not _json_list(value):
            problems.append(f"{where}: {op} on {prop!r} needs a non-empty JSON list of values")
    elif op not in NO_VALUE_OPERATORS and (not isinstance(value, str) or value == ""):
        problems.append(f"{where}: {op} on {prop!r} needs a value")


def _json_list(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = json.loads(value)
    except ValueError:
        return False
    return isinstance(parsed, list) and bool(parsed)


def _check_targets(targets: Any, ids: set[str], problems: list[str]) -> None:
    if not isinstance(targets, list):
        problems.append("targetUsers must be a list")
        return
    for target in targets:
        if not isinstance(target, Mapping) or target.get("variationId") not in ids:
            variation = target.get("variationId") if isinstance(target, Mapping) else None
            problems.append(f"targetUsers serve unknown variation {variation!r}")
            continue
        keys = target.get("keyIds")
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            problems.append("targetUsers keyIds must be a list of user keys")


def _check_updated_at(value: Any, problems: list[str]) -> None:
    if not isinstance(value, str):
        problems.append("updatedAt must be an ISO-8601 timestamp")
        return
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"updatedAt {value!r} is not an ISO-8601 timestamp")
