"""The preflight at provider start-up: the same checks, on what the provider already holds
(its policy, the flags its FeatBit client synced, its assignment store), logged once.

Opt-in (``FeatBitProvider(..., preflight=PreflightPlan(instances=3))``). Errors are logged at
ERROR and warnings at WARNING on the ``featbit_experiments`` logger, one record per finding,
after the first data sync; notes and passing checks are left to the report. Nothing here
raises into the provider's start-up: a check that fails is itself logged.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ..continuity.durability import RedisDurability, read_redis_durability
from ..policy import UnitPolicy
from .checks import check
from .flag_data import flags_of_client
from .model import PreflightReport, Severity
from .plan import MEMORY_LEDGER, REDIS_LEDGER, PreflightPlan

__all__ = ["startup_preflight"]

logger = logging.getLogger("featbit_experiments")

_LEVELS = {Severity.ERROR: logging.ERROR, Severity.WARNING: logging.WARNING}


def startup_preflight(
    client: Any, policy: UnitPolicy, store: Any, plan: PreflightPlan
) -> PreflightReport | None:
    """Run the checks and log every error and warning once; None if the check itself failed."""
    try:
        report = check(
            policy,
            flags_of_client(client),
            plan=_with_store(plan, store),
            redis=_durability(store),
        )
    except Exception:
        logger.exception("preflight at start-up failed")
        return None
    for finding in report.findings:
        _log(finding.severity, f"preflight {finding.rule}: {finding.message}")
    for experiment in report.experiments:
        for finding in experiment.findings:
            _log(
                finding.severity,
                f"preflight {finding.rule} [{experiment.flag_key}]: {finding.message}",
            )
    return report


def _log(severity: Severity, message: str) -> None:
    level = _LEVELS.get(severity)
    if level is not None:
        logger.log(level, "%s", message)


def _with_store(plan: PreflightPlan, store: Any) -> PreflightPlan:
    """The plan's deployment with what the running store says: its kind and its idle TTLs
    (the store in hand is the truth; the plan may describe another)."""
    deployment = plan.deployment
    ttls = getattr(store, "ttl_seconds", None) or deployment.ttl_seconds
    return replace(
        plan,
        deployment=replace(
            deployment,
            ledger=REDIS_LEDGER if _is_redis(store) else MEMORY_LEDGER,
            ttl_seconds=dict(ttls),
        ),
    )


def _is_redis(store: Any) -> bool:
    return bool(getattr(store, "is_remote", False)) and hasattr(store, "client")


def _durability(store: Any) -> RedisDurability | None:
    return read_redis_durability(store.client) if _is_redis(store) else None
