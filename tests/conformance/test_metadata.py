"""``metadata.feature``: ordinary FeatBit flags resolve with empty flag metadata."""

from __future__ import annotations

import pytest
from pytest_bdd import scenario, scenarios

FEATURE = "features/metadata.feature"


@pytest.mark.skip(
    reason="FeatBit flags carry tags, not typed key/value metadata, so metadata-flag's "
    "flagMetadata cannot be configured in FeatBit"
)
@scenario(FEATURE, "Returns metadata")
def test_returns_metadata() -> None:
    """The provider adds metadata only to experiment flags (experiment key, unit, ...)."""


scenarios(FEATURE)
