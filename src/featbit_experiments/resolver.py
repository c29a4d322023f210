"""Flag resolution: the unit key policy applied on the way into FeatBit and OpenFeature's
result built on the way out.

For an experiment flag the FeatBit user key is the declared unit's ID, read from the context;
if it is missing or malformed the caller gets the default with an error code and a guardrail
is recorded: no other ID is ever substituted. Nothing here raises into the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagType, Reason

from . import _sdk
from . import metadata_keys as meta
from .assignment import Assignment
from .featbit_user import featbit_user
from .flag_plan import FlagPlan, plan_flag
from .flag_view import KEY_DISPATCH, FlagView, ValueParseError
from .guardrails import EventFanout, Guardrail, ThrottledGuardrail
from .policy import Declaration, Refusal, UnitPolicy
from .privacy import Privacy
from .scope import record_assignment
from .units import UnitKey, UnitKeyProblem

if TYPE_CHECKING:
    from .continuity.ledger import AssignmentLedger

logger = logging.getLogger("featbit_experiments")

#: Key used for ordinary (non-experiment) flags when the context has no targeting key and
#: the flag serves everyone alike, so the key cannot influence bucketing.
ANONYMOUS_KEY = "anonymous"

#: Seconds between two ``provider_not_ready`` guardrails while FeatBit is not synced.
NOT_READY_REPORT_INTERVAL = 10.0
#: Seconds between two ``experiment_flag_missing`` guardrails for one declared flag key.
MISSING_FLAG_REPORT_INTERVAL = 60.0

_FEATBIT_ERRORS: Mapping[str, ErrorCode] = {
    "client not ready": ErrorCode.PROVIDER_NOT_READY,
    "flag not found": ErrorCode.FLAG_NOT_FOUND,
    "user not specified": ErrorCode.TARGETING_KEY_MISSING,
    "wrong type": ErrorCode.TYPE_MISMATCH,
    "error in evaluation": ErrorCode.GENERAL,
}

AssignmentListener = Callable[[Assignment], None]
#: Sees every result, errors included (the provider's OpenTelemetry recorder); must not raise.
EvaluationListener = Callable[[str, FlagResolutionDetails[Any], EvaluationContext], None]


@dataclass(frozen=True)
class Served:
    """What FeatBit (or a remembered assignment) served: a variation and FeatBit's reason."""

    variation_id: str
    featbit_reason: str


#: The ``featbit_reason`` of a variation served from the assignment ledger (OpenFeature: CACHED).
LEDGER_REASON = "assignment ledger"


class FlagResolver:
    """Resolves flags through an ``fbclient.FBClient`` under a :class:`UnitPolicy`.

    Args:
        client: The FeatBit client (thread-safe; shared by every evaluation).
        policy: The unit key policy.
        events: Where guardrail events go.
    """

    def __init__(self, client: Any, policy: UnitPolicy, events: EventFanout) -> None:
        self._client = client
        self._read_flag = _sdk.flag_reader(client)
        #: FeatBit's evaluator with insights FeatBit's experiments count (None: the SDK lacks
        #: the internals, so evaluations go through ``variation_detail`` and say so once).
        self._sdk = _sdk.SdkEvaluator.for_client(client)
        if self._sdk is None:
            events.guardrail(
                Guardrail.EXPOSURES_NOT_COUNTED,
                "this fbclient version lacks the internals the provider uses to mark insights "
                f"sendToExperiment (checked against {', '.join(_sdk.CHECKED_AGAINST)}); "
                "FeatBit's experiment results will not count these exposures",
            )
        self._targeting_reported: set[tuple[str, int]] = set()
        self._targeting_lock = threading.Lock()
        self.policy = policy
        self.events = events
        self._plans: dict[str, FlagPlan] = {}
        self.assignment_listeners: list[AssignmentListener] = []
        #: Not being synced lasts a while: one guardrail per interval, not per evaluation.
        self._not_ready = ThrottledGuardrail(
            events, Guardrail.PROVIDER_NOT_READY, NOT_READY_REPORT_INTERVAL
        )
        #: A declared experiment whose flag FeatBit lacks (a typo, a deleted flag) would serve
        #: every caller the default quietly: one guardrail per flag key and interval, counted.
        self._missing_flags = {
            key: ThrottledGuardrail(
                events, Guardrail.EXPERIMENT_FLAG_MISSING, MISSING_FLAG_REPORT_INTERVAL
            )
            for key in policy.experiments
        }
        #: Keeps units on their first variation (set by the provider); None asks FeatBit always.
        self.ledger: AssignmentLedger | None = None
        #: Applied to the unit ID in ``flag_metadata["contextId"]`` (never to FeatBit's key).
        self.privacy = Privacy()
        self.evaluation_listener: EvaluationListener | None = None
        #: OpenFeature-strict: a flag switched off in FeatBit serves the caller's default with
        #: reason DISABLED instead of FeatBit's disabled variation (set by the provider).
        self.disabled_serves_default = False

    # -- public -------------------------------------------------------------------------

    def resolve(
        self,
        flag_key: str,
        default: Any,
        flag_type: FlagType,
        context: EvaluationContext | None,
    ) -> FlagResolutionDetails[Any]:
        """OpenFeature's result for one evaluation; never raises."""
        context = context or EvaluationContext()
        try:
            result = self._resolve(flag_key, default, flag_type, context)
        except Exception as error:  # the caller's request must never fail because of us
            logger.exception("unexpected error resolving flag %r", flag_key)
            result = error_result(default, ErrorCode.GENERAL, f"unexpected provider error: {error}")
        if self.evaluation_listener is not None:
            self.evaluation_listener(flag_key, result, context)
        return result

    def view(self, flag_key: str) -> FlagView | None:
        """The current view of a flag, or None when FeatBit does not know it."""
        plan = self._plan(flag_key)
        return None if plan is None else plan.view

    def _plan(self, flag_key: str) -> FlagPlan | None:
        """The flag's view and what the policy says of it, computed once per flag version
        (a plain dict replace is atomic, so concurrent evaluations need no lock)."""
        flag = self._read_flag(flag_key)
        if not flag:
            return None
        version = int(flag.get("timestamp") or 0)
        cached = self._plans.get(flag_key)
        if cached is not None and cached.view.version == version:
            return cached
        plan = plan_flag(flag, self.policy)
        if plan.unreachable_targets is not None:
            self._report_unreachable_targets(plan)
        self._plans[flag_key] = plan
        return plan

    def _report_unreachable_targets(self, plan: FlagPlan) -> None:
        """Once per flag version (not per evaluation)."""
        view, declaration = plan.view, plan.declaration
        assert isinstance(declaration, Declaration) and plan.unreachable_targets is not None
        with self._targeting_lock:
            if (view.key, view.version) in self._targeting_reported:
                return
            self._targeting_reported.add((view.key, view.version))
        self.events.guardrail(
            Guardrail.TARGETING_UNIT_MISMATCH,
            plan.unreachable_targets,
            flagKey=view.key,
            experimentKey=declaration.experiment.experiment_key,
            assignmentUnit=declaration.unit.name,
            flagVersion=view.version,
        )

    # -- the pipeline -------------------------------------------------------------------

    def _resolve(
        self, flag_key: str, default: Any, flag_type: FlagType, context: EvaluationContext
    ) -> FlagResolutionDetails[Any]:
        plan = self._plan(flag_key)
        if plan is None:
            if not self._client.initialize:
                self._not_ready.report(
                    "FeatBit data is not synced yet; serving the default", flagKey=flag_key
                )
                return error_result(
                    default, ErrorCode.PROVIDER_NOT_READY, "FeatBit data not synced"
                )
            # The first sync may have landed between the two reads: look again before calling
            # the flag unknown (FeatBit stores the data before it reports itself initialized).
            plan = self._plan(flag_key)
        if plan is None:
            missing = self._missing_flags.get(flag_key)
            if missing is not None:
                missing.report(
                    f"experiment flag {flag_key!r} is declared in the policy but FeatBit has no "
                    "such flag; every caller gets its default (check the key, or the "
                    "environment the secret belongs to)",
                    flagKey=flag_key,
                    experimentKey=self.policy.experiments[flag_key].experiment_key,
                )
            return error_result(default, ErrorCode.FLAG_NOT_FOUND, f"flag {flag_key!r} not found")
        view, declaration = plan.view, plan.declaration
        if not view.accepts(flag_type):
            return error_result(
                default,
                ErrorCode.TYPE_MISMATCH,
                f"flag {flag_key!r} is a {view.variation_type} flag, asked for {flag_type.value}",
            )
        if isinstance(declaration, Refusal):
            self.events.guardrail(declaration.guardrail, declaration.message, flagKey=flag_key)
            return error_result(default, ErrorCode.GENERAL, declaration.message)
        if self.disabled_serves_default and not view.enabled:
            # Nobody is assigned while a flag is off: no FeatBit call, no assignment.
            return FlagResolutionDetails(value=default, reason=Reason.DISABLED)
        if declaration is None:
            return self._resolve_ordinary(view, default, flag_type, context)
        return self._resolve_experiment(plan, declaration, default, flag_type, context)

    def _resolve_ordinary(
        self, view: FlagView, default: Any, flag_type: FlagType, context: EvaluationContext
    ) -> FlagResolutionDetails[Any]:
        key = context.targeting_key
        fallthrough = view.rollouts[0]
        if not key:
            needs_key = (
                fallthrough.is_split and (fallthrough.dispatch_key or "").lower() in KEY_DISPATCH
            )
            if needs_key:
                message = (
                    f"flag {view.key!r} splits traffic on the targeting key and the context has "
                    "none; serving the default instead of bucketing everyone together"
                )
                self.events.guardrail(Guardrail.MISSING_UNIT_ID, message, flagKey=view.key)
                return error_result(default, ErrorCode.TARGETING_KEY_MISSING, message)
            key = ANONYMOUS_KEY
        user = featbit_user(key, context.attributes)
        dispatch = fallthrough.dispatch_key
        if (
            fallthrough.is_split
            and dispatch
            and dispatch.lower() not in KEY_DISPATCH
            and not _sdk.user_attribute(user, dispatch)
        ):
            message = (
                f"flag {view.key!r} splits traffic on attribute {dispatch!r}, which the "
                "context lacks (FeatBit matches custom attributes case-sensitively); serving "
                "the default instead of bucketing everyone together"
            )
            self.events.guardrail(Guardrail.MISSING_UNIT_ID, message, flagKey=view.key)
            return error_result(default, ErrorCode.TARGETING_KEY_MISSING, message)
        served = self.evaluate(view.key, user)
        if isinstance(served, FlagResolutionDetails):
            return _with_default(served, default)
        try:
            value = typed_value(view, served.variation_id, flag_type)
        except _Mismatch as mismatch:
            return error_result(default, mismatch.code, str(mismatch))
        return FlagResolutionDetails(
            value=value,
            reason=reason_for(view, served.featbit_reason),
            variant=view.variant_name(served.variation_id, {}),
        )

    def _resolve_experiment(
        self,
        plan: FlagPlan,
        declaration: Declaration,
        default: Any,
        flag_type: FlagType,
        context: EvaluationContext,
    ) -> FlagResolutionDetails[Any]:
        view = plan.view
        experiment, unit = declaration.experiment, declaration.unit
        base_metadata: dict[str, str | int] = {
            meta.EXPERIMENT_KEY: experiment.experiment_key,
            meta.ASSIGNMENT_UNIT: unit.name,
        }
        if experiment.run_id:
            base_metadata[meta.RUN_ID] = experiment.run_id
        unit_key = self.policy.units.read(unit, context)
        if isinstance(unit_key, UnitKeyProblem):
            self.events.guardrail(
                unit_key.guardrail,
                unit_key.message,
                flagKey=view.key,
                experimentKey=experiment.experiment_key,
                assignmentUnit=unit.name,
                errorCode=unit_key.error_code.value,
                **self.policy.units.known_ids(context),
            )
            return error_result(default, unit_key.error_code, unit_key.message, base_metadata)
        if plan.dispatch_mismatch is not None:
            message = plan.dispatch_mismatch
            self.events.guardrail(
                Guardrail.DISPATCH_KEY_MISMATCH,
                message,
                flagKey=view.key,
                experimentKey=experiment.experiment_key,
                assignmentUnit=unit.name,
                unitId=unit_key.value,
                **self.policy.units.known_ids(context),
            )
            return error_result(default, ErrorCode.GENERAL, message, base_metadata)
        other_ids = self.policy.units.known_ids(context, unit_key)
        # The unit ID also goes under each exact spelling a rollout buckets on, since fbclient
        # hashes a custom attribute it cannot find (case-sensitively) as "".
        extra = {
            **other_ids,
            **dict.fromkeys(plan.unit_id_attributes, unit_key.value),
            "assignmentUnit": unit.name,
        }
        user = featbit_user(unit_key.value, context.attributes, extra=extra)
        served = self.assign(view, declaration, unit_key, user)
        if isinstance(served, FlagResolutionDetails):
            return _with_default(served, default, base_metadata)
        try:
            value = typed_value(view, served.variation_id, flag_type)
        except _Mismatch as mismatch:
            return error_result(default, mismatch.code, str(mismatch), base_metadata)
        assignment = Assignment(
            experiment=experiment,
            unit_key=unit_key,
            variation_id=served.variation_id,
            variant=view.variant_name(served.variation_id, experiment.variant_names),
            value=value,
            reason=reason_for(view, served.featbit_reason),
            flag_version=view.version,
            other_ids=other_ids,
        )
        record_assignment(assignment)
        for listener in self.assignment_listeners:
            try:
                listener(assignment)
            except Exception:
                logger.exception("assignment listener %r failed", listener)
        return FlagResolutionDetails(
            value=value,
            reason=assignment.reason,
            variant=assignment.variant,
            flag_metadata={
                **base_metadata,
                meta.UNIT_KEY_SOURCE: unit_key.source,
                meta.VARIATION_ID: served.variation_id,
                meta.FLAG_VERSION: view.version,
                **_context_id(self.privacy, unit_key),
            },
        )

    # -- FeatBit ------------------------------------------------------------------------

    def assign(
        self, view: FlagView, declaration: Declaration, unit_key: UnitKey, user: dict[str, str]
    ) -> Served | FlagResolutionDetails[Any]:
        """The variation for one experiment unit: the assignment ledger's when there is one."""
        if self.ledger is None:
            return self.evaluate(view.key, user)
        return self.ledger.assign(view, declaration, unit_key, user)

    def evaluate(self, flag_key: str, user: dict[str, str]) -> Served | FlagResolutionDetails[Any]:
        """Ask FeatBit and send its insight; its errors come back as an error result."""
        if self._sdk is None:
            detail = self._client.variation_detail(flag_key, user, None)
            variation_id = getattr(detail, "variation_id", None)
            if variation_id is None or detail.reason in _FEATBIT_ERRORS:
                return _featbit_error(str(detail.reason))
            return Served(str(variation_id), str(detail.reason))
        evaluation = self._sdk.evaluate(flag_key, user)
        if isinstance(evaluation, str):
            return _featbit_error(evaluation)
        evaluation.send_insight()
        return Served(evaluation.variation_id, evaluation.reason)


def _featbit_error(reason: str) -> FlagResolutionDetails[Any]:
    code = _FEATBIT_ERRORS.get(reason, ErrorCode.GENERAL)
    return error_result(None, code, f"FeatBit: {reason}")


def _context_id(privacy: Privacy, unit_key: UnitKey) -> dict[str, str]:
    context_id = privacy.context_id(unit_key)
    return {} if context_id is None else {meta.CONTEXT_ID: context_id}


class _Mismatch(ValueError):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def typed_value(view: FlagView, variation_id: str, flag_type: FlagType) -> Any:
    """A variation's value as the Python type OpenFeature expects; raises _Mismatch."""
    try:
        value = view.value_of(variation_id)
    except ValueParseError as error:
        raise _Mismatch(ErrorCode.PARSE_ERROR, str(error)) from error
    except KeyError as error:
        raise _Mismatch(
            ErrorCode.GENERAL, f"flag {view.key!r} has no variation {variation_id!r}"
        ) from error
    return coerce(value, flag_type, view.key)


def coerce(value: Any, flag_type: FlagType, flag_key: str) -> Any:
    """``value`` as the Python type OpenFeature expects for ``flag_type``."""
    if (
        flag_type is FlagType.FLOAT
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        return float(value)
    if flag_type is FlagType.INTEGER and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch(
            ErrorCode.TYPE_MISMATCH, f"flag {flag_key!r} served {value!r}, not an integer"
        )
    return value


def reason_for(view: FlagView, featbit_reason: str) -> str:
    """FeatBit's reason string mapped to OpenFeature's :class:`Reason`."""
    if featbit_reason == LEDGER_REASON:
        return Reason.CACHED
    if featbit_reason == "flag off":
        return Reason.DISABLED
    if featbit_reason == "target match":
        return Reason.TARGETING_MATCH
    if featbit_reason == "rule match":
        return Reason.SPLIT if view.rule_match_is_split() else Reason.TARGETING_MATCH
    if featbit_reason == "fall through all rules":
        if view.is_static:
            return Reason.STATIC
        return Reason.SPLIT if view.rollouts[0].is_split else Reason.DEFAULT
    return Reason.UNKNOWN


def error_result(
    default: Any,
    code: ErrorCode,
    message: str,
    metadata: Mapping[str, str | int] | None = None,
) -> FlagResolutionDetails[Any]:
    """The caller's own default with an error code; ``reason=ERROR`` and no variant."""
    return FlagResolutionDetails(
        value=default,
        error_code=code,
        error_message=message,
        reason=Reason.ERROR,
        variant=None,
        flag_metadata=dict(metadata or {}),
    )


def _with_default(
    result: FlagResolutionDetails[Any],
    default: Any,
    metadata: Mapping[str, str | int] | None = None,
) -> FlagResolutionDetails[Any]:
    return error_result(
        default, result.error_code or ErrorCode.GENERAL, result.error_message or "", metadata
    )
