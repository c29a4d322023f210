"""Builders for FeatBit flag JSON in the wire format the SDK and the test server speak.

Tests describe flags in a few words; these functions spell out every field each SDK version
needs (see shared research: missing ``exptRollout`` and friends break 1.1.x evaluation), shaped
as FeatBit's evaluation server sends them (``RowSerializer.cs``): a GUID ``envId``, named
variations, rollouts that end at exactly 1 and ``updatedAt`` with PostgreSQL's microseconds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

#: The environment the fixtures' flags belong to (the test server's default env secret names it).
ENV_ID = uuid.UUID("8d7a0c4e-5b1f-4e2a-9c3d-2f6e1a7b9c01")

_EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
#: Past each version's second: fbclient rounds this to .123 ms, below what the server holds.
_MICROSECONDS = 123_456


def timestamp(version: int) -> str:
    """An ISO-8601 ``updatedAt`` that grows with ``version`` (FeatBit's entity version), with
    microseconds as FeatBit on PostgreSQL writes it."""
    moment = _EPOCH + timedelta(seconds=version, microseconds=_MICROSECONDS)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def rollout(weights: Mapping[str, float], *, expt_rollout: float = 1) -> list[dict[str, Any]]:
    """Percentage rollout over variation ids, e.g. ``{"v-a": 0.5, "v-b": 0.5}``.

    Weights that add up to 1 end at exactly 1, as FeatBit stores them (fbclient's ``[0, 1]``
    and ``lo <= p < hi`` tests would otherwise leave a sliver of users unserved).
    """
    out: list[dict[str, Any]] = []
    low = 0.0
    items = list(weights.items())
    ends_at_one = abs(sum(weights.values()) - 1) < 1e-9
    for index, (variation_id, weight) in enumerate(items):
        last = index == len(items) - 1
        high = 1.0 if last and ends_at_one else min(1.0, low + weight)
        out.append({"id": variation_id, "rollout": [low, high], "exptRollout": expt_rollout})
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
    included_in_expt: bool = True,
    expt_include_all_targets: bool = True,
    expt_rollout: float = 1,
) -> dict[str, Any]:
    """One flag. The fallthrough splits evenly over ``values``; ``serve=i`` serves one.

    Variations are named after their values unless ``names`` says otherwise (FeatBit requires
    a name). ``included_in_expt``, ``expt_include_all_targets`` and ``expt_rollout`` set the
    fallthrough's experiment fields.
    """
    ids = list(variation_ids or [f"{key}-v{i}" for i in range(len(values))])
    labels = list(names) if names is not None else [wire_value(v) for v in values]
    variations = [
        {"id": ids[i], "name": labels[i], "value": wire_value(value)}
        for i, value in enumerate(values)
    ]
    if serve is not None:
        fallthrough_variations = [
            {"id": ids[serve], "rollout": [0, 1], "exptRollout": expt_rollout}
        ]
    else:
        share = list(weights or [1 / len(values)] * len(values))
        fallthrough_variations = rollout(
            dict(zip(ids, share, strict=True)), expt_rollout=expt_rollout
        )
    return {
        "id": str(uuid.uuid5(ENV_ID, key)),
        "envId": str(ENV_ID),
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
            "includedInExpt": included_in_expt,
            "variations": fallthrough_variations,
        },
        "exptIncludeAllTargets": expt_include_all_targets,
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
    included_in_expt: bool = True,
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": rule_id,
        "dispatchKey": dispatch_key,
        "includedInExpt": included_in_expt,
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
