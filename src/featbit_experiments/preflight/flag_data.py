"""The FeatBit flag data a preflight reads: a bootstrap file, the store of a running
``fbclient`` client, or a FeatBit environment reached through the SDK.

A bootstrap file is checked exactly as ``FeatBitProvider.offline`` checks it, so the preflight
never accepts a file the provider would refuse. A client's flags are read from
``config.data_storage`` (public in fb-python-sdk 1.1.10 to 1.2.x), the same store the resolver
reads; archived flags are left out, as the SDK leaves them out of evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..bootstrap import read_bootstrap
from ..errors import ConfigurationError

__all__ = ["flags_from_bootstrap", "flags_from_featbit", "flags_of_client"]


def flags_from_bootstrap(path: str | Path) -> list[dict[str, Any]]:
    """The flags in a bootstrap file; raises BootstrapError naming the file."""
    envelope = json.loads(read_bootstrap(path))
    return [dict(flag) for flag in envelope["data"]["featureFlags"] if not flag["isArchived"]]


def flags_of_client(client: Any) -> list[dict[str, Any]]:
    """The flags a running ``fbclient.FBClient`` holds now."""
    from fbclient.category import FEATURE_FLAGS

    stored: Mapping[str, Mapping[str, Any]] = client._config.data_storage.get_all(FEATURE_FLAGS)
    return [dict(flag) for flag in stored.values() if not flag.get("isArchived")]


def flags_from_featbit(
    env_secret: str,
    streaming_url: str,
    event_url: str,
    *,
    timeout: float = 10.0,
    **config_options: Any,
) -> list[dict[str, Any]]:
    """The flags of a live FeatBit environment, read through the SDK's first data sync
    (``config_options`` go to ``fbclient.config.Config``).

    Raises ConfigurationError naming the streaming URL when no sync arrives in ``timeout``
    seconds (wrong secret, unreachable server).
    """
    from fbclient.client import FBClient
    from fbclient.config import Config

    client = FBClient(Config(env_secret, event_url, streaming_url, **config_options), start_wait=0)
    try:
        if not client.update_status_provider.wait_for_OKState(timeout):
            raise ConfigurationError(
                f"FeatBit at {streaming_url} sent no flag data within {timeout:g}s "
                "(check the URL and the environment secret)"
            )
        return flags_of_client(client)
    finally:
        client.stop()
