"""What the FeatBit test server records: handshakes, insight POSTs and the insight items they
delivered, flattened into one record per flag evaluation or metric (as FeatBit's
``Insight.InsightMessages`` flattens them before storing)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StreamRequest:
    """One WebSocket request that completed the handshake, accepted or closed with 4003."""

    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    accepted: bool
    reason: str


@dataclass(frozen=True)
class InsightRequest:
    """One ``POST /api/public/insight/track`` as received, with the status it was answered."""

    authorization: str | None
    status: int
    items: tuple[Mapping[str, Any], ...]
    """The items FeatBit would keep (a user ``keyId``), or none when the body did not bind."""
    headers: Mapping[str, str]
    env_id: uuid.UUID | None = None
    """The environment the secret names (None: refused with 401)."""
    error: str = ""
    """Why the body was refused (400/500), as FeatBit's binding would fail."""


@dataclass(frozen=True)
class FlagEventRecord:
    """One flag evaluation from a delivered insight item (``variations[]`` flattened)."""

    user_key: str
    flag_key: str
    variation_id: str
    value: str
    timestamp: int
    item: Mapping[str, Any]
    send_to_experiment: bool = False
    """FeatBit stores a missing ``sendToExperiment`` as false (``tag_2``); its experiment
    analysis reads only the evaluations sent with true."""


@dataclass(frozen=True)
class MetricEventRecord:
    """One custom metric from a delivered insight item (``metrics[]`` flattened)."""

    user_key: str
    event_name: str
    numeric_value: float
    timestamp: int
    item: Mapping[str, Any]


def flag_events(
    items: Iterable[Mapping[str, Any]], flag_key: str | None = None
) -> list[FlagEventRecord]:
    """The flag evaluations in ``items``, optionally only those of ``flag_key``."""
    records: list[FlagEventRecord] = []
    for item in items:
        for variation in item.get("variations") or ():
            record = FlagEventRecord(
                user_key=str(item["user"]["keyId"]),
                flag_key=str(variation.get("featureFlagKey")),
                variation_id=str(variation.get("variation", {}).get("id")),
                value=str(variation.get("variation", {}).get("value")),
                timestamp=int(variation.get("timestamp", 0)),
                item=item,
                send_to_experiment=variation.get("sendToExperiment") is True,
            )
            if flag_key is None or record.flag_key == flag_key:
                records.append(record)
    return records


def metric_events(
    items: Iterable[Mapping[str, Any]], event_name: str | None = None
) -> list[MetricEventRecord]:
    """The custom metrics in ``items`` (``track_metric``), optionally only ``event_name``."""
    records: list[MetricEventRecord] = []
    for item in items:
        for metric in item.get("metrics") or ():
            record = MetricEventRecord(
                user_key=str(item["user"]["keyId"]),
                event_name=str(metric.get("eventName")),
                numeric_value=float(metric.get("numericValue", 0.0)),
                timestamp=int(metric.get("timestamp", 0)),
                item=item,
            )
            if event_name is None or record.event_name == event_name:
                records.append(record)
    return records
