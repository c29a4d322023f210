"""Assignment continuity: an experiment unit keeps the variation it was first given, across
turns, retries and instances, and rollback follows the rule the experiment declared.

``store`` defines what is remembered and the store contract; ``memory`` is the embedded default;
``redis_store`` shares the ledger between instances (on Redis or Redis Cluster); ``ledger`` is
the policy that decides, per evaluation, between the ledger and FeatBit; ``recovery`` is what it
does when the store is down or lost what it held; ``durability`` checks that a Redis keeps it.
"""

from .durability import (
    DurabilityProblem,
    RedisDurability,
    Risk,
    ServerDurability,
    read_redis_durability,
    redis_durability_problems,
)
from .ledger import AssignmentLedger
from .memory import DEFAULT_MAX_ENTRIES, InMemoryStore
from .redis_store import RedisStore
from .store import (
    DEFAULT_TTL_SECONDS,
    FALLBACK_TTL_SECONDS,
    AssignmentStore,
    LedgerEntry,
    LedgerKey,
    StoreUnavailable,
)

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL_SECONDS",
    "FALLBACK_TTL_SECONDS",
    "AssignmentLedger",
    "AssignmentStore",
    "DurabilityProblem",
    "InMemoryStore",
    "LedgerEntry",
    "LedgerKey",
    "RedisDurability",
    "RedisStore",
    "Risk",
    "ServerDurability",
    "StoreUnavailable",
    "read_redis_durability",
    "redis_durability_problems",
]
