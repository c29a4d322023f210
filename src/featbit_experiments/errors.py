"""Configuration errors raised at start-up.

These are the only exceptions the library raises on purpose, and only while it is being set up
(a bad policy file, a broken bootstrap file). Evaluation and tracking never raise: they return
the caller's default with an OpenFeature error code and record a guardrail event instead.
"""

from __future__ import annotations


class ConfigurationError(ValueError):
    """The library was given a configuration it cannot run with."""


class PolicyError(ConfigurationError):
    """The unit key policy is missing, malformed or contradicts itself."""


class BootstrapError(ConfigurationError):
    """An offline FeatBit bootstrap file is missing, empty or malformed."""
