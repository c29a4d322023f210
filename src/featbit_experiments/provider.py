"""``FeatBitProvider``: an OpenFeature provider over the real ``fbclient`` SDK that enforces
the unit key policy.

This module wires OpenFeature's provider contract (metadata, resolvers, lifecycle, status
events, tracking) to :class:`~featbit_experiments.resolver.FlagResolver` and
:class:`~featbit_experiments.tracking.OutcomeTracker`. It holds no evaluation logic itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fbclient.client import FBClient
from fbclient.config import Config
from fbclient.flag_change_notification import FlagChangedListener, FlagChangedNotice
from fbclient.status_types import State, StateType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderFatalError, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagType, FlagValueType
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from . import _sdk
from .bootstrap import checked_bootstrap, read_bootstrap
from .connection_check import check_connection_settings, describe_sync_failure
from .continuity import AssignmentLedger, AssignmentStore, InMemoryStore
from .continuity.variants import ServedVariants
from .errors import BootstrapError
from .exposures import DEFAULT_MAX_UNITS, ExposureRecorder, SeenKeys
from .featbit_evaluation import FeatBitEvaluation
from .flag_builder import Flag, bootstrap_document
from .flag_plans import FlagPlans
from .guardrails import EventFanout, EventSink, Guardrail, LoggingSink
from .insights import BoundedEventProcessor, InsightRejection
from .log_redaction import redact_sdk_logs
from .outcomes import OutcomeRecorder
from .policy import UnitPolicy
from .preflight.model import PreflightReport
from .preflight.plan import PreflightPlan
from .preflight.startup import startup_preflight
from .privacy import Privacy, id_fields_of
from .resolver import FlagResolver
from .sdk_logs import collapse_repeated_sdk_logs
from .telemetry import EvaluationTelemetry, GuardrailSpanEvents
from .tracking import OutcomeTracker
from .upkeep import UPKEEP

logger = logging.getLogger("featbit_experiments")

PROVIDER_NAME = "featbit-experiments"
_OFFLINE_SECRET = "offline-bootstrap"
_OFFLINE_URL = "http://127.0.0.1"
#: How long shutdown waits for the shared upkeep thread to end once no task is left.
_UPKEEP_SETTLE = 0.2


class _FlagChanges(FlagChangedListener):  # type: ignore[misc]
    def __init__(self, provider: FeatBitProvider) -> None:
        self._provider = provider

    def on_flag_change(self, notice: FlagChangedNotice) -> None:
        self._provider._flag_changed(str(notice.flag_key))


class FeatBitProvider(AbstractProvider):
    """OpenFeature provider for FeatBit with a randomization-unit key policy.

    Args:
        client: A FeatBit client. Build one with :meth:`offline` or :meth:`connect`, or pass
            the application's own.
        policy: The unit key policy; by default, only flags tagged ``unit:<name>`` in FeatBit
            are experiments.
        sinks: Where exposure, outcome and guardrail events go (e.g. a ``JsonLinesSink``).
            Defaults to the ``featbit_experiments`` logger.
        owns_client: Whether :meth:`shutdown` stops the client. True for clients this class
            built; False by default for a client passed in.
        ready_timeout: How long :meth:`initialize` waits for FeatBit's first data sync.
        privacy: How unit IDs appear in telemetry, sinks and ``flag_metadata["contextId"]``
            (raw, HMAC-hashed or omitted); FeatBit always gets the real key.
        telemetry: Add ``feature_flag.evaluation`` and guardrail events to the current
            OpenTelemetry span (a no-op when no OpenTelemetry SDK is configured).
        exposure_keys: A shared set-if-absent store that deduplicates exposures across
            instances; by default each process deduplicates its own.
        store: Where the assignment ledger keeps each unit's first variation (an
            :class:`~featbit_experiments.continuity.AssignmentStore`); by default a bounded
            in-memory store, or a ``RedisStore`` shared by every instance.
        disabled_serves_default: OpenFeature-strict behaviour for a flag switched off in
            FeatBit: serve the caller's default with reason DISABLED (as the OpenFeature
            conformance suite expects) instead of FeatBit's disabled variation.
        preflight: Run the preflight's checks once FeatBit's data has synced and log each
            error and warning once (``True``, or a :class:`~featbit_experiments.preflight.
            PreflightPlan` saying how many instances run and what each experiment expects);
            the report is kept in :attr:`preflight_report`.
    """

    def __init__(
        self,
        client: Any,
        *,
        policy: UnitPolicy | None = None,
        sinks: Iterable[EventSink] | None = None,
        owns_client: bool = False,
        ready_timeout: float = 5.0,
        privacy: Privacy | None = None,
        telemetry: bool = True,
        exposure_keys: SeenKeys | None = None,
        store: AssignmentStore | None = None,
        disabled_serves_default: bool = False,
        preflight: PreflightPlan | bool = False,
    ) -> None:
        super().__init__()
        self.client = client
        self.policy = policy or UnitPolicy()
        self.privacy = privacy or Privacy()
        redact_sdk_logs(self.privacy, self)  # fbclient logs each user key (a unit ID) at INFO
        event_sinks = list(sinks if sinks is not None else (LoggingSink(),))
        if telemetry:
            event_sinks.append(GuardrailSpanEvents(self.policy.units))
        self.events = EventFanout(
            event_sinks, privacy=self.privacy, id_fields=id_fields_of(self.policy.units)
        )
        self.store: AssignmentStore = store if store is not None else InMemoryStore()
        self._owns_store = store is None
        featbit = FeatBitEvaluation(client, self.events)
        plans = FlagPlans(client, self.policy, self.events)
        ledger = AssignmentLedger(self.store, featbit, self.events)
        self.exposures = ExposureRecorder(
            self.events,
            privacy=self.privacy,
            shared=exposure_keys,
            ttl_seconds=getattr(self.store, "ttl_seconds", None),
            max_units=getattr(self.store, "max_entries", DEFAULT_MAX_UNITS),
        )
        self.outcomes = OutcomeRecorder(
            self.events, self.policy, ServedVariants(self.exposures, ledger, plans.view)
        )
        self.tracker = OutcomeTracker(
            client, self.policy, self.events, outcome_listeners=[self.outcomes.record]
        )
        self.resolver = FlagResolver(
            client,
            self.policy,
            self.events,
            plans=plans,
            featbit=featbit,
            ledger=ledger,
            exposures=self.exposures,
            privacy=self.privacy,
            experiment_assigned=self.tracker.note_experiment,
            evaluation_listener=(
                EvaluationTelemetry(PROVIDER_NAME, self.privacy).record if telemetry else None
            ),
            disabled_serves_default=disabled_serves_default,
        )
        self._owns_client = owns_client
        self._ready_timeout = ready_timeout
        self._lock = threading.Lock()
        self._listening = False
        self._shut_down = False
        self._last_state: StateType | None = None
        self._initializing = False
        self._flag_listener = _FlagChanges(self)
        self._preflight_plan = PreflightPlan() if preflight is True else (preflight or None)
        #: The start-up preflight's report, once it has run (``preflight=`` option).
        self.preflight_report: PreflightReport | None = None
        self._insights = _sdk.event_processor_of(client)
        if isinstance(self._insights, BoundedEventProcessor):
            self._insights.rejection_listeners.append(self._insights_rejected)
        # Back to READY after a reconnect to a server comparing updatedAt in microseconds.
        resync_ok = _sdk.accept_resent_versions(client)
        if not (owns_client and resync_ok):
            for gap in _sdk.client_gaps(client, (BoundedEventProcessor,)):
                logger.warning("FeatBit client: %s", gap)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def offline(
        cls,
        bootstrap: str | Path | None = None,
        *,
        flags: Iterable[Flag | Mapping[str, Any]] | None = None,
        policy: UnitPolicy | None = None,
        sinks: Iterable[EventSink] | None = None,
        event_processor: Any = None,
        **options: Any,
    ) -> FeatBitProvider:
        """A provider on an offline FeatBit client fed from a bootstrap file (FeatBit's
        ``data-sync`` / ``latest-all`` JSON) or from flags defined in code
        (``flags=[Flag.string(...), ...]``, see :mod:`featbit_experiments.flag_builder`).
        Raises :class:`BootstrapError` naming the file when it is missing, empty or
        malformed, and :class:`~featbit_experiments.flag_validation.FlagDataError` for a flag
        FeatBit would refuse."""
        if (bootstrap is None) == (flags is None):
            raise BootstrapError("offline() takes a bootstrap file or flags=[...], one of them")
        if flags is not None:
            payload = checked_bootstrap(json.dumps(bootstrap_document(flags)), source="flags")
        else:
            assert bootstrap is not None
            payload = read_bootstrap(bootstrap)
        config = Config(
            _OFFLINE_SECRET,
            _OFFLINE_URL,
            _OFFLINE_URL,
            offline=True,
            event_processor_imp=event_processor,
        )
        client = FBClient(config, start_wait=0)
        if not client.initialize_from_external_json(payload):
            client.stop()
            source = bootstrap if bootstrap is not None else "flags"
            raise BootstrapError(f"{source}: the FeatBit SDK rejected the bootstrap data")
        return cls(client, policy=policy, sinks=sinks, owns_client=True, **options)

    @classmethod
    def connect(
        cls,
        env_secret: str,
        streaming_url: str,
        event_url: str,
        *,
        policy: UnitPolicy | None = None,
        sinks: Iterable[EventSink] | None = None,
        ready_timeout: float = 5.0,
        privacy: Privacy | None = None,
        telemetry: bool = True,
        exposure_keys: SeenKeys | None = None,
        store: AssignmentStore | None = None,
        disabled_serves_default: bool = False,
        preflight: PreflightPlan | bool = False,
        **config_options: Any,
    ) -> FeatBitProvider:
        """A provider on a FeatBit client streaming from a FeatBit server.

        The client is created without blocking; :meth:`initialize` (called by OpenFeature's
        ``set_provider``) waits up to ``ready_timeout`` for the first sync and then says in one
        line what failed and where (DNS, refused, TLS, a refused secret). Settings that cannot
        work (a URL scheme, swapped URLs, a secret not in FeatBit's format) raise
        :class:`ConfigurationError` here. The SDK's repeated log lines are collapsed (see
        :mod:`featbit_experiments.sdk_logs`). Extra keyword arguments go to
        ``fbclient.config.Config``; insight events go through a
        :class:`~featbit_experiments.insights.BoundedEventProcessor` unless
        ``event_processor_imp`` says otherwise (fbclient's own holds events without bound
        while the insights endpoint fails).
        """
        check_connection_settings(env_secret, streaming_url, event_url)
        collapse_repeated_sdk_logs()
        config_options.setdefault("event_processor_imp", BoundedEventProcessor)
        config = Config(env_secret, event_url, streaming_url, **config_options)
        client = FBClient(config, start_wait=0)
        return cls(
            client,
            policy=policy,
            sinks=sinks,
            owns_client=True,
            ready_timeout=ready_timeout,
            privacy=privacy,
            telemetry=telemetry,
            exposure_keys=exposure_keys,
            store=store,
            disabled_serves_default=disabled_serves_default,
            preflight=preflight,
        )

    # -- OpenFeature: metadata and lifecycle ----------------------------------------------

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Subscribe to FeatBit's status and flag changes; wait for the first data sync.

        Raises ProviderNotReadyError when FeatBit has not synced within ``ready_timeout``
        (evaluations then return PROVIDER_NOT_READY defaults and READY is emitted when data
        arrives), or ProviderFatalError when the client has given up for good.
        """
        self._initializing = True
        self._listen()
        status = self.client.update_status_provider
        try:
            ready = self.client.initialize or status.wait_for_OKState(self._ready_timeout)
            state = StateType.OK if ready else status.current_state.state_type
            self._last_state = state
        finally:
            # From here on, state changes are reported as events (READY after a failed start,
            # STALE on a dropped stream); the registry itself announces a successful start.
            self._initializing = False
        if ready:
            self._run_preflight()
            return
        message = self._sync_failure()
        logger.warning("%s", message)
        if state == StateType.OFF:
            raise ProviderFatalError(message)
        raise ProviderNotReadyError(message)

    def _sync_failure(self) -> str:
        """Why the first sync did not arrive, from the SDK's last recorded error."""
        error = self.client.update_status_provider.current_state.error_track
        config = getattr(self.client, "_config", None)  # fbclient 1.2: no public accessor
        where = getattr(config, "streaming_uri", None) or "the configured streaming URL"
        return describe_sync_failure(
            str(where),
            None if error is None else str(error.error_type),
            None if error is None else str(error.message),
            self._ready_timeout,
        )

    def shutdown(self) -> None:
        """Stop listening; when the provider owns the client, stop it within 2 s whatever
        FeatBit does (see :meth:`_stop_client`); close the ledger, the exposure recorder and
        the store it built; record what was lost at stop; flush the sinks. Idempotent."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        self._unlisten()
        if self._owns_client:
            self._stop_client()
        for closing in (
            self.resolver.ledger,
            self.exposures,
            self.store if self._owns_store else None,
        ):
            if closing is not None:
                try:
                    closing.close()
                except Exception:
                    logger.exception("%r failed to close", closing)
        UPKEEP.settle(_UPKEEP_SETTLE)
        self.events.flush()

    def _stop_client(self) -> None:
        """The insights' last deliveries and the stream's stop run at once: the processor's
        deadline starts first, then the stream is stopped (its thread ended), then
        ``client.stop()`` waits out what is left of the deadline. Insight events still held
        then are dropped, counted, logged and recorded as an ``insights_dropped`` guardrail."""
        insights = self._insights if isinstance(self._insights, BoundedEventProcessor) else None
        if insights is not None:
            insights.begin_stop()
        for stop, what in ((self._stop_stream, "stream"), (self.client.stop, "client")):
            try:
                stop()
            except Exception:
                logger.exception("FeatBit %s failed to stop cleanly", what)
        if insights is not None:
            counts = insights.counts()
            if counts.dropped_at_stop:
                self.events.guardrail(
                    Guardrail.INSIGHTS_DROPPED,
                    f"{counts.dropped_at_stop} FeatBit insight event(s) dropped at shutdown: "
                    "not delivered before the stop deadline",
                    events=counts.dropped_at_stop,
                    delivered=counts.delivered,
                    accepted=counts.accepted,
                )

    def _stop_stream(self) -> None:
        _sdk.stop_streaming(self.client)

    def _listen(self) -> None:
        with self._lock:
            if self._listening:
                return
            self._listening = True
        self.client.update_status_provider.add_listener(self._state_changed)
        self.client.flag_tracker.add_flag_changed_listener(self._flag_listener)

    def _unlisten(self) -> None:
        if isinstance(self._insights, BoundedEventProcessor):
            with contextlib.suppress(ValueError):
                self._insights.rejection_listeners.remove(self._insights_rejected)
        with self._lock:
            if not self._listening:
                return
            self._listening = False
        try:
            self.client.update_status_provider.remove_listener(self._state_changed)
            self.client.flag_tracker.remove_flag_change_notifier(self._flag_listener)
        except Exception:
            logger.exception("could not remove FeatBit listeners")

    # -- FeatBit → OpenFeature events ----------------------------------------------------

    def _state_changed(self, state: State) -> None:
        kind = state.state_type
        previous, self._last_state = self._last_state, kind
        if kind == previous or self._initializing:
            return
        error = state.error_track
        message = f"{error.error_type}: {error.message}" if error is not None else None
        if kind == StateType.OK:
            self.emit_provider_ready(ProviderEventDetails(message="FeatBit data synced"))
            self._run_preflight()
        elif kind == StateType.INTERRUPTED:
            self.emit_provider_stale(
                ProviderEventDetails(message=message or "FeatBit stream interrupted")
            )
        elif kind == StateType.OFF and not self._shut_down:
            self.emit_provider_error(
                ProviderEventDetails(
                    message=message or "FeatBit client is off",
                    error_code=ErrorCode.PROVIDER_FATAL,
                )
            )

    def _run_preflight(self) -> None:
        """The start-up preflight, once, after the first data sync (when asked for)."""
        with self._lock:
            plan, self._preflight_plan = self._preflight_plan, None
        if plan is not None:
            self.preflight_report = startup_preflight(self.client, self.policy, self.store, plan)

    def _insights_rejected(self, rejection: InsightRejection) -> None:
        self.events.guardrail(
            Guardrail.INSIGHTS_REJECTED,
            f"{rejection.events} FeatBit insight event(s) dropped: {rejection.reason}",
            events=rejection.events,
            status=rejection.status,
        )

    def _flag_changed(self, flag_key: str) -> None:
        self.emit_provider_configuration_changed(
            ProviderEventDetails(flags_changed=[flag_key], message="FeatBit flag changed")
        )

    # -- OpenFeature: resolution --------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self.resolver.resolve(flag_key, default_value, FlagType.BOOLEAN, evaluation_context)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self.resolver.resolve(flag_key, default_value, FlagType.STRING, evaluation_context)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self.resolver.resolve(flag_key, default_value, FlagType.INTEGER, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self.resolver.resolve(flag_key, default_value, FlagType.FLOAT, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self.resolver.resolve(flag_key, default_value, FlagType.OBJECT, evaluation_context)

    # The async resolvers call the same code directly: evaluation reads FeatBit's in-memory
    # store and queues events without blocking, so there is no I/O to await and a thread hop
    # would only add latency. With a remote assignment store an experiment evaluation that has
    # to ask the store waits for one round trip, so it runs in a worker thread instead of
    # blocking the event loop; one the store's local copy answers stays on the loop.

    async def _aresolve(
        self,
        flag_key: str,
        default_value: Any,
        flag_type: FlagType,
        evaluation_context: EvaluationContext | None,
    ) -> FlagResolutionDetails[Any]:
        if not self.store.is_remote:
            return self.resolver.resolve(flag_key, default_value, flag_type, evaluation_context)
        at_once = self.resolver.resolve_at_once(
            flag_key, default_value, flag_type, evaluation_context
        )
        if at_once is not None:
            return at_once
        return await asyncio.to_thread(
            self.resolver.resolve, flag_key, default_value, flag_type, evaluation_context
        )

    async def resolve_boolean_details_async(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return await self._aresolve(flag_key, default_value, FlagType.BOOLEAN, evaluation_context)

    async def resolve_string_details_async(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return await self._aresolve(flag_key, default_value, FlagType.STRING, evaluation_context)

    async def resolve_integer_details_async(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return await self._aresolve(flag_key, default_value, FlagType.INTEGER, evaluation_context)

    async def resolve_float_details_async(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return await self._aresolve(flag_key, default_value, FlagType.FLOAT, evaluation_context)

    async def resolve_object_details_async(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return await self._aresolve(flag_key, default_value, FlagType.OBJECT, evaluation_context)

    # -- OpenFeature: tracking ----------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Send an outcome as a FeatBit metric keyed by its unit's ID (see OutcomeTracker)."""
        self.tracker.track(tracking_event_name, evaluation_context, tracking_event_details)

    # -- assignment continuity ----------------------------------------------------------

    def end_unit(self, unit: str, unit_id: str) -> bool:
        """Release a unit's assignments (``end_unit("conversation", conversation_id)``), so
        its next evaluation follows the current rollout, and everything else held for it (its
        exposure deduplication). Returns whether it had assignments; never raises (an
        unavailable store is a ``store_unavailable`` guardrail and False)."""
        self.exposures.forget_unit(unit, unit_id)
        self.policy.units.forget(unit, unit_id)
        if self.resolver.ledger is None:
            return False
        return self.resolver.ledger.end_unit(unit, unit_id)
