"""``preflight()``: read every input a preflight can take (policy files or objects, a bootstrap
file or a live client's flags, a plan file, a pilot log, the ledger's Redis) and run the checks.

A policy that cannot be loaded, or whose sources disagree, is itself the finding: the report
says so with its rule instead of raising. Unreadable flag data, plan or pilot files raise
(:class:`~featbit_experiments.errors.ConfigurationError` or ``OSError``): there is nothing to
check without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..continuity.durability import RedisDurability, read_redis_durability
from ..errors import PolicyError
from ..policy import UnitPolicy
from ..policy_file import load_policy
from .checks import check
from .flag_data import flags_from_bootstrap, flags_of_client
from .model import Finding, PreflightReport, Rule, Severity
from .pilot import PilotLog, read_pilot_log
from .plan import PreflightPlan, load_plan

__all__ = ["PolicySource", "combine_policies", "preflight"]

PolicySource = UnitPolicy | str | Path
#: Words of ``Experiment.refusal``'s message, the one policy error with a rule of its own.
_REQUEST_REFUSAL_WORDS = "randomizes by request"
#: Seconds the preflight waits for the ledger's Redis.
REDIS_TIMEOUT = 2.0


def combine_policies(
    sources: Sequence[PolicySource],
) -> tuple[UnitPolicy, list[tuple[str, UnitPolicy]]]:
    """Load and combine policy sources; raises PolicyError as loading or combining does."""
    loaded: list[tuple[str, UnitPolicy]] = []
    for source in sources:
        if isinstance(source, UnitPolicy):
            loaded.append(("code", source))
        else:
            loaded.append((str(source), load_policy(source)))
    if not loaded:
        return UnitPolicy(), []
    combined = loaded[0][1]
    for _, policy in loaded[1:]:
        combined = combined.combine(policy)
    return combined, loaded


def policy_finding(error: PolicyError) -> Finding:
    """A policy the provider would refuse at start-up, as the report's error line."""
    message = str(error)
    rule = Rule.REQUEST_UNIT_USER_FACING if _REQUEST_REFUSAL_WORDS in message else Rule.POLICY_LOADS
    return Finding(Severity.ERROR, rule, f"the policy does not load: {message}")


def preflight(
    policy: PolicySource | Sequence[PolicySource],
    flags: str | Path | Iterable[Mapping[str, Any]] | Any,
    *,
    plan: PreflightPlan | str | Path | None = None,
    events: str | Path | PilotLog | None = None,
    redis: str | Any | None = None,
) -> PreflightReport:
    """Check an experiment plan before launch.

    Args:
        policy: A :class:`UnitPolicy`, a policy file, or several (combined as the provider
            combines them).
        flags: A FeatBit bootstrap file, a running ``fbclient`` client, or raw flag dicts.
        plan: A :class:`PreflightPlan` or a plan file.
        events: A pilot's JSON Lines event log.
        redis: The ledger's Redis: a URL or a ``redis.Redis`` client; by default the plan's
            ``redis_url``, if any.
    """
    sources = [policy] if isinstance(policy, (UnitPolicy, str, Path)) else list(policy)
    try:
        combined, loaded = combine_policies(sources)
    except PolicyError as error:
        return PreflightReport((policy_finding(error),))
    if isinstance(plan, (str, Path)):
        plan = load_plan(plan)
    plan = plan or PreflightPlan()
    pilot = read_pilot_log(events) if isinstance(events, (str, Path)) else events
    return check(
        combined,
        _flags(flags),
        plan=plan,
        pilot=pilot,
        redis=_durability(redis if redis is not None else plan.deployment.redis_url),
        sources=loaded,
    )


def _flags(flags: str | Path | Iterable[Mapping[str, Any]] | Any) -> list[Mapping[str, Any]]:
    if isinstance(flags, (str, Path)):
        return list(flags_from_bootstrap(flags))
    if hasattr(flags, "_config") and hasattr(flags, "variation_detail"):
        return list(flags_of_client(flags))
    return list(flags)


def _durability(redis: str | Any | None) -> RedisDurability | None:
    if redis is None:
        return None
    if not isinstance(redis, str):
        return read_redis_durability(redis)
    try:
        import redis as redis_py
    except ImportError:  # pragma: no cover - depends on the installed extras
        return RedisDurability.unreachable(
            "the redis package is missing: featbit-experiments[redis]"
        )
    client = redis_py.Redis.from_url(
        redis, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )
    try:
        return read_redis_durability(client)
    finally:
        client.close()
