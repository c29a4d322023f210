"""Exposure deduplication shared by every instance: a set-if-absent store, so a unit that is
served by several instances is exposed once.

``ExposureRecorder`` asks it only for exposures this process has not deduplicated itself, and
sends the exposure anyway (with a ``store_unavailable`` guardrail) when it cannot answer: a
duplicate is recoverable by analysis, a lost exposure is not.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class SeenKeys(Protocol):
    """A set-if-absent store shared by several processes, for cross-instance deduplication.

    ``first_time(key)`` records ``key`` and returns True only for the first caller ever (or
    within the store's retention); it may raise when the store is unreachable, in which case
    the exposure is sent anyway (a duplicate is recoverable, a lost exposure is not).
    """

    def first_time(self, key: str) -> bool: ...


class RedisSeenKeys:
    """:class:`SeenKeys` on a Redis server shared by every instance (``SET key 1 NX PX ttl``).

    Args:
        client: A ``redis.Redis`` client (give it a short ``socket_timeout``: an exposure
            that has not been seen locally waits for one round trip).
        key_prefix: Prepended to every key; one per environment.
        ttl_seconds: How long a key is remembered; after that a unit seen again gets one more
            exposure, which analysis removes by the same key.
    """

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str = "featbit-experiments:exposure:",
        ttl_seconds: float = 30 * 24 * 3600.0,
    ) -> None:
        self._client = client
        self._prefix = key_prefix
        self._ttl_ms = int(ttl_seconds * 1000)

    def first_time(self, key: str) -> bool:
        return bool(self._client.set(self._prefix + key, b"1", nx=True, px=self._ttl_ms))
