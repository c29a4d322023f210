"""The end-to-end demo: serve the support assistant on loopback, drive simulated conversations
through it over HTTP, then audit the event log the provider wrote.

What it shows: the conversation is the unit everywhere. Every turn of a conversation gets the
variant its first turn got (0 units with mixed variants), and every outcome (resolution,
handoff, turn latency) is keyed by the conversation and joins its exposure (100% join rate),
although the user ID, not the conversation ID, is OpenFeature's targeting key.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from featbit_experiments.audit import AuditOptions, AuditReport, ExperimentAudit

from .._auth import Member, issue_tokens
from .._progress import Progress
from .._run import ExampleFiles, ExampleRun
from .._settings import Settings
from .app import HANDOFF, LATENCY, RESOLVED, build_app
from .assistant import FLAG, build_assistant
from .customers import Tally, drive, plan
from .server import BackgroundServer

__all__ = ["AUDIT_OPTIONS", "DemoOptions", "DemoResult", "run"]

EXAMPLE = "support_assistant"
#: The decision rests on resolution; handoffs and turn latency must not get worse.
AUDIT_OPTIONS = AuditOptions(
    experiment=FLAG, primary_metric=RESOLVED, guardrail_metrics=(HANDOFF, LATENCY)
)


@dataclass(frozen=True)
class DemoOptions:
    """How big a run is.

    Args:
        conversations: Simulated conversations.
        customers: Signed-in customers they are spread over (each has several).
        concurrency: Conversations in flight at once.
        seed: Fixes every simulated choice, so a run is reproducible.
        settings: What the run uses (FeatBit source, store, output directory).
    """

    conversations: int = 300
    customers: int = 120
    concurrency: int = 8
    seed: int = 7
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class DemoResult:
    """What a run did and what the audit found."""

    report: AuditReport
    tally: Tally
    files: ExampleFiles
    seconds: float

    @property
    def audit(self) -> ExperimentAudit:
        """The audit of the support-retrieval-test run."""
        [audit] = self.report.experiments
        return audit


def run(options: DemoOptions, out: TextIO | None = None, err: TextIO | None = None) -> DemoResult:
    """Run the demo; the readout goes to ``out`` (stdout), progress to ``err`` (stderr)."""
    out = out or sys.stdout
    started = time.perf_counter()
    out.write(
        f"Support assistant demo: {options.conversations} conversations through the HTTP API; "
        f"experiment {FLAG!r} randomized by conversation\n"
    )
    members = [Member(f"user-{n:03d}") for n in range(options.customers)]
    tokens = issue_tokens(members)
    with ExampleRun(EXAMPLE, options.settings, out) as example:
        app = build_app(
            assistant=build_assistant(example.client, options.seed),
            client=example.client,
            provider=example.provider,
            members=tokens,
            tracer_provider=example.tracer_provider,
        )
        conversations = plan(options.seed, options.conversations, list(tokens))
        with BackgroundServer(app) as server:
            out.write(
                f"  serving:     {server.url} (uvicorn, loopback); "
                f"{options.concurrency} conversations at a time\n"
            )
            out.flush()
            tally = Tally()
            progress = Progress(len(conversations), "conversations", detail=tally.line, stream=err)
            tally = asyncio.run(
                drive(
                    server.url,
                    conversations,
                    seed=options.seed,
                    concurrency=options.concurrency,
                    progress=progress,
                    tally=tally,
                )
            )
            progress.close()
    report = example.readout(AUDIT_OPTIONS)
    seconds = time.perf_counter() - started
    out.write(
        f"\nSimulated {tally.conversations} conversations: {tally.line()} "
        f"({tally.streamed_turns} turns streamed). Done in {seconds:.1f} s.\n"
    )
    return DemoResult(report, tally, example.files, seconds)
