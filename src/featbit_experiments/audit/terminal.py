"""Makes text from the log safe to print on a terminal: control characters (an escape
sequence in a variant name could recolour or rewrite the screen, a newline could forge a
line of the readout) and bidirectional overrides become visible escapes like ``\\x1b``.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls (tab and newline included: a name must stay on its line), DEL, and the
# bidirectional embedding, override and isolate characters.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control or bidi-override character written as an escape."""
    return _UNSAFE.sub(_escape, text)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    if match.group() in _NAMED:
        return _NAMED[match.group()]
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
