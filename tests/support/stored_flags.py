"""FeatBit flag data put straight into an ``fbclient`` data storage, past FeatBit's own
validation: what a storage plug-in (``Config(data_storage=...)``) may hold, malformed flags
included, for the paths no validated bootstrap reaches."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fbclient.category import FEATURE_FLAGS
from fbclient.client import FBClient
from fbclient.config import Config
from fbclient.data_storage import InMemoryDataStorage
from fbclient.streaming import _data_to_dict

from tests.support import flags as fl

#: The SDK's in-store form of each flag (``variationMap`` added), by flag key; edit it in place.
StoredEdit = Callable[[dict[str, dict[str, Any]]], None]


def stored(
    flags: Sequence[Mapping[str, Any]], edit: StoredEdit | None = None
) -> tuple[int, dict[Any, dict[str, dict[str, Any]]]]:
    """``flags`` as the SDK stores a data-sync: its version and data (``edit`` sees them)."""
    version, data = _data_to_dict(fl.data_sync(flags)["data"])
    if edit is not None:
        edit(data[FEATURE_FLAGS])
    return version, data


def fill(
    storage: InMemoryDataStorage,
    flags: Sequence[Mapping[str, Any]],
    edit: StoredEdit | None = None,
) -> InMemoryDataStorage:
    """``storage`` holding ``flags`` as the SDK stores a data-sync."""
    version, data = stored(flags, edit)
    assert storage.init(data, version)
    return storage


def offline_client(storage: InMemoryDataStorage) -> FBClient:
    """An offline client over ``storage`` (nothing on the network)."""
    config = Config(
        "x" * 44, "http://127.0.0.1:9", "ws://127.0.0.1:9", offline=True, data_storage=storage
    )
    return FBClient(config, start_wait=0)
