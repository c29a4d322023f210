"""What the lifecycle command needs to know of each FeatBit flag: its key, whether it is an
experiment (a ``unit:`` tag or a policy declaration), which variations it can serve, and since
when it last changed.

Flags come from a bootstrap file (FeatBit's ``data-sync`` JSON) or from a live FeatBit
environment, read once through the SDK. Nothing here changes a flag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from openfeature.evaluation_context import EvaluationContext

from ..bootstrap import read_bootstrap
from ..policy import UNIT_TAG_PREFIX

__all__ = ["FlagFacts", "facts_from_featbit", "facts_from_file", "facts_of"]


@dataclass(frozen=True)
class FlagFacts:
    """One flag as the lifecycle command sees it.

    Args:
        key: The flag key.
        tags: FeatBit tags.
        enabled: Whether the flag is on.
        served: Names of the variations it can serve now (targets, rules and the default
            rule when on; the disabled variation when off).
        updated_at: When it last changed, or None when unknown.
    """

    key: str
    tags: tuple[str, ...]
    enabled: bool
    served: tuple[str, ...]
    updated_at: datetime | None

    @property
    def unit_tagged(self) -> bool:
        return any(tag.startswith(UNIT_TAG_PREFIX) for tag in self.tags)

    def days_unchanged(self, now: datetime) -> float | None:
        if self.updated_at is None:
            return None
        return (now - self.updated_at).total_seconds() / 86400


def facts_of(flag: Mapping[str, Any]) -> FlagFacts:
    """Facts of one flag in FeatBit's wire format (or fbclient's stored form)."""
    names = {
        str(v.get("id")): str(v.get("name") or v.get("value")) for v in flag.get("variations") or []
    }
    enabled = bool(flag.get("isEnabled"))
    if enabled:
        ids = [t.get("variationId") for t in flag.get("targetUsers") or [] if t.get("keyIds")]
        for rollout in [flag.get("fallthrough") or {}, *(flag.get("rules") or [])]:
            ids += [s.get("id") for s in rollout.get("variations") or [] if _non_empty(s)]
    else:
        ids = [flag.get("disabledVariationId")]
    served = tuple(dict.fromkeys(names.get(str(i), str(i)) for i in ids if i is not None))
    return FlagFacts(
        key=str(flag.get("key")),
        tags=tuple(str(t) for t in flag.get("tags") or []),
        enabled=enabled,
        served=served,
        updated_at=_parse_time(flag.get("updatedAt")),
    )


def _non_empty(served: Mapping[str, Any]) -> bool:
    bounds = served.get("rollout") or [0, 1]
    return float(bounds[1]) - float(bounds[0]) > 0


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def facts_from_file(path: str | Path) -> list[FlagFacts]:
    """Every live (not archived) flag of a bootstrap file; BootstrapError names the file."""
    flags = json.loads(read_bootstrap(path))["data"]["featureFlags"]
    return _live(flags)


def _live(flags: Iterable[Mapping[str, Any]]) -> list[FlagFacts]:
    return sorted(
        (facts_of(f) for f in flags if not f.get("isArchived") and f.get("key")),
        key=lambda facts: facts.key,
    )


def facts_from_featbit(
    env_secret: str, streaming_url: str, event_url: str, *, timeout: float = 10.0
) -> list[FlagFacts]:
    """Every live flag of a FeatBit environment, read once through the SDK. Raises the
    provider's one-line errors when FeatBit cannot be reached (see ``FeatBitProvider.connect``)."""
    from ..provider import FeatBitProvider

    provider = FeatBitProvider.connect(
        env_secret, streaming_url, event_url, ready_timeout=timeout, sinks=[], telemetry=False
    )
    try:
        provider.initialize(EvaluationContext())
        from fbclient.category import FEATURE_FLAGS

        # fbclient 1.2 keeps the synced flags in its data storage; there is no public listing.
        stored = provider.client._config.data_storage.get_all(FEATURE_FLAGS)
        return _live(stored.values())
    finally:
        provider.shutdown()
