"""What went wrong connecting to FeatBit, said in one line that names the URL and the fix.

Left to the SDK, a malformed secret, a refused port, an unknown host, a TLS mismatch and
swapped streaming/event URLs all look alike: seconds of repeated log lines, then "not synced".
:func:`check_connection_settings` refuses at start-up what is wrong before any connection
(a URL scheme, a missing host, a secret that is not FeatBit's 44-character format), and
:func:`describe_sync_failure` turns the SDK's last recorded error into a sentence when the
first sync does not arrive within ``ready_timeout``. This module only reads settings and the
SDK's status; it never opens a connection itself.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = ["check_connection_settings", "describe_sync_failure"]

_SECRET_ALPHABET = re.compile(r"^[A-Za-z0-9_-]{44}$")
_STREAMING_SCHEMES = ("ws", "wss")
_EVENT_SCHEMES = ("http", "https")

# Pieces of the SDK's (and the socket library's) error text, and what they mean.
_DNS = ("name or service not known", "nodename nor servname", "temporary failure in name",
        "getaddrinfo failed", "errno -2]", "errno -3]", "no address associated")  # fmt: skip
_REFUSED = ("connection refused", "errno 111]", "errno 61]", "actively refused")
_TLS = ("ssl", "certificate", "tls", "wrong version number")
_TIMEOUT = ("timed out", "timeout")


def check_connection_settings(env_secret: str, streaming_url: str, event_url: str) -> None:
    """Raise :class:`ConfigurationError` (one line, naming the setting) for settings that
    cannot work whatever the network does."""
    _check_url("streaming_url", streaming_url, _STREAMING_SCHEMES, "event_url")
    _check_url("event_url", event_url, _EVENT_SCHEMES, "streaming_url")
    problem = _secret_problem(env_secret)
    if problem is not None:
        raise ConfigurationError(
            f"env_secret {problem}: use the server-side secret of the FeatBit environment"
        )


def _check_url(name: str, url: str, schemes: tuple[str, ...], other: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.scheme:
        raise ConfigurationError(
            f"{name} {url!r} is not a URL: use {schemes[0]}://host[:port] or {schemes[1]}://..."
        )
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        swapped = scheme in (_EVENT_SCHEMES if name == "streaming_url" else _STREAMING_SCHEMES)
        hint = (
            f"; it looks like the {other}: are streaming_url and event_url swapped?"
            if swapped
            else ""
        )
        raise ConfigurationError(
            f"{name} {url!r} must start with {' or '.join(s + '://' for s in schemes)}{hint}"
        )
    if not parts.hostname:
        raise ConfigurationError(f"{name} {url!r} has no host")


def _secret_problem(secret: Any) -> str | None:
    if not isinstance(secret, str) or not secret.strip():
        return "is empty"
    if not _SECRET_ALPHABET.match(secret):
        return (
            f"is not a FeatBit server secret ({len(secret)} characters; FeatBit's are 44 "
            "characters of A-Z, a-z, 0-9, '-' and '_')"
        )
    try:
        env_id = base64.urlsafe_b64decode(secret[22:] + "==")
    except (binascii.Error, ValueError):
        env_id = b""
    if len(env_id) != 16 or not any(env_id):
        return "does not hold an environment id (its last 22 characters do not decode)"
    return None


def describe_sync_failure(
    streaming_uri: str, error_type: str | None, error_message: str | None, waited: float
) -> str:
    """One line: what the SDK last reported while trying ``streaming_uri``, what it means,
    and where to look."""
    where = f"FeatBit at {streaming_uri}"
    text = (error_message or "").lower()
    if error_type is None and not text:
        cause = "connected but no data arrived (is this FeatBit's evaluation server?)"
    elif error_type == "Request invalid" or "4003" in text:
        cause = (
            "the server refused the environment secret (closed the stream with 4003): check "
            "that the secret belongs to an environment of this FeatBit server"
        )
    elif any(piece in text for piece in _DNS):
        host = urlsplit(streaming_uri).hostname
        cause = f"DNS cannot resolve host {host!r}: check the host name in streaming_url"
    elif any(piece in text for piece in _REFUSED):
        cause = "connection refused: nothing listens on that host and port (is FeatBit up?)"
    elif any(piece in text for piece in _TLS):
        cause = (
            f"TLS failed ({error_message}): wss:// needs a TLS endpoint and a trusted "
            "certificate; use ws:// for a plain one"
        )
    elif "handshake status" in text:
        cause = (
            f"the WebSocket upgrade was refused ({error_message}): is streaming_url the "
            "evaluation server's address?"
        )
    elif any(piece in text for piece in _TIMEOUT):
        cause = f"the connection timed out ({error_message}): check the host, port and firewall"
    else:
        cause = f"{error_type}: {error_message}"
    return f"{where}: {cause}; not synced within {waited:g}s, serving defaults until it is"
