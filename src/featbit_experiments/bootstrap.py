"""Offline FeatBit data: read and check a bootstrap file in FeatBit's ``data-sync`` format.

The file is what FeatBit's ``latest-all`` endpoint returns (or what its stream sends first):
``{"messageType": "data-sync", "data": {"eventType": "full", "featureFlags": [...],
"segments": [...]}}``. A bare ``{"featureFlags": [...], "segments": [...]}`` is accepted too.
Every problem is a :class:`BootstrapError` naming the file, raised at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import BootstrapError

_REQUIRED_FLAG_FIELDS = (
    "id",
    "key",
    "variationType",
    "variations",
    "isEnabled",
    "disabledVariationId",
    "fallthrough",
    "updatedAt",
)


def read_bootstrap(path: str | Path) -> str:
    """The checked ``data-sync`` envelope from ``path``, as the JSON string fbclient takes."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BootstrapError(f"{file}: bootstrap file not found") from None
    except OSError as error:
        raise BootstrapError(f"{file}: cannot read bootstrap file: {error}") from error
    return checked_bootstrap(text, source=str(file))


def checked_bootstrap(text: str, *, source: str = "bootstrap") -> str:
    """Check a bootstrap document and return it as a ``data-sync`` envelope string."""
    if not text.strip():
        raise BootstrapError(f"{source}: bootstrap file is empty")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise BootstrapError(
            f"{source}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from error
    envelope = _envelope(raw, source)
    data = envelope["data"]
    flags = data.get("featureFlags")
    segments = data.get("segments", [])
    if not isinstance(flags, list) or not isinstance(segments, list):
        raise BootstrapError(f"{source}: data.featureFlags and data.segments must be lists")
    if not flags:
        raise BootstrapError(f"{source}: bootstrap has no feature flags")
    seen: set[str] = set()
    for index, flag in enumerate(flags):
        _check_flag(flag, index, source)
        _fill_defaults(flag)
        if flag["key"] in seen:
            raise BootstrapError(f"{source}: flag {flag['key']!r} appears twice")
        seen.add(flag["key"])
    for index, segment in enumerate(segments):
        if not isinstance(segment, Mapping) or "id" not in segment or "updatedAt" not in segment:
            raise BootstrapError(f"{source}: segments[{index}] needs 'id' and 'updatedAt'")
    return json.dumps(envelope)


def _envelope(raw: Any, source: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise BootstrapError(f"{source}: top level must be a JSON object")
    if "featureFlags" in raw:
        raw = {"messageType": "data-sync", "data": {"eventType": "full", **raw}}
    if raw.get("messageType") != "data-sync" or not isinstance(raw.get("data"), Mapping):
        raise BootstrapError(
            f"{source}: expected FeatBit's data-sync envelope "
            '{"messageType": "data-sync", "data": {...}}'
        )
    data = dict(raw["data"])
    data.setdefault("eventType", "full")
    data.setdefault("segments", [])
    if data["eventType"] not in ("full", "patch"):
        raise BootstrapError(f"{source}: data.eventType must be 'full' or 'patch'")
    return {"messageType": "data-sync", "data": data}


def _fill_defaults(flag: dict[str, Any]) -> None:
    """Fields FeatBit always sends but a hand-written file may leave out."""
    flag.setdefault("name", flag["key"])
    flag.setdefault("targetUsers", [])
    flag.setdefault("rules", [])
    flag.setdefault("tags", [])
    flag.setdefault("isArchived", False)
    flag.setdefault("exptIncludeAllTargets", True)
    flag["fallthrough"].setdefault("includedInExpt", True)
    for served in flag["fallthrough"].get("variations", []):
        served.setdefault("exptRollout", 1)


def _check_flag(flag: Any, index: int, source: str) -> None:
    if not isinstance(flag, Mapping):
        raise BootstrapError(f"{source}: featureFlags[{index}] is not an object")
    missing = [name for name in _REQUIRED_FLAG_FIELDS if name not in flag]
    label = flag.get("key", f"featureFlags[{index}]")
    if missing:
        raise BootstrapError(f"{source}: flag {label!r} lacks {', '.join(missing)}")
    ids = {v.get("id") for v in flag["variations"] if isinstance(v, Mapping)}
    if not ids:
        raise BootstrapError(f"{source}: flag {label!r} has no variations")
    if flag["disabledVariationId"] not in ids:
        raise BootstrapError(f"{source}: flag {label!r}: disabledVariationId is not a variation")
    for served in flag["fallthrough"].get("variations", []):
        if served.get("id") not in ids:
            raise BootstrapError(
                f"{source}: flag {label!r}: fallthrough serves unknown variation "
                f"{served.get('id')!r}"
            )
