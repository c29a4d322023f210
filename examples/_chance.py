"""The simulations' randomness: deterministic draws from a seed.

The examples' simulated systems and people (whether retrieval finds the article, how patient a
customer is, whether a writer accepts a suggestion) draw from here, keyed by what the draw is
about, not by a shared random generator: the same seed gives the same run whatever order
concurrent requests happen to arrive in.
"""

from __future__ import annotations

import hashlib

__all__ = ["draw"]

_SCALE = float(2**64)


def draw(seed: int, *about: object) -> float:
    """A number in [0, 1), fixed by ``seed`` and ``about`` (e.g. ``"retrieval", conv, turn``)."""
    key = repr((seed, *about)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / _SCALE
