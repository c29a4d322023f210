"""The one module that reaches into ``fbclient``'s internals.

Read against fb-python-sdk 1.1.10, 1.2.0 and 1.2.1 (:data:`CHECKED_AGAINST`), which agree on
everything used here: ``FBClient._config``, ``_get_flag_internal``, ``_evaluator`` (and its
``evaluate`` / ``_match_any_rule``), ``_event_handler``, ``_event_processor``;
``FBUser.from_dict`` / ``get`` and its ``_commons`` / ``_customs``; ``FlagEvent``;
``InMemoryDataStorage`` (and its private dict of entities); ``build_http_factory``;
``VariationSplittingAlgorithm``; ``FBClient._update_processor`` and ``Streaming``'s WebSocket
app (``_Streaming__wsapp``, websocket-client 1.8's ``WebSocketApp.sock`` / ``WebSocket.sock`` and
``WebSocket.close``). An SDK upgrade is checked here and nowhere else.

It bridges, it does not decide: FeatBit's evaluator stays the source of truth for bucketing and
targeting, :mod:`.experiment_inclusion` decides ``sendToExperiment``, and the resolver decides
what to serve.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from fbclient.category import FEATURE_FLAGS
from fbclient.common_types import FBUser
from fbclient.data_storage import InMemoryDataStorage
from fbclient.event_processor import DefaultEventProcessor, NullEventProcessor
from fbclient.event_types import FlagEvent
from fbclient.streaming import Streaming
from fbclient.utils.http_client import build_http_factory
from fbclient.utils.variation_splitting_algorithm import VariationSplittingAlgorithm

from .experiment_inclusion import sent_to_experiment

logger = logging.getLogger("featbit_experiments")

CHECKED_AGAINST = ("1.1.10", "1.2.0", "1.2.1")

#: FeatBit's failure reasons, as ``FBClient.variation_detail`` reports them.
NOT_READY = "client not ready"
FLAG_NOT_FOUND = "flag not found"
USER_NOT_SPECIFIED = "user not specified"
EVALUATION_ERROR = "error in evaluation"

#: How long stopping the stream waits for FeatBit's answer to its close frame (websocket-client
#: waits 3 s, and a stalled server never answers).
STREAM_CLOSE_WAIT = 0.5

FlagReader = Callable[[str], "Mapping[str, Any] | None"]
_EVALUATOR_INTERNALS = ("_evaluator", "_get_flag_internal", "_event_handler")


def flag_reader(client: Any) -> FlagReader:
    """Reads a flag as ``fbclient`` stores it (None when unknown or archived).

    ``InMemoryDataStorage.get`` takes a read-write lock built on a condition variable, which
    every evaluation thread would queue on. A flag present in the store is read with two dict
    lookups instead (each atomic, and the store replaces a flag's dict rather than editing
    it); anything else (a miss, an archived flag, a full sync clearing the store) goes through
    ``get``, which waits for a writer to finish."""
    storage = client._config.data_storage
    locked_get = storage.get
    entities = getattr(storage, "_InMemoryDataStorage__storage", None)
    if not isinstance(storage, InMemoryDataStorage) or not isinstance(entities, dict):
        return lambda key: locked_get(FEATURE_FLAGS, key)

    def read(key: str) -> Mapping[str, Any] | None:
        flags = entities.get(FEATURE_FLAGS)
        flag = None if flags is None else flags.get(key)
        if flag is None or flag.get("isArchived"):
            return locked_get(FEATURE_FLAGS, key)  # type: ignore[no-any-return]
        return flag  # type: ignore[no-any-return]

    return read


def fb_user(user: dict[str, str]) -> Any:
    """``FBUser.from_dict(user)`` for a user built by ``featbit_user`` (string values, a
    non-blank key and name, no reserved attribute among the rest), without the copy and the
    per-attribute checks ``from_dict`` repeats; any other user goes through ``from_dict``."""
    if not _FAST_USERS:
        return FBUser.from_dict(user)
    key, name = user.get("key"), user.get("name")
    if not (isinstance(key, str) and key.strip() and isinstance(name, str) and name.strip()):
        return FBUser.from_dict(user)  # raises ValueError as fbclient does
    made = FBUser.__new__(FBUser)
    made._commons = {"keyid": key, "name": name}
    made._customs = {k: v for k, v in user.items() if k not in _BUILT_INS}
    return made


_BUILT_INS = frozenset({"key", "name", "keyid"})


def _fast_users_match() -> bool:
    """Whether ``fb_user``'s shortcut builds what ``FBUser.from_dict`` builds on this SDK."""
    user = {"key": "k", "name": "n", "a": "b"}
    try:
        reference = FBUser.from_dict(user)
        made = FBUser.__new__(FBUser)
        made._commons = {"keyid": "k", "name": "n"}
        made._customs = {"a": "b"}
        return bool(reference.to_json_dict() == made.to_json_dict() and made.get("key") == "k")
    except Exception:
        return False


_FAST_USERS = _fast_users_match()


def user_attribute(user: dict[str, str], name: str) -> str:
    """``user``'s value for ``name`` as fbclient resolves a dispatch key: the built-ins
    (``key``/``keyId``, ``name``) in any case, custom attributes exactly; ``""`` if missing."""
    try:
        return str(FBUser.from_dict(user).get(name, "") or "")
    except ValueError:
        return ""


def in_rollout(key: str, bounds: Sequence[float]) -> bool:
    """FeatBit's bucketing: whether ``key`` hashes into ``[low, high)`` (``[0, 1]``: always)."""
    if len(bounds) != 2:
        return False
    return bool(VariationSplittingAlgorithm(key, list(bounds)).is_key_belongs_to_percentage())


class _FlagInsight(FlagEvent):  # type: ignore[misc]
    """``fbclient``'s flag event plus the ``sendToExperiment`` 1.2.1 no longer writes.

    Every processor that serializes with ``to_json_dict()`` (``fbclient``'s own, ours, a test
    capture) sends the field; on 1.1.x/1.2.0 it replaces the SDK's own value, never doubles it.
    """

    in_experiment = False

    def to_json_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = super().to_json_dict()
        for variation in body.get("variations") or ():
            variation["sendToExperiment"] = self.in_experiment
        return body


class Evaluation(NamedTuple):
    """One successful FeatBit evaluation whose insight has not been sent yet."""

    variation_id: str
    reason: str
    in_experiment: bool
    send_insight: Callable[[], None]


class SdkEvaluator:
    """Evaluates as ``FBClient.variation_detail`` does, with FeatBit's own evaluator, and hands
    back the insight (carrying ``sendToExperiment``) to send now or once the ledger has decided.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._evaluator = client._evaluator
        self._flag = client._get_flag_internal
        self._send = client._event_handler

    @classmethod
    def for_client(cls, client: Any) -> SdkEvaluator | None:
        """An evaluator for ``client``, or None when its SDK lacks the internals used here."""
        if all(hasattr(client, name) for name in _EVALUATOR_INTERNALS):
            return cls(client)
        return None

    def evaluate(
        self, flag_key: str, user: dict[str, str], flag: Mapping[str, Any] | None = None
    ) -> Evaluation | str:
        """The evaluation, or FeatBit's reason for failing (``NOT_READY``, ...). ``flag``: the
        flag as just read from the client's store (it is read again when not given)."""
        if flag is None and not self._client.initialize:
            return NOT_READY
        try:
            if flag is None:
                flag = self._flag(flag_key) if flag_key else None
            if not flag:
                return FLAG_NOT_FOUND
            try:
                user_of_sdk = fb_user(user)
            except ValueError:
                return USER_NOT_SPECIFIED
            insight = _FlagInsight(user_of_sdk)
            result = self._evaluator.evaluate(flag, user_of_sdk, insight)
            if result is None or not result.is_success:
                return EVALUATION_ERROR
        except Exception:
            logger.exception("FeatBit evaluation of %r failed", flag_key)
            return EVALUATION_ERROR
        variation_id, reason = str(result.id), str(result.reason)
        insight.in_experiment = self._in_experiment(flag, user_of_sdk, reason, variation_id)
        send = self._send
        return Evaluation(variation_id, reason, insight.in_experiment, lambda: send(insight))

    def _in_experiment(
        self, flag: Mapping[str, Any], user: Any, reason: str, variation_id: str
    ) -> bool:
        try:
            return sent_to_experiment(
                flag,
                reason,
                variation_id,
                attribute_of=lambda name: str(user.get(name, "") or ""),
                rule_matches=lambda rule: bool(self._evaluator._match_any_rule(user, rule)),
                in_rollout=in_rollout,
            )
        except Exception:  # a malformed flag must not fail an evaluation FeatBit served
            logger.exception("could not decide sendToExperiment for flag %r", flag.get("key"))
            return False


def client_gaps(client: Any, known_processors: tuple[type, ...] = ()) -> list[str]:
    """What a client lacks for what the provider promises (for a log line), once
    :func:`accept_resent_versions` has been applied.

    ``known_processors``: event processors besides ``fbclient``'s own known to post
    ``event.to_json_dict()``."""
    gaps: list[str] = []
    storage = getattr(getattr(client, "_config", None), "data_storage", None)
    resync_ok = getattr(storage, "_accepts_resent_versions", False)
    if not getattr(client, "is_offline", lambda: True)() and not resync_ok:
        gaps.append(
            "its data storage is not fbclient's in-memory one, so after a reconnect to a FeatBit "
            "server comparing updatedAt in microseconds (5.0 on PostgreSQL) it may refuse the "
            "re-sent flags and leave the provider STALE"
        )
    processor = event_processor_of(client)
    if processor is not None and not (
        serializes_with_to_json(processor) or isinstance(processor, known_processors)
    ):
        gaps.append(
            f"insights go through {type(processor).__name__}: FeatBit's experiment analysis "
            "counts an exposure only if it posts event.to_json_dict() (which carries "
            "sendToExperiment)"
        )
    return gaps


def event_processor_of(client: Any) -> Any:
    """The client's insight event processor (None when it has none we can see)."""
    return getattr(client, "_event_processor", None)


def serializes_with_to_json(processor: Any) -> bool:
    """Whether ``processor`` is one of ``fbclient``'s, known to send ``event.to_json_dict()``."""
    return isinstance(processor, (DefaultEventProcessor, NullEventProcessor))


def insights_http(config: Any, pool_size: int) -> Any:
    """A urllib3 pool posting insights with the client's secret, headers, proxy and TLS."""
    return build_http_factory(config).create_http_client(1, pool_size)


def accept_resent_versions(client: Any) -> bool:
    """Make ``client``'s in-memory store treat a re-sent copy of the version it holds as
    applied; False when the client keeps flags in a store this cannot adjust.

    ``fbclient`` keeps each entity's ``updatedAt`` rounded to milliseconds and reconnects
    asking for what is newer than that. A FeatBit server comparing at full precision (5.0 on
    PostgreSQL stores microseconds) sends the newest entity again; ``InMemoryDataStorage``
    refuses it as not newer, the streaming layer then never reports OK, and the provider stays
    STALE until some flag changes. With this, a patch carrying exactly the held version
    succeeds without writing anything; older versions are still refused. Idempotent.
    """
    config = getattr(client, "_config", None)
    storage = getattr(config, "data_storage", None)
    if not isinstance(storage, InMemoryDataStorage):
        return False
    if getattr(storage, "_accepts_resent_versions", False):
        return True
    refusing_upsert = storage.upsert

    def upsert(kind: Any, key: str, item: dict[str, Any], version: int = 0) -> bool:
        if refusing_upsert(kind, key, item, version):
            return True
        held = _held_version(storage, kind, key)
        return isinstance(version, int) and version > 0 and held == version

    storage.upsert = upsert
    storage._accepts_resent_versions = True
    return True


def _held_version(storage: Any, kind: Any, key: str) -> int | None:
    """The version ``storage`` holds for an entity, archived ones included (``get`` hides
    those, so the store's own dict is read; a single dict lookup needs no lock)."""
    held = storage._InMemoryDataStorage__storage.get(kind, {}).get(key)
    return None if held is None else int(held.get("timestamp") or 0)


def stop_streaming(client: Any, close_wait: float = STREAM_CLOSE_WAIT) -> bool:
    """Stop ``client``'s FeatBit stream so that its thread has ended when this returns;
    False when the client has no ``fbclient`` stream (offline, or its own update processor),
    which ``client.stop()`` then stops as usual (it finds this one stopped).

    ``Streaming.stop()`` sends a close frame, waits up to 3 s in websocket-client for the
    answer (a stalled server never sends one), closes the socket and joins the thread for the
    websocket timeout + 1 s. In about half the runs the thread has gone back to waiting on the
    socket's selector just as the socket is closed, which removes it from the selector: the
    thread then sleeps out websocket-client's 10 s, the join gives up after 6 s, and the thread
    is left behind. Here the close waits ``close_wait`` at most, and the socket is shut down
    (both ways) while a duplicate keeps it registered, which wakes the thread wherever it waits.
    """
    streaming = getattr(client, "_update_processor", None)
    if not isinstance(streaming, Streaming):
        return False
    held = _hold_stream_socket(streaming, close_wait)
    try:
        streaming.stop()
    finally:
        if held is not None:
            held.close()
    return True


def _hold_stream_socket(streaming: Any, close_wait: float) -> socket.socket | None:
    """A duplicate of the open WebSocket's socket, shut down once the stream closes it (None
    when no connection is open); its close waits ``close_wait`` at most for FeatBit's answer."""
    connection = getattr(getattr(streaming, "_Streaming__wsapp", None), "sock", None)
    raw = getattr(connection, "sock", None)
    if connection is None or not isinstance(raw, socket.socket):
        return None
    try:
        held = socket.fromfd(raw.fileno(), raw.family, raw.type)  # a TLS socket cannot dup()
    except (OSError, ValueError):
        return None
    close = connection.close

    def close_briefly(*args: Any, **kwargs: Any) -> None:
        try:
            close(*args[:2], **{**kwargs, "timeout": close_wait})
        finally:
            with contextlib.suppress(OSError):
                held.shutdown(socket.SHUT_RDWR)

    connection.close = close_briefly
    return held
