"""Find the FeatBit provider behind OpenFeature, for what the handler and router need from it:
its event sinks (guardrails), its privacy setting and whether any provider is set at all.

The handler is usually built before the application calls ``api.set_provider(...)``, so the
provider is looked up when a turn needs it (one registry lookup), unless one was given. This
module only finds the provider; it never sets or changes one.
"""

from __future__ import annotations

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.provider import FeatureProvider
from openfeature.provider.no_op_provider import NoOpProvider

from featbit_experiments.guardrails import EventFanout
from featbit_experiments.privacy import Privacy
from featbit_experiments.provider import FeatBitProvider


class ProviderLink:
    """The FeatBit provider a handler reports to: the one given, else the OpenFeature
    provider of ``client`` (or of the default domain) when it is a :class:`FeatBitProvider`.

    Args:
        provider: A provider to use always.
        client: The OpenFeature client whose provider to look up (e.g. the outcomes' client).
    """

    __slots__ = ("_client", "_provider")

    def __init__(
        self, provider: FeatBitProvider | None = None, client: OpenFeatureClient | None = None
    ) -> None:
        self._provider = provider
        # The default domain's client is built once; its ``provider`` is looked up in
        # OpenFeature's registry on every call, so a provider set later is still found.
        self._client = client if client is not None else api.get_client()

    def provider(self) -> FeatBitProvider | None:
        if self._provider is not None:
            return self._provider
        found = self._client.provider
        return found if isinstance(found, FeatBitProvider) else None

    def events(self) -> EventFanout | None:
        provider = self.provider()
        return provider.events if provider is not None else None

    def privacy(self) -> Privacy | None:
        provider = self.provider()
        return provider.privacy if provider is not None else None


def is_unset(provider: FeatureProvider) -> bool:
    """Whether OpenFeature has no provider here: its no-op one serves every default with a
    plain DEFAULT reason and no error, so a router would quietly run its default branch."""
    return isinstance(provider, NoOpProvider)
