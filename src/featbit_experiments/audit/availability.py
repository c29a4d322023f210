"""Whether the audit's engine can run: the audit is the ``audit`` extra of
featbit-experiments (it needs DuckDB), which services that only evaluate flags do not install.
"""

from __future__ import annotations

__all__ = ["INSTALL_HINT", "AuditUnavailableError"]

INSTALL_HINT = "pip install 'featbit-experiments[audit]'"


class AuditUnavailableError(ImportError):
    """DuckDB, which the audit's engine runs on, is not installed."""

    def __init__(self) -> None:
        super().__init__(f"the audit needs DuckDB, which is not installed: {INSTALL_HINT}")
