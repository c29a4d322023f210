"""One scenario's state: its OpenFeature domain, the providers it built, the flag it asked
for, the context it assembled and the details it got back. Steps read and write it; nothing
here asserts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationOptions

from featbit_experiments import FeatBitProvider
from tests.conformance.providers import Providers
from tests.conformance.values import Details, FlagRequest, evaluate


@dataclass
class World:
    """What one scenario has set up and observed so far."""

    domain: str
    providers: Providers
    provider: FeatBitProvider | None = None
    flag: FlagRequest | None = None
    attributes: dict[str, Any] | None = None
    details: Details | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _client: OpenFeatureClient | None = None

    @property
    def client(self) -> OpenFeatureClient:
        """One client for the scenario: hooks and client-level context live on the object."""
        if self._client is None:
            self._client = api.get_client(self.domain)
        return self._client

    @property
    def context(self) -> EvaluationContext | None:
        """The invocation context the steps built, or None when no step gave one."""
        if self.attributes is None:
            return None
        return EvaluationContext(attributes=self.attributes)

    def add_attribute(self, key: str, value: Any) -> None:
        self.attributes = {**(self.attributes or {}), key: value}

    def evaluate(self, options: FlagEvaluationOptions | None = None) -> Details:
        assert self.flag is not None, "no flag step ran before the evaluation"
        self.details = evaluate(self.client, self.flag, self.context, options)
        return self.details

    @property
    def result(self) -> Details:
        assert self.details is not None, "the flag was not evaluated"
        return self.details
