"""Builders for FeatBit flag JSON in the wire format the SDK and the test server speak.

Tests describe flags in a few words; these functions spell out every field each SDK version
needs (see shared research: missing ``exptRollout`` and friends break 1.1.x evaluation).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

_EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


def timestamp(version: int) -> str:
    """An ISO-8601 ``updatedAt`` that grows with ``version`` (FeatBit's entity version)."""
    return (_EPOCH + timedelta(seconds=version)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def variation_type_of(values: Sequence[Any]) -> str:
    first = values[0]
    if isinstance(first, bool):
        return "boolean"
    if isinstance(first, (int, float)):
        return "number"
    if isinstance(first, (dict, list)):
        return "json"
    return "string"


def wire_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def rollout(weights: Mapping[str, float]) -> list[dict[str, Any]]:
    """Percentage rollout over variation ids, e.g. ``{"v-a": 0.5, "v-b": 0.5}``."""
    out: list[dict[str, Any]] = []
    low = 0.0
    for variation_id, weight in weights.items():
        high = min(1.0, low + weight)
        out.append({"id": variation_id, "rollout": [low, high], "exptRollout": 1})
        low = high
    return out


def flag(
    key: str,
    values: Sequence[Any],
    *,
    variation_ids: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    serve: int | None = None,
    dispatch_key: str | None = None,
    enabled: bool = True,
    off_index: int = 0,
    tags: Iterable[str] = (),
    rules: Sequence[Mapping[str, Any]] = (),
    targets: Sequence[Mapping[str, Any]] = (),
    version: int = 1,
    variation_type: str | None = None,
) -> dict[str, Any]:
    """One flag. The fallthrough splits evenly over ``values``; ``serve=i`` serves one."""
    ids = list(variation_ids or [f"{key}-v{i}" for i in range(len(values))])
    variations: list[dict[str, Any]] = []
    for i, value in enumerate(values):
        item: dict[str, Any] = {"id": ids[i], "value": wire_value(value)}
        if names is not None:
            item["name"] = names[i]
        variations.append(item)
    if serve is not None:
        fallthrough_variations = [{"id": ids[serve], "rollout": [0, 1], "exptRollout": 1}]
    else:
        share = list(weights or [1 / len(values)] * len(values))
        fallthrough_variations = rollout(dict(zip(ids, share, strict=True)))
    return {
        "id": f"id-{key}",
        "envId": "env-test",
        "key": key,
        "name": key,
        "variationType": variation_type or variation_type_of(values),
        "variations": variations,
        "targetUsers": list(targets),
        "rules": list(rules),
        "isEnabled": enabled,
        "disabledVariationId": ids[off_index],
        "fallthrough": {
            "dispatchKey": dispatch_key,
            "includedInExpt": True,
            "variations": fallthrough_variations,
        },
        "exptIncludeAllTargets": True,
        "tags": list(tags),
        "isArchived": False,
        "updatedAt": timestamp(version),
    }


def rule(
    conditions: Sequence[Mapping[str, Any]],
    variations: list[dict[str, Any]],
    *,
    dispatch_key: str | None = None,
    rule_id: str = "rule-1",
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": rule_id,
        "dispatchKey": dispatch_key,
        "includedInExpt": True,
        "conditions": list(conditions),
        "variations": variations,
    }


def condition(prop: str, op: str, value: Any) -> dict[str, Any]:
    return {
        "property": prop,
        "op": op,
        "value": value if isinstance(value, str) else json.dumps(value),
    }


def serve(variation_id: str) -> list[dict[str, Any]]:
    return [{"id": variation_id, "rollout": [0, 1], "exptRollout": 1}]


def data_sync(
    flags: Sequence[Mapping[str, Any]],
    segments: Sequence[Mapping[str, Any]] = (),
    *,
    event_type: str = "full",
) -> dict[str, Any]:
    """The ``data-sync`` envelope FeatBit sends over the stream and ``latest-all`` returns."""
    return {
        "messageType": "data-sync",
        "data": {"eventType": event_type, "featureFlags": list(flags), "segments": list(segments)},
    }


def bootstrap_json(
    flags: Sequence[Mapping[str, Any]], segments: Sequence[Mapping[str, Any]] = ()
) -> str:
    return json.dumps(data_sync(flags, segments))
