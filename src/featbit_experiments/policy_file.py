"""Load a :class:`UnitPolicy` from a TOML file.

A broken file is a start-up error naming the file and the problem; it never becomes a silently
empty policy. The format::

    [settings]
    strict_metrics = true              # refuse outcomes measured at another unit
    targeting_key_unit = "user"        # what OpenFeature's targeting key stands for

    [units.session]                    # a custom unit (or a redefined standard one)
    attribute = "sessionId"
    aliases = ["session_id"]

    [experiments.support-retrieval-test]
    unit = "conversation"
    rollback = "finish_active"         # or "contain"; the preflight errs when absent
    user_facing = true
    run_id = "2026-06"
    variants = { "v-b" = "retrieval_profile_b" }

    [metrics.resolved_without_escalation]
    unit = "conversation"
    experiments = ["support-retrieval-test"]
    direction = "higher_is_better"     # or "lower_is_better" (latency, errors)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import PolicyError
from .policy import Experiment, Metric, MetricDirection, RollbackMode, UnitPolicy
from .units import Unit, unit_from_mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_EXPERIMENT_FIELDS = {
    "unit",
    "experiment_key",
    "run_id",
    "user_facing",
    "allow_request_unit",
    "rollback",
    "variants",
    "kill_switch_wins",
}
_METRIC_FIELDS = {"unit", "experiments", "direction"}
_SETTINGS_FIELDS = {"strict_metrics", "targeting_key_unit", "read_tags"}


def load_policy(path: str | Path) -> UnitPolicy:
    """Read a policy file; raises :class:`PolicyError` naming the file on any problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{file}: policy file not found") from None
    except OSError as error:
        raise PolicyError(f"{file}: cannot read policy file: {error}") from error
    if not text.strip():
        raise PolicyError(f"{file}: policy file is empty")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{file}: not valid TOML: {error}") from error
    try:
        return policy_from_mapping(raw, source=str(file))
    except PolicyError as error:
        message = str(error)
        raise PolicyError(
            message if message.startswith(str(file)) else f"{file}: {message}"
        ) from None
    except (TypeError, ValueError) as error:
        raise PolicyError(f"{file}: {error}") from error


def policy_from_mapping(raw: Mapping[str, Any], *, source: str = "mapping") -> UnitPolicy:
    """Build a policy from already-parsed data (the TOML file's tables)."""
    unknown = set(raw) - {"settings", "units", "experiments", "metrics"}
    if unknown:
        raise PolicyError(f"unknown top-level tables: {', '.join(sorted(unknown))}")
    settings = _table(raw, "settings")
    _check_fields("settings", settings, _SETTINGS_FIELDS)
    units: list[Unit] = [
        unit_from_mapping(name, _as_table(f"units.{name}", spec))
        for name, spec in _table(raw, "units").items()
    ]
    experiments = [
        _experiment(key, _as_table(f"experiments.{key}", spec))
        for key, spec in _table(raw, "experiments").items()
    ]
    metrics = [
        _metric(name, _as_table(f"metrics.{name}", spec))
        for name, spec in _table(raw, "metrics").items()
    ]
    strict_metrics = _bool("settings.strict_metrics", settings.get("strict_metrics", False))
    read_tags = _bool("settings.read_tags", settings.get("read_tags", True))
    targeting_key_unit = settings.get("targeting_key_unit", "user")
    if not experiments and not metrics and not units:
        raise PolicyError("declares no experiments, metrics or units")
    return UnitPolicy(
        experiments,
        metrics,
        units=units,
        strict_metrics=strict_metrics,
        targeting_key_unit=None if targeting_key_unit in ("", None) else str(targeting_key_unit),
        read_tags=read_tags,
        source=source,
    )


def _experiment(key: str, spec: Mapping[str, Any]) -> Experiment:
    _check_fields(f"experiments.{key}", spec, _EXPERIMENT_FIELDS)
    if "unit" not in spec:
        raise PolicyError(f"experiments.{key}: 'unit' is required")
    rollback = spec.get("rollback")
    try:
        mode = None if rollback is None else RollbackMode(rollback)
    except ValueError:
        raise PolicyError(
            f"experiments.{key}: rollback must be 'finish_active' or 'contain', got {rollback!r}"
        ) from None
    variants = spec.get("variants", {})
    if not isinstance(variants, Mapping) or not all(isinstance(v, str) for v in variants.values()):
        raise PolicyError(f"experiments.{key}: 'variants' must map variation ids to names")
    return Experiment(
        flag_key=key,
        unit=_str(f"experiments.{key}.unit", spec["unit"]),
        experiment_key=_str(f"experiments.{key}.experiment_key", spec.get("experiment_key", "")),
        run_id=_str(f"experiments.{key}.run_id", spec.get("run_id", "")),
        user_facing=_bool(f"experiments.{key}.user_facing", spec.get("user_facing", True)),
        allow_request_unit=_bool(
            f"experiments.{key}.allow_request_unit", spec.get("allow_request_unit", False)
        ),
        rollback=mode,
        variant_names=dict(variants),
        kill_switch_wins=_bool(
            f"experiments.{key}.kill_switch_wins", spec.get("kill_switch_wins", True)
        ),
    )


def _metric(name: str, spec: Mapping[str, Any]) -> Metric:
    _check_fields(f"metrics.{name}", spec, _METRIC_FIELDS)
    if "unit" not in spec:
        raise PolicyError(f"metrics.{name}: 'unit' is required")
    experiments = spec.get("experiments", [])
    if not isinstance(experiments, list) or not all(isinstance(e, str) for e in experiments):
        raise PolicyError(f"metrics.{name}: 'experiments' must be a list of experiment keys")
    return Metric(
        name,
        _str(f"metrics.{name}.unit", spec["unit"]),
        tuple(experiments),
        direction=_direction(f"metrics.{name}.direction", spec.get("direction")),
    )


def _direction(name: str, value: Any) -> MetricDirection | None:
    if value is None:
        return None
    direction = MetricDirection.parse(value)
    if direction is None:
        allowed = " or ".join(repr(d.value) for d in MetricDirection)
        raise PolicyError(f"{name} must be {allowed}, got {value!r}")
    return direction


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return _as_table(name, raw.get(name, {}))


def _as_table(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{name} must be a table")
    return value


def _check_fields(name: str, spec: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise PolicyError(
            f"{name}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{name} must be true or false, got {value!r}")
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{name} must be a string, got {value!r}")
    return value
