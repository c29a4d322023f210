"""FeatBit's secrets, streaming tokens, request validation and entity versions, as the
evaluation server implements them (featbit/featbit ``modules/evaluation-server``, read at
``366b4a1``): ``Domain/Shared/{Secret,GuidHelper,Token,TokenNumber}.cs``,
``Streaming/Connections/RequestValidator.cs`` and the stores' ``updatedAt`` comparisons.

Pure functions for :mod:`tests.support.featbit_server`; no sockets here.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

#: ``ConnectionType.All`` and ``ConnectionVersion.All`` (StreamingOptions defaults).
CONNECTION_TYPES = frozenset({"server", "client", "relay-proxy"})
CONNECTION_VERSIONS = frozenset({"", "1", "2"})
TOKEN_EXPIRY_SECONDS = 30.0
SECRET_LENGTH = 44
_ENCODED_GUID_LENGTH = 22
# TokenNumber.CharacterMap: the digits 0-9 are sent as these letters.
_TOKEN_DIGITS = {letter: str(digit) for digit, letter in enumerate("QBWSPHDXZU")}
_BYTE_MAX, _LONG_MAX = 255, 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------
# Secrets (Secret.cs, GuidHelper.cs)


def encode_guid(value: uuid.UUID) -> str:
    """``GuidHelper.Encode``: .NET's byte order (``bytes_le``), url-safe base64, 22 chars."""
    text = base64.b64encode(value.bytes_le).decode("ascii")
    return text.replace("/", "_").replace("+", "-")[:_ENCODED_GUID_LENGTH]


def decode_guid(encoded: str) -> uuid.UUID | None:
    """``GuidHelper.Decode``: None where .NET yields ``Guid.Empty`` (undecodable or zero)."""
    text = (encoded[:_ENCODED_GUID_LENGTH] + "==").replace("_", "/").replace("-", "+")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16:
        return None
    value = uuid.UUID(bytes_le=raw)
    return None if value.int == 0 else value


def make_env_secret(env_id: uuid.UUID | None = None) -> str:
    """A server secret as FeatBit makes one: an encoded random GUID + the encoded env ID."""
    return encode_guid(uuid.uuid4()) + encode_guid(env_id or uuid.uuid4())


def secret_env_id(secret: str | None) -> uuid.UUID | None:
    """``Secret.TryParse``: the env ID of a well-formed secret (structure only, no lookup)."""
    if not secret or not secret.strip() or len(secret) != SECRET_LENGTH:
        return None
    return decode_guid(secret[_ENCODED_GUID_LENGTH:])


@dataclass(frozen=True)
class SecretEntry:
    """One secret an environment holds (``environments.secrets``): its type and env ID."""

    secret: str
    type: str
    env_id: uuid.UUID


# --------------------------------------------------------------------------------------------
# Streaming tokens (Token.cs, TokenNumber.cs)


@dataclass(frozen=True)
class DecodedToken:
    """A streaming token split into the env secret and the client's clock (epoch ms)."""

    secret: str
    timestamp_ms: int


def _decode_number(text: str, maximum: int) -> int | None:
    if not text.strip():
        return 0  # TokenNumber.TryDecode*: an empty or blank span decodes as 0
    digits = [_TOKEN_DIGITS.get(ch) for ch in text]
    if any(d is None for d in digits):
        return None
    value = int("".join(d for d in digits if d is not None))
    return value if value <= maximum else None  # byte.Parse / long.Parse overflow


def decode_token(token: str) -> DecodedToken | None:
    """``new Token(span)``: None when ``IsValid`` would be false.

    Layout: ``enc(pos, 3) + enc(len(ts), 2) + secret[:pos] + enc(ts) + secret[pos:]``; the
    secret is padded with ``=`` to a multiple of 4 and must then be 44 characters.
    """
    if len(token) < 5:
        return None
    position = _decode_number(token[:3], _BYTE_MAX)
    length = _decode_number(token[3:5], _BYTE_MAX)
    if position is None or length is None:
        return None
    payload = token[5:]
    if len(payload) < position + length:
        return None
    timestamp = _decode_number(payload[position : position + length], _LONG_MAX)
    if timestamp is None:
        return None
    secret = payload[:position] + payload[position + length :]
    secret += "=" * (-len(secret) % 4)
    if not secret.strip() or len(secret) != SECRET_LENGTH:
        return None
    return DecodedToken(secret, timestamp)


def stream_rejection(
    params: Mapping[str, str],
    secrets: Mapping[str, SecretEntry],
    *,
    token_expiry_seconds: float = TOKEN_EXPIRY_SECONDS,
    now_ms: float | None = None,
) -> str:
    """Why ``RequestValidator`` refuses a streaming request (it is then closed with 4003), or
    ``""`` when it is valid. Checks run in FeatBit's order."""
    conn_type, version, raw = (params.get(k, "") for k in ("type", "version", "token"))
    if conn_type not in CONNECTION_TYPES:
        return f"Invalid type: {conn_type}"
    if version not in CONNECTION_VERSIONS:
        return f"Invalid version: {version}"
    if not raw.strip():
        return "Missing token"
    if conn_type == "relay-proxy":
        return f"Invalid relay proxy token: {raw}"  # no relay proxies are registered here
    token = decode_token(raw)
    if token is None:
        return f"Invalid token: {raw}"
    if secret_env_id(token.secret) is None:
        return "Invalid token: Invalid token format"
    now = time.time() * 1000 if now_ms is None else now_ms
    if abs(now - token.timestamp_ms) > token_expiry_seconds * 1000:
        return f"Token is expired: {raw}"
    entry = secrets.get(token.secret)
    if entry is None:
        return f"Secret is not found: {token.secret}"
    if entry.type != conn_type:
        return f"Inconsistent secret used: {entry.type}. Request type: {conn_type}"
    return ""


# --------------------------------------------------------------------------------------------
# Entity versions


class TimestampPrecision(str, Enum):
    """How the server compares an entity's ``updatedAt`` with a client's ms timestamp.

    ``MICROSECOND``: ``updated_at > @time`` on PostgreSQL's microseconds (FeatBit 5.0.x,
    ``PostgresStore`` before featbit/featbit#760). ``MILLISECOND``: ``date_trunc('milliseconds',
    updated_at) > @time`` (5.1.0 and later; MongoDB and the Redis index hold ms anyway).
    """

    MICROSECOND = "microsecond"
    MILLISECOND = "millisecond"


def _moment(entity: Mapping[str, Any]) -> datetime:
    text = str(entity["updatedAt"])
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # Npgsql reads timestamptz as UTC
    return moment


def updated_at_us(entity: Mapping[str, Any]) -> int:
    """An entity's ``updatedAt`` in epoch microseconds, as PostgreSQL keeps it."""
    delta = _moment(entity) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def updated_at_ms(entity: Mapping[str, Any]) -> int:
    """The version ``fbclient`` stores for an entity: ``updatedAt`` rounded to ms
    (``from_str_datetime_to_millis``)."""
    return round(_moment(entity).timestamp() * 1000)


def is_newer(entity: Mapping[str, Any], timestamp_ms: int, precision: TimestampPrecision) -> bool:
    """Whether a data sync at ``timestamp_ms`` includes ``entity``."""
    micros = updated_at_us(entity)
    if precision is TimestampPrecision.MICROSECOND:
        return micros > timestamp_ms * 1000
    return micros // 1000 > timestamp_ms
