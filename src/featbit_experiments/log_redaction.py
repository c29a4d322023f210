"""Privacy for log records: with hashing or omission on, no raw unit ID leaves through fbclient's
logging either.

The FeatBit key is the unit's ID, and fbclient (read against fb-python-sdk 1.2.x) logs it: every
evaluation writes ``FB Python SDK: User <key>, Feature Flag <flag>, Flag Value <value>`` at INFO,
and a data-sync message it cannot apply is logged whole, with the flag's targeted user keys. A
:class:`logging.Filter` on fbclient's logger rewrites the first with the key protected the way
:class:`~featbit_experiments.privacy.Privacy` protects it everywhere else (a pseudonym, or
``[omitted]``) and withholds the arguments of the second. The filter is process-wide, as
fbclient's logger is; with several providers alive it applies the strictest privacy any of them
asked for (omission over hashing). It changes records, never drops them, and never raises.

Our own records need no filter: they carry flag and experiment keys, never unit IDs, and events
logged by ``LoggingSink`` are scrubbed by the event fanout before any sink sees them.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref

from .privacy import Privacy, PrivacyMode

#: The loggers fbclient 1.2.x logs through (every module uses ``fbclient.utils.log``).
FBCLIENT_LOGGERS = ("fbclient.utils", "fbclient")

_EVALUATION = re.compile(
    r"^(?P<head>FB Python SDK: User )(?P<user>.*)"
    r"(?P<tail>, Feature Flag [A-Za-z0-9._\-]+, Flag Value .*)$",
    re.DOTALL,
)
_WITHHELD = "<withheld: unit IDs are private>"
_OMITTED = "[omitted]"


class RedactUnitIds(logging.Filter):
    """Protects the unit IDs in fbclient's log records (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._settings: weakref.WeakKeyDictionary[object, Privacy] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def protect_with(self, privacy: Privacy, owner: object) -> None:
        """Apply ``privacy`` for as long as ``owner`` (a provider) lives; raw is ignored."""
        if privacy.is_raw:
            return
        with self._lock:
            self._settings[owner] = privacy

    def filter(self, record: logging.LogRecord) -> bool:
        privacy = self._strictest()
        if privacy is None:
            return True
        message = record.msg
        if isinstance(message, str) and message.startswith("FB Python SDK: User "):
            record.msg = _protected_evaluation(message, record, privacy)
            record.args = None
        elif record.args:
            record.args = tuple(_WITHHELD for _ in _as_tuple(record.args))
        return True

    def _strictest(self) -> Privacy | None:
        if not self._settings:
            return None
        with self._lock:
            settings = list(self._settings.values())
        for privacy in settings:
            if privacy.mode is PrivacyMode.OMIT:
                return privacy
        return settings[0] if settings else None


def _protected_evaluation(message: str, record: logging.LogRecord, privacy: Privacy) -> str:
    if record.args:  # not the pre-formatted line this was written against: format it first
        message = record.getMessage()
    match = _EVALUATION.match(message)
    if match is None:
        return "FB Python SDK: User " + _WITHHELD
    protected = privacy.protect(match["user"])
    return match["head"] + (protected if protected is not None else _OMITTED) + match["tail"]


def _as_tuple(args: object) -> tuple[object, ...]:
    return args if isinstance(args, tuple) else (args,)


_FILTER = RedactUnitIds()


def redact_sdk_logs(privacy: Privacy, owner: object) -> RedactUnitIds:
    """Protect unit IDs in fbclient's log records with ``privacy`` while ``owner`` lives (a
    no-op for raw IDs); installs the process-wide filter on fbclient's loggers once."""
    _FILTER.protect_with(privacy, owner)
    if not privacy.is_raw:
        for name in FBCLIENT_LOGGERS:
            sdk_logger = logging.getLogger(name)
            if _FILTER not in sdk_logger.filters:
                sdk_logger.addFilter(_FILTER)
    return _FILTER
