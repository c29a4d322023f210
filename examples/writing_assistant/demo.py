"""A user-level experiment end to end: writers come back for several sessions over a few days,
ask for suggestions, and accept some; the audit then reads the log.

What it shows: the user is the unit. A writer's sessions have different session IDs (the
conversation ID), yet every session of one writer gets the same style (0 users with mixed
variants), and acceptance is recorded per user and joins the user's exposure. The run runs
in-process (no HTTP): the LangChain router reads the IDs from each run's metadata.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from featbit_experiments_langchain import ExperimentCallbackHandler, TurnOutcomes
from openfeature.evaluation_context import EvaluationContext
from openfeature.track import TrackingEventDetails

from featbit_experiments.audit import AuditOptions, AuditReport, ExperimentAudit

from .._chance import draw
from .._progress import Progress
from .._run import ExampleFiles, ExampleRun
from .._settings import Settings
from .assistant import CONCISE, CONTROL, FLAG, build_assistant

__all__ = ["ACCEPTED", "AUDIT_OPTIONS", "LATENCY", "WritingOptions", "WritingResult", "run"]

EXAMPLE = "writing_assistant"
ACCEPTED = "suggestion_accepted"
LATENCY = "suggestion_latency_ms"
AUDIT_OPTIONS = AuditOptions(experiment=FLAG, primary_metric=ACCEPTED, guardrail_metrics=(LATENCY,))

#: How often a writer accepts a suggestion of each style (the simulated effect).
ACCEPTANCE = {CONTROL: 0.40, CONCISE: 0.48}
_DRAFTS = (
    "In order to be able to make a decision we will need to have more information about it.",
    "The report that was written by the team last week has a number of issues that are open.",
    "It is important to note that the meeting has been moved to a later time on Thursday.",
    "Due to the fact that the server was down, a large number of users could not log in.",
)


@dataclass(frozen=True)
class WritingOptions:
    """How big a run is: ``users`` writers with 2 to 4 sessions of 1 to 3 suggestions each."""

    users: int = 150
    seed: int = 7
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class WritingResult:
    """What a run did and what the audit found; ``styles_seen`` is, per writer, the styles the
    writer actually got (told apart by the suggestions' text, independently of the log)."""

    report: AuditReport
    sessions: int
    suggestions: int
    styles_seen: dict[str, set[str]]
    files: ExampleFiles
    seconds: float

    @property
    def audit(self) -> ExperimentAudit:
        [audit] = self.report.experiments
        return audit

    @property
    def writers_with_both_styles(self) -> int:
        return sum(1 for styles in self.styles_seen.values() if len(styles) > 1)


def run(
    options: WritingOptions, out: TextIO | None = None, err: TextIO | None = None
) -> WritingResult:
    """Run the example; the readout goes to ``out`` (stdout), progress to ``err`` (stderr)."""
    out = out or sys.stdout
    started = time.perf_counter()
    out.write(
        f"Writing assistant: {options.users} writers over several sessions; experiment "
        f"{FLAG!r} randomized by user\n"
    )
    seed = options.seed
    sessions = suggestions = 0
    styles_seen: dict[str, set[str]] = {}
    with ExampleRun(EXAMPLE, options.settings, out) as example:
        client = example.client
        assistant = build_assistant(client)
        handler = ExperimentCallbackHandler(
            tracer_provider=example.tracer_provider,
            outcomes=TurnOutcomes(
                client, latency=LATENCY, input_tokens=None, output_tokens=None, error=None
            ),
        )
        progress = Progress(options.users, "writers", stream=err)
        for n in range(options.users):
            user = f"writer-{n:03d}"
            for day in range(2 + int(draw(seed, "sessions", user) * 3)):
                session = f"{user}-day{day + 1}"
                sessions += 1
                for k in range(1 + int(draw(seed, "asks", session) * 3)):
                    draft = _DRAFTS[int(draw(seed, "draft", session, k) * len(_DRAFTS))]
                    suggestion = assistant.invoke(
                        {"draft": draft},
                        {
                            "callbacks": [handler],
                            "metadata": {"user_id": user, "conversation_id": session},
                        },
                    )
                    suggestions += 1
                    style = CONCISE if len(suggestion) < len(draft) else CONTROL
                    styles_seen.setdefault(user, set()).add(style)
                    accepted = draw(seed, "accepted", session, k) < ACCEPTANCE[style]
                    client.track(
                        ACCEPTED,
                        EvaluationContext(user, {"conversationId": session}),
                        TrackingEventDetails(value=float(accepted)),
                    )
            progress.advance()
        progress.close()
    report = example.readout(AUDIT_OPTIONS)
    result = WritingResult(
        report, sessions, suggestions, styles_seen, example.files, time.perf_counter() - started
    )
    out.write(
        f"\n{options.users} writers, {sessions} sessions, {suggestions} suggestions; writers "
        f"who got both styles: {result.writers_with_both_styles}. Done in {result.seconds:.1f} s.\n"
    )
    return result
