"""Turn an OpenFeature evaluation context into the user dict ``fbclient`` evaluates.

FeatBit keeps custom attributes as strings and silently drops anything else, so the conversion
is done here, predictably: booleans become ``"true"``/``"false"`` (FeatBit's own wire spelling),
numbers their ``str()``, dates ISO 8601 (naive ones taken as UTC); nested values and None are
left out rather than crashed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any

#: Attribute names FeatBit reserves for the user itself (compared case-insensitively).
RESERVED_ATTRIBUTES = frozenset({"key", "keyid", "name", "targetingkey"})


def attribute_to_string(value: Any) -> str | None:
    """FeatBit's string form of an attribute value, or None when it cannot carry one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return None


def featbit_user(
    key: str,
    attributes: Mapping[str, Any],
    *,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A FeatBit user keyed by ``key``; its name is the ``name`` attribute when usable.

    ``extra`` adds attributes after the conversion (the assignment unit, canonical unit IDs)
    and wins over context attributes of the same name.
    """
    name = attributes.get("name")
    user: dict[str, str] = {
        "key": key,
        "name": name if isinstance(name, str) and name.strip() else key,
    }
    for attribute, value in attributes.items():
        if attribute.lower() in RESERVED_ATTRIBUTES:
            continue
        text = attribute_to_string(value)
        if text is not None:
            user[attribute] = text
    if extra:
        user.update(extra)
    return user
