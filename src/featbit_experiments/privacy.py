"""Privacy for unit IDs that leave the process: keep them, pseudonymize them, or drop them.

User, account and conversation IDs are personal data. FeatBit must still get the real key
(it buckets on it and joins its own results by it), so this module is applied only where IDs
leave for somewhere else: OpenTelemetry attributes, event sinks, and the ``contextId`` in
OpenFeature's flag metadata. It must never be applied to the FeatBit user.

Hashing is keyed (HMAC-SHA256), so a pseudonym cannot be reversed by hashing guessed IDs
without the key, and the same ID hashes the same everywhere in one deployment, so exposures
and outcomes still join.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

from . import event_schema as schema
from .errors import ConfigurationError
from .units import TARGETING_KEY_SOURCE, Unit, UnitKey

#: Shortest HMAC key accepted in hash mode (bytes).
MIN_KEY_BYTES = 16
#: Pseudonyms start with this, so nobody mistakes them for real IDs.
HASH_PREFIX = "h_"
_HASH_HEX_CHARS = 32  # 128 bits: ample against collisions among a deployment's IDs
#: Pseudonyms remembered per setting: a conversation's later turns skip the HMAC.
_PSEUDONYM_CACHE_SIZE = 8192


class PrivacyMode(str, Enum):
    """What happens to a unit ID on its way out to telemetry and sinks."""

    RAW = "raw"
    HASH = "hash"
    OMIT = "omit"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Privacy:
    """How unit IDs appear in telemetry, event sinks and flag metadata.

    Args:
        mode: ``"raw"`` (as given; the default), ``"hash"`` (a keyed HMAC pseudonym) or
            ``"omit"`` (left out).
        key: The HMAC key, required for ``"hash"`` (at least 16 bytes; a ``str`` is encoded
            as UTF-8). Keep it secret and stable: a new key breaks joins with older records.
    """

    mode: PrivacyMode | str = PrivacyMode.RAW
    key: bytes | str | None = field(default=None, repr=False)
    _key: bytes = field(init=False, repr=False, compare=False, default=b"")
    _pseudonym: Callable[[str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            mode = PrivacyMode(self.mode)
        except ValueError as error:
            raise ConfigurationError(
                f"privacy mode must be one of raw, hash, omit; got {self.mode!r}"
            ) from error
        object.__setattr__(self, "mode", mode)
        key = self.key.encode("utf-8") if isinstance(self.key, str) else (self.key or b"")
        if mode is PrivacyMode.HASH and len(key) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"privacy mode 'hash' needs an HMAC key of at least {MIN_KEY_BYTES} bytes"
            )
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_pseudonym", lru_cache(maxsize=_PSEUDONYM_CACHE_SIZE)(self._hmac))

    @classmethod
    def hashed(cls, key: bytes | str) -> Privacy:
        """Pseudonymize IDs with HMAC-SHA256 under ``key``."""
        return cls(PrivacyMode.HASH, key)

    @classmethod
    def omitted(cls) -> Privacy:
        """Leave IDs out of telemetry and sinks altogether."""
        return cls(PrivacyMode.OMIT)

    @property
    def is_raw(self) -> bool:
        return self.mode is PrivacyMode.RAW

    def protect(self, value: str) -> str | None:
        """``value`` as it may leave the process: itself, its pseudonym, or None (omit).

        A value that is not a string (an integer targeting key) is left out when hashing: unit
        IDs are strings (the unit reader refuses others), so no pseudonym of it would join, and
        passing it on would leak the raw ID."""
        if self.mode is PrivacyMode.RAW:
            return value
        if self.mode is PrivacyMode.OMIT or not isinstance(value, str):
            return None
        return self._pseudonym(value)

    def _hmac(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return HASH_PREFIX + digest[:_HASH_HEX_CHARS]

    def context_id(self, unit_key: UnitKey) -> str | None:
        """The kind-prefixed ID for ``feature_flag.context.id`` (``conversation:<id>``), with
        the ID protected; None when IDs are omitted."""
        value = self.protect(unit_key.value)
        return None if value is None else f"{unit_key.unit}:{value}"

    def scrub(self, record: Mapping[str, Any], id_fields: frozenset[str]) -> Mapping[str, Any]:
        """``record`` with every field named in ``id_fields`` protected, at the top level and
        inside its ``attributes`` mapping (tracking attributes may carry IDs too). Unless IDs
        are raw, an ID field that is not a string (``userId=42``) is left out, as
        :meth:`protect` leaves it out."""
        if self.mode is PrivacyMode.RAW:
            return record
        scrubbed = self._scrub_level(record, id_fields)
        nested = scrubbed.get(schema.ATTRIBUTES)
        if isinstance(nested, Mapping):
            scrubbed[schema.ATTRIBUTES] = self._scrub_level(nested, id_fields)
        return scrubbed

    def _scrub_level(self, record: Mapping[str, Any], id_fields: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in record.items():
            if name in id_fields and isinstance(value, str):
                protected = self.protect(value)
                if protected is not None:
                    out[name] = protected
            elif name in id_fields and value is not None:
                continue  # a non-string ID cannot be protected reliably: leave it out
            else:
                out[name] = value
        return out


def unit_id_from_context_id(context_id: str, unit: str) -> str | None:
    """The (already protected) unit ID inside a :meth:`Privacy.context_id` string."""
    prefix = f"{unit}:"
    return context_id[len(prefix) :] if context_id.startswith(prefix) else None


def id_fields_of(units: Iterable[Unit]) -> frozenset[str]:
    """Every record field that can hold a unit ID: ``unitId``, the targeting key, and each
    unit's attribute and aliases (so a custom unit's IDs are covered as well)."""
    names = {schema.UNIT_ID, TARGETING_KEY_SOURCE, *schema.UNIT_ID_FIELDS}
    for unit in units:
        names.update(unit.attribute_names)
    return frozenset(names)
