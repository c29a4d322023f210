"""Flag resolution: the unit key policy applied on the way into FeatBit and OpenFeature's
result built on the way out.

For an experiment flag the FeatBit user key is the declared unit's ID, read from the context;
if it is missing or malformed the caller gets the default with an error code and a guardrail
is recorded: no other ID is ever substituted. Nothing here raises into the caller.

What can be decided once per flag version is (``flag_plans``); per evaluation this reads the
unit's ID, asks the ledger (which asks FeatBit for a new unit) for the variation, and looks its
result up. An :class:`~featbit_experiments.assignment.Assignment` is built only for whoever
needs one: an exposure not recorded yet, an open assignment scope, an extra listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagType, Reason

from . import metadata_keys as meta
from .assignment import Assignment
from .experiment_user import ExperimentUser
from .featbit_evaluation import FeatBitEvaluation
from .flag_plan import FlagPlan
from .flag_plans import FlagPlans
from .flag_results import Mismatch, Variation
from .flag_view import FlagView
from .guardrails import EventFanout, Guardrail, ThrottledGuardrail
from .ordinary_flags import resolve_ordinary
from .policy import Declaration, Experiment, Refusal, UnitPolicy
from .privacy import Privacy
from .results import Result, Served, error_result, no_variation, with_default
from .scope import open_scope
from .units import UnitKey, UnitKeyProblem

if TYPE_CHECKING:
    from .continuity.ledger import AssignmentLedger
    from .exposures import ExposureRecorder

logger = logging.getLogger("featbit_experiments")

#: Seconds between two ``provider_not_ready`` guardrails while FeatBit is not synced.
NOT_READY_REPORT_INTERVAL = 10.0
#: Seconds between two ``experiment_flag_missing`` guardrails for one declared flag key.
MISSING_FLAG_REPORT_INTERVAL = 60.0

AssignmentListener = Callable[[Assignment], None]
#: Sees every result, errors included (the provider's OpenTelemetry recorder); must not raise.
EvaluationListener = Callable[[str, FlagResolutionDetails[Any], EvaluationContext], None]


class FlagResolver:
    """Resolves flags through an ``fbclient.FBClient`` under a :class:`UnitPolicy`.

    Args:
        client: The FeatBit client (thread-safe; shared by every evaluation).
        policy: The unit key policy.
        events: Where guardrail events go.
        plans: The flags' plans over ``client`` (shared with the outcome recorder).
        featbit: FeatBit's evaluation step over ``client`` (shared with the ledger).
        ledger: Keeps units on their first variation (and asks FeatBit for a new unit).
        exposures: Records each unit's first exposure to each variant.
        privacy: Applied to the unit ID in ``flag_metadata["contextId"]`` (never to FeatBit's
            key).
        experiment_assigned: Told of each experiment a unit is assigned in (the outcome
            tracker, which keys outcomes by the experiment's unit).
        evaluation_listener: Sees every result (the provider's OpenTelemetry recorder).
        disabled_serves_default: OpenFeature-strict: a flag switched off in FeatBit serves the
            caller's default with reason DISABLED instead of FeatBit's disabled variation.
    """

    def __init__(
        self,
        client: Any,
        policy: UnitPolicy,
        events: EventFanout,
        *,
        plans: FlagPlans,
        featbit: FeatBitEvaluation,
        ledger: AssignmentLedger,
        exposures: ExposureRecorder,
        privacy: Privacy | None = None,
        experiment_assigned: Callable[[Experiment], None] | None = None,
        evaluation_listener: EvaluationListener | None = None,
        disabled_serves_default: bool,
    ) -> None:
        self._client = client
        self.policy = policy
        self.events = events
        self.plans = plans
        self.featbit = featbit
        self.ledger = ledger
        self.exposures = exposures
        self.privacy = privacy or Privacy()
        self._experiment_assigned = experiment_assigned
        self.evaluation_listener = evaluation_listener
        self.disabled_serves_default = disabled_serves_default
        #: Extra listeners, each given every experiment assignment.
        self.assignment_listeners: list[AssignmentListener] = []
        self._units = policy.units
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

    # -- public -------------------------------------------------------------------------

    def resolve(
        self,
        flag_key: str,
        default: Any,
        flag_type: FlagType,
        context: EvaluationContext | None,
    ) -> FlagResolutionDetails[Any]:
        """OpenFeature's result for one evaluation; never raises."""
        result = self._answer(flag_key, default, flag_type, context, at_once=False)
        assert result is not None  # only an at-once answer can be "would wait"
        return result

    def resolve_at_once(
        self,
        flag_key: str,
        default: Any,
        flag_type: FlagType,
        context: EvaluationContext | None,
    ) -> FlagResolutionDetails[Any] | None:
        """:meth:`resolve`, when the answer needs no round trip to a remote store (an ordinary
        flag, a refusal, a ledger hit from a remote store's local copy); None, with nothing
        recorded, when it would wait: then call :meth:`resolve` from a worker thread."""
        return self._answer(flag_key, default, flag_type, context, at_once=True)

    def _answer(
        self,
        flag_key: str,
        default: Any,
        flag_type: FlagType,
        context: EvaluationContext | None,
        at_once: bool,
    ) -> FlagResolutionDetails[Any] | None:
        """The one place an evaluation is guarded and reported to the listener."""
        if context is None:
            context = EvaluationContext()
        try:
            result = self._resolve(flag_key, default, flag_type, context, at_once)
        except _WouldWait:
            return None
        except Exception as error:  # the caller's request must never fail because of us
            logger.exception("unexpected error resolving flag %r", flag_key)
            result = error_result(default, ErrorCode.GENERAL, f"unexpected provider error: {error}")
        if self.evaluation_listener is not None:
            self.evaluation_listener(flag_key, result, context)
        return result

    def view(self, flag_key: str) -> FlagView | None:
        """The current view of a flag, or None when FeatBit does not know it."""
        return self.plans.view(flag_key)

    # -- the pipeline -------------------------------------------------------------------

    def _resolve(
        self,
        flag_key: str,
        default: Any,
        flag_type: FlagType,
        context: EvaluationContext,
        at_once: bool,
    ) -> FlagResolutionDetails[Any]:
        plan = self.plans.plan(flag_key)
        if plan is None:
            if not self._client.initialize:
                return self._not_ready_result(flag_key, default)
            # The first sync may have landed between the two reads: look again before calling
            # the flag unknown (FeatBit stores the data before it reports itself initialized).
            plan = self.plans.plan(flag_key)
            if plan is None:
                return self._not_found(flag_key, default)
        if flag_type not in plan.results.accepted:
            view = plan.view
            return error_result(
                default,
                ErrorCode.TYPE_MISMATCH,
                f"flag {flag_key!r} is a {view.variation_type} flag, asked for {flag_type.value}",
            )
        declaration = plan.declaration
        if isinstance(declaration, Refusal):
            self.events.guardrail(declaration.guardrail, declaration.message, flagKey=flag_key)
            return error_result(default, ErrorCode.GENERAL, declaration.message)
        if self.disabled_serves_default and not plan.view.enabled:
            # Nobody is assigned while a flag is off: no FeatBit call, no assignment.
            return FlagResolutionDetails(value=default, reason=Reason.DISABLED)
        if declaration is None:
            return resolve_ordinary(plan, default, flag_type, context, self.featbit, self.events)
        return self._resolve_experiment(plan, declaration, default, flag_type, context, at_once)

    def _not_ready_result(self, flag_key: str, default: Any) -> FlagResolutionDetails[Any]:
        self._not_ready.report(
            "FeatBit data is not synced yet; serving the default", flagKey=flag_key
        )
        return error_result(default, ErrorCode.PROVIDER_NOT_READY, "FeatBit data not synced")

    def _not_found(self, flag_key: str, default: Any) -> FlagResolutionDetails[Any]:
        """FeatBit is synced and has no such flag."""
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

    def _resolve_experiment(
        self,
        plan: FlagPlan,
        declaration: Declaration,
        default: Any,
        flag_type: FlagType,
        context: EvaluationContext,
        at_once: bool,
    ) -> FlagResolutionDetails[Any]:
        view, experiment, unit = plan.view, declaration.experiment, declaration.unit
        unit_key = self._units.read(unit, context)
        if isinstance(unit_key, UnitKeyProblem):
            self.events.guardrail(
                unit_key.guardrail,
                unit_key.message,
                flagKey=view.key,
                experimentKey=experiment.experiment_key,
                assignmentUnit=unit.name,
                errorCode=unit_key.error_code.value,
                **self._units.known_ids(context),
            )
            return error_result(default, unit_key.error_code, unit_key.message, plan.metadata)
        if plan.dispatch_mismatch is not None:
            message = plan.dispatch_mismatch
            self.events.guardrail(
                Guardrail.DISPATCH_KEY_MISMATCH,
                message,
                flagKey=view.key,
                experimentKey=experiment.experiment_key,
                assignmentUnit=unit.name,
                unitId=unit_key.value,
                **self._units.known_ids(context),
            )
            return error_result(default, ErrorCode.GENERAL, message, plan.metadata)

        unservable = plan.results.unservable.get(flag_type)
        if unservable is not None:
            message = (
                f"{unservable.message}; experiment {experiment.experiment_key!r} is refused for "
                f"{flag_type.value} evaluations: no unit is assigned, every caller gets its default"
            )
            self._refused(plan, experiment, unit_key, context, unservable.code, message)
            return error_result(default, unservable.code, message, plan.metadata)

        ledger = self.ledger
        served: Result | None = ledger.held(view, declaration, unit_key)
        turn = None
        if served is None:  # not a plain ledger hit: FeatBit may have to be asked
            if at_once and ledger.store.is_remote:
                raise _WouldWait  # nothing recorded yet: the caller asks again off the loop
            turn = ExperimentUser(self._units, plan, unit_key, context)
            served = ledger.assign(view, declaration, unit_key, turn.user)
        if not isinstance(served, Served):
            assert served is not None
            return with_default(served, default, plan.metadata)
        results = plan.results
        variation = results.variations.get(served.variation_id)
        if variation is None:
            refused = no_variation(view.key, served, default, plan.metadata)
            message = (
                f"{refused.error_message}; the unit holds it but is served the caller's default"
            )
            self._refused(
                plan, experiment, unit_key, context, ErrorCode.GENERAL, message,
                variationId=served.variation_id,
            )  # fmt: skip
            return refused
        value = results.value(variation, flag_type)
        assert not isinstance(value, Mismatch)  # results.unservable refused those above
        reason = results.reason(served.featbit_reason)
        self._assigned(plan, experiment, unit_key, variation, value, reason, context, turn)
        metadata = dict(variation.metadata)
        metadata[meta.UNIT_KEY_SOURCE] = unit_key.source
        context_id = self.privacy.context_id(unit_key)
        if context_id is not None:
            metadata[meta.CONTEXT_ID] = context_id
        return FlagResolutionDetails(
            value=value, reason=reason, variant=variation.variant, flag_metadata=metadata
        )

    def _refused(
        self,
        plan: FlagPlan,
        experiment: Experiment,
        unit_key: UnitKey,
        context: EvaluationContext,
        error_code: ErrorCode,
        message: str,
        **fields: Any,
    ) -> None:
        """A unit with a valid ID gets the default instead of an arm: ``fallback_used``."""
        self.events.guardrail(
            Guardrail.FALLBACK_USED,
            message,
            flagKey=plan.view.key,
            experimentKey=experiment.experiment_key,
            assignmentUnit=unit_key.unit,
            unitId=unit_key.value,
            errorCode=error_code.value,
            **fields,
            **self._units.known_ids(context),
        )

    def _assigned(
        self,
        plan: FlagPlan,
        experiment: Experiment,
        unit_key: UnitKey,
        variation: Variation,
        value: Any,
        reason: str,
        context: EvaluationContext,
        turn: ExperimentUser | None,
    ) -> None:
        """Tell whoever needs it of one assignment; an Assignment is built only for them."""
        if self._experiment_assigned is not None:
            self._experiment_assigned(experiment)
        exposures = self.exposures
        variation_id, variant = variation.variation_id, variation.variant
        expose = not exposures.exposed(
            experiment.experiment_key, experiment.run_id, unit_key.value, variation_id, variant
        )
        scope = open_scope()
        if not (expose or scope is not None or self.assignment_listeners):
            return  # a later turn on a variant already exposed: nobody needs the object
        assignment = Assignment(
            experiment=experiment,
            unit_key=unit_key,
            variation_id=variation_id,
            variant=variant,
            value=value,
            reason=reason,
            flag_version=plan.view.version,
            other_ids=(
                self._units.known_ids(context, unit_key) if turn is None else turn.other_ids()
            ),
        )
        if scope is not None:
            scope.append(assignment)
        listeners: Iterable[AssignmentListener] = self.assignment_listeners
        if expose:
            listeners = (exposures.record, *listeners)
        for listener in listeners:
            try:
                listener(assignment)
            except Exception:
                logger.exception("assignment listener %r failed", listener)


class _WouldWait(Exception):
    """An evaluation asked to answer at once would wait for a remote store."""
