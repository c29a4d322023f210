"""The simulated world's randomness: deterministic draws from a seed.

The app (whether retrieval finds the article) and the simulated customers (how patient they
are, whether an answer satisfies them) draw from here, keyed by what the draw is about. The
same seed gives the same run whatever order concurrent requests happen to arrive in.
"""

from __future__ import annotations

import hashlib

__all__ = ["draw"]

_SCALE = float(2**64)


def draw(seed: int, *about: object) -> float:
    """A number in [0, 1), fixed by ``seed`` and ``about`` (e.g. ``"retrieval", conv, turn``)."""
    key = repr((seed, *about)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / _SCALE
