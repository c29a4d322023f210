"""The OpenFeature conformance flag set (spec ``specification/assets/gherkin/test-flags.json``)
spelled as FeatBit flags.

The spec defines its flags for an in-memory provider: named variants, a default variant and a CEL
``contextEvaluator``. Here each one becomes what a FeatBit user would configure: named variations
(so variants read ``on``/``greeting``/``ten``...), the default variant served by the fallthrough,
and targeting written as FeatBit rule conditions. A disabled flag's ``disabledVariationId`` is its
default variant, so a provider that served FeatBit's off variation instead of the caller's
fallback would fail the DISABLED scenarios rather than pass them by coincidence.

Not expressible in FeatBit, hence absent: ``flagMetadata`` (FeatBit flags carry tags, not typed
key/value metadata; ``metadata-flag`` is defined without it) and ``null-default-flag`` /
``undefined-default-flag`` (a FeatBit fallthrough always serves a variation; no scenario uses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.support import flags as fl

BALLMER = "ballmer@macrosoft.com"

TEMPLATE: dict[str, Any] = {
    "showImages": True,
    "title": "Check out these pics!",
    "imagesPerPage": 100,
}


def _named(
    key: str,
    variants: Sequence[tuple[str, Any]],
    default: str,
    *,
    enabled: bool = True,
    rules: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A flag whose fallthrough serves the ``default`` variant to everyone.

    When the flag is off FeatBit serves its ``disabledVariationId``, set to the same variant.
    """
    names = [name for name, _ in variants]
    index = names.index(default)
    return fl.flag(
        key,
        [value for _, value in variants],
        names=names,
        serve=index,
        off_index=index,
        enabled=enabled,
        rules=rules,
    )


def _variation_id(key: str, variants: Sequence[tuple[str, Any]], name: str) -> str:
    """The id ``fl.flag`` gives the variation called ``name`` (``<key>-v<index>``)."""
    return f"{key}-v{[n for n, _ in variants].index(name)}"


def _targeted(
    key: str,
    variants: Sequence[tuple[str, Any]],
    default: str,
    target: str,
    conditions: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """A flag serving ``target`` to users matching every condition, ``default`` to the rest."""
    rule = fl.rule(
        conditions,
        fl.serve(_variation_id(key, variants, target)),
        rule_id=f"{key}-rule",
    )
    return _named(key, variants, default, rules=[rule])


BOOLEANS = [("on", True), ("off", False)]
STRINGS = [("greeting", "hi"), ("parting", "bye")]
INTEGERS = [("one", 1), ("ten", 10)]
FLOATS = [("tenth", 0.1), ("half", 0.5)]
OBJECTS: list[tuple[str, Any]] = [("empty", {}), ("template", TEMPLATE)]
INTERNAL_EXTERNAL = [("internal", "INTERNAL"), ("external", "EXTERNAL")]

#: The base variants and default of each typed flag (``<type>-flag``, ``<type>-disabled-flag``).
BASE: dict[str, tuple[list[tuple[str, Any]], str]] = {
    "boolean": (BOOLEANS, "on"),
    "string": (STRINGS, "greeting"),
    "integer": (INTEGERS, "ten"),
    "float": (FLOATS, "half"),
    "object": (OBJECTS, "template"),
}

#: ``zero`` and ``non-zero`` variants of each type; FeatBit stores them as strings
#: ("false", "", "0", "0.0", "{}").
ZEROS: dict[str, list[tuple[str, Any]]] = {
    "boolean": [("zero", False), ("non-zero", True)],
    "string": [("zero", ""), ("non-zero", "str")],
    "integer": [("zero", 0), ("non-zero", 1)],
    "float": [("zero", 0.0), ("non-zero", 1.0)],
    "object": [("zero", {}), ("non-zero", TEMPLATE)],
}


def conformance_flags() -> list[dict[str, Any]]:
    """Every flag the vendored feature files evaluate, as FeatBit flag JSON."""
    flags: list[dict[str, Any]] = []
    for kind, (variants, default) in BASE.items():
        flags.append(_named(f"{kind}-flag", variants, default))
        flags.append(_named(f"{kind}-disabled-flag", variants, default, enabled=False))
    for kind, variants in ZEROS.items():
        flags.append(_named(f"{kind}-zero-flag", variants, "zero"))
        flags.append(
            _targeted(
                f"{kind}-targeted-zero-flag",
                variants,
                "zero",
                "zero",
                [fl.condition("email", "Equal", BALLMER)],
            )
        )
    flags.append(_named("metadata-flag", BOOLEANS, "on"))
    flags.append(
        _targeted(
            "complex-targeted",
            INTERNAL_EXTERNAL,
            "external",
            "internal",
            [
                fl.condition("customer", "IsFalse", "IsFalse"),
                fl.condition("email", "Equal", BALLMER),
                fl.condition("age", "BiggerThan", "10"),
            ],
        )
    )
    flags.append(_named("wrong-flag", [("one", "uno"), ("two", "dos")], "one"))
    # evaluation.feature (v1) only.
    flags.append(
        _targeted(
            "context-aware",
            INTERNAL_EXTERNAL,
            "external",
            "internal",
            [
                fl.condition("fn", "Equal", "Sulisław"),
                fl.condition("ln", "Equal", "Świętopełk"),
                fl.condition("age", "Equal", "29"),
                fl.condition("customer", "IsFalse", "IsFalse"),
            ],
        )
    )
    return flags
