"""Typed values out of gherkin text, and the typed client call for each flag type.

The suites name a type (``Boolean``, ``String``, ``Integer``, ``Float``, ``Object``;
``hooks.feature`` writes it in lower case) and give every value as text. This module turns that
text into the Python value OpenFeature uses and calls the client's typed method for the type, so
each scenario exercises ``get_boolean_details``, ``get_integer_details``... as an application
would. It does not compare anything: assertions stay in the step definitions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagEvaluationOptions


class Kind(Enum):
    """A flag type as the feature files spell it."""

    BOOLEAN = "boolean"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    OBJECT = "object"

    @classmethod
    def named(cls, name: str) -> Kind:
        return cls(name.strip().lower())


def parse(kind: Kind | str, text: str) -> Any:
    """``text`` as a value of ``kind``; ``null`` is None for every kind but String.

    Object values arrive JSON-encoded with escaped quotes (``{\\"a\\": 1}``) because the feature
    files embed them in quoted step text and table cells.
    """
    kind = Kind.named(kind) if isinstance(kind, str) else kind
    if kind is Kind.STRING:
        return text
    if text == "null":
        return None
    if kind is Kind.BOOLEAN:
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not a gherkin boolean")
        return text == "true"
    if kind is Kind.INTEGER:
        return int(text)
    if kind is Kind.FLOAT:
        return float(text)
    return json.loads(text.replace('\\"', '"'))


def parse_optional_string(text: str) -> str | None:
    """A string cell where ``null`` means None (variants, error codes in ``hooks.feature``)."""
    return None if text == "null" else text


@dataclass(frozen=True)
class FlagRequest:
    """One ``a <type>-flag with key "..." and a fallback value "..."`` step."""

    kind: Kind
    key: str
    default: Any


Details = FlagEvaluationDetails[Any]


def _typed(client: OpenFeatureClient, kind: Kind) -> Callable[..., Details]:
    methods: dict[Kind, Callable[..., Details]] = {
        Kind.BOOLEAN: client.get_boolean_details,
        Kind.STRING: client.get_string_details,
        Kind.INTEGER: client.get_integer_details,
        Kind.FLOAT: client.get_float_details,
        Kind.OBJECT: client.get_object_details,
    }
    return methods[kind]


def _typed_async(client: OpenFeatureClient, kind: Kind) -> Callable[..., Awaitable[Details]]:
    methods: dict[Kind, Callable[..., Awaitable[Details]]] = {
        Kind.BOOLEAN: client.get_boolean_details_async,
        Kind.STRING: client.get_string_details_async,
        Kind.INTEGER: client.get_integer_details_async,
        Kind.FLOAT: client.get_float_details_async,
        Kind.OBJECT: client.get_object_details_async,
    }
    return methods[kind]


def evaluate(
    client: OpenFeatureClient,
    flag: FlagRequest,
    context: EvaluationContext | None = None,
    options: FlagEvaluationOptions | None = None,
) -> Details:
    """The client's typed ``get_<type>_details`` call for ``flag``."""
    return _typed(client, flag.kind)(flag.key, flag.default, context, options)


async def evaluate_async(
    client: OpenFeatureClient,
    flag: FlagRequest,
    context: EvaluationContext | None = None,
) -> Details:
    """The client's typed ``get_<type>_details_async`` call for ``flag``."""
    return await _typed_async(client, flag.kind)(flag.key, flag.default, context)


def same_value(actual: Any, expected: Any) -> bool:
    """Equal and of the same type, so ``True`` never passes for ``1`` or ``1`` for ``1.0``."""
    return type(actual) is type(expected) and actual == expected
