"""One example's run: its output directory, its event log, a provider registered under the
example's own OpenFeature domain, its span output, and the audit readout at the end.

The order matters and lives here once: the provider is unregistered and shut down, and the
event file closed, before the audit reads the file, so every exposure and outcome is on disk.
Each example uses its own OpenFeature domain rather than the default provider, so several
examples (or the test suite) can run in one process without replacing each other's provider.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TextIO

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.exception import OpenFeatureError
from openfeature.provider.no_op_provider import NoOpProvider
from opentelemetry.trace import TracerProvider

from featbit_experiments import FeatBitProvider, JsonLinesSink
from featbit_experiments.audit import (
    AuditOptions,
    AuditReport,
    audit_file,
    render_html,
    render_table,
)

from ._settings import Settings, SettingsError, shown_path
from ._tracing import SpanOutput

__all__ = ["ExampleFiles", "ExampleRun"]


@dataclass(frozen=True)
class ExampleFiles:
    """Where one example writes: ``<out>/<example>/{events.jsonl,spans.jsonl,audit.html}``."""

    directory: Path

    @property
    def events(self) -> Path:
        return self.directory / "events.jsonl"

    @property
    def spans(self) -> Path:
        return self.directory / "spans.jsonl"

    @property
    def report(self) -> Path:
        return self.directory / "audit.html"

    def clear(self) -> None:
        """Remove the previous run's files (the event sink appends, the audit reads all)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in (self.events, self.spans, self.report):
            path.unlink(missing_ok=True)


class ExampleRun:
    """Set-up and tear-down of one example, as a context manager; then :meth:`readout`.

    Args:
        example: The example's name: its output directory, OpenFeature domain, service name.
        settings: What it runs on.
        out: Where the run says what it uses and prints the readout (stdout by default).
    """

    def __init__(self, example: str, settings: Settings, out: TextIO | None = None) -> None:
        self.example = example
        self.settings = settings
        self.out = out or sys.stdout
        self.files = ExampleFiles(settings.out_dir / example)
        self.domain = f"examples.{example}"
        self._sink: JsonLinesSink | None = None
        self._provider: FeatBitProvider | None = None
        self._spans: SpanOutput | None = None

    def __enter__(self) -> ExampleRun:
        self.files.clear()
        self._sink = JsonLinesSink(self.files.events)
        try:
            self._provider = self.settings.provider(self.example, sinks=[self._sink])
            self._spans = SpanOutput(
                self.settings.spans, self.files.spans, f"featbit-examples.{self.example}"
            )
            api.set_provider_and_wait(self._provider, domain=self.domain)
        except OpenFeatureError as error:
            self.close()
            raise SettingsError(
                f"the FeatBit provider is not ready ({error.error_message}); check the "
                "FEATBIT_* variables, or unset them to use the offline flags"
            ) from error
        except BaseException:
            self.close()
            raise
        for line in self.settings.describe():
            self.out.write(f"  {line}\n")
        self.out.write(f"  events:      {shown_path(self.files.events)}\n")
        self.out.write(f"  spans:       {self._spans.description}\n")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def provider(self) -> FeatBitProvider:
        assert self._provider is not None, "use ExampleRun as a context manager"
        return self._provider

    @property
    def client(self) -> OpenFeatureClient:
        """The OpenFeature client of this example's domain."""
        return api.get_client(self.domain)

    @property
    def tracer_provider(self) -> TracerProvider | None:
        return self._spans.tracer_provider if self._spans is not None else None

    def close(self) -> None:
        """Unregister and shut down the provider, then close the event and span files."""
        if self._provider is not None:
            # Shut down here, before unregistering: OpenFeature shuts a replaced provider down
            # on a thread of its own, and the FeatBit client must have flushed its insights
            # (and the sinks their events) before this returns.
            self._provider.shutdown()
            api.set_provider(NoOpProvider(), domain=self.domain)
            self._provider = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self._spans is not None:
            self._spans.close()

    def readout(self, options: AuditOptions) -> AuditReport:
        """Audit the event log (after the run is closed): print the table and write the
        HTML page."""
        report = audit_file(self.files.events, options)
        self.files.report.write_text(render_html(report), encoding="utf-8")
        self.out.write("\n" + render_table(report))
        self.out.write(f"\nHTML report: {shown_path(self.files.report)}\n")
        self.out.write(
            f"Audit again: featbit-experiments audit {shown_path(self.files.events)}"
            f"{_cli_options(options)}\n"
        )
        return report


def _cli_options(options: AuditOptions) -> str:
    """The command line that reproduces ``options`` (the options the examples use)."""
    text = ""
    if options.primary_metric:
        text += f" --primary-metric {options.primary_metric}"
    for metric in options.guardrail_metrics:
        text += f" --guardrail-metric {metric}"
    if options.control:
        text += f" --control {options.control}"
    return text
