"""Span output for the examples: an OpenTelemetry SDK tracer provider exporting to a JSON Lines
file (one span a line) or to the console, or nothing when the SDK is not installed.

The tracer provider is handed to the middleware and the LangChain handler explicitly rather
than installed as OpenTelemetry's global one: the global provider can be set only once per
process, and the examples also run inside the test suite.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["SpanOutput"]


class SpanOutput:
    """Where an example's spans go.

    Args:
        mode: ``file`` (JSON Lines at ``path``), ``console`` (one short line a span on
            stderr) or ``off``.
        path: The span file for ``file`` mode.
        service_name: The ``service.name`` resource attribute.
    """

    def __init__(self, mode: str, path: Path, service_name: str) -> None:
        self.tracer_provider: TracerProvider | None = None
        self.description = "off"
        self._file: IO[str] | None = None
        self._sdk: Any = None
        if mode == "off":
            return
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        except ImportError:
            self.description = "off (install opentelemetry-sdk to record spans)"
            return
        if mode == "file":
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")
            exporter = ConsoleSpanExporter(out=self._file, formatter=_json_line)
            self.description = str(path)
        else:
            exporter = ConsoleSpanExporter(out=sys.stderr, formatter=_short_line)
            self.description = "console (stderr)"
        sdk = SdkTracerProvider(resource=Resource.create({"service.name": service_name}))
        # Batched: the request pays for appending to a queue, not for a file write.
        sdk.add_span_processor(BatchSpanProcessor(exporter))
        self._sdk = sdk
        self.tracer_provider = sdk

    def close(self) -> None:
        """Export the spans still queued and close the file. Idempotent."""
        if self._sdk is not None:
            self._sdk.shutdown()
            self._sdk = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _json_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def _short_line(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    shown = " ".join(
        f"{key}={value!s}" for key, value in attributes.items() if key.startswith("experiment.")
    )
    return f"span {span.name} {shown}\n"
