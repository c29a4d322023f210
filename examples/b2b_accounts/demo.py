"""An account-level experiment end to end: the users of each tenant sign in and ask the
assistant questions through its HTTP API (in-process, over httpx's ASGI transport), then say
whether the answer helped; the audit then reads the log.

What it shows: the account is the unit. Users are many and each is authenticated separately,
yet every user of one tenant gets the same model route (0 accounts with mixed variants), and
acceptance is keyed by the account and joins the account's exposure. It also shows the price
of an account-level unit: tenants differ from each other, and 40 tenants are 40 samples however
many users they have, so the intervals stay wide.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import httpx
from starlette.types import ASGIApp

from featbit_experiments.audit import AuditOptions, AuditReport, ExperimentAudit

from .._auth import Member, issue_tokens
from .._chance import draw
from .._progress import Progress
from .._run import ExampleFiles, ExampleRun
from .._settings import Settings
from .app import ACCEPTED, LATENCY, build_app
from .assistant import FLAG, LARGE, STANDARD, build_assistant

__all__ = ["AUDIT_OPTIONS", "B2BOptions", "B2BResult", "run"]

EXAMPLE = "b2b_accounts"
AUDIT_OPTIONS = AuditOptions(
    experiment=FLAG, primary_metric=ACCEPTED, guardrail_metrics=(LATENCY,), control=STANDARD
)

#: How often a user accepts an answer from each route (the simulated effect), before the
#: tenant's own offset: some tenants' questions are simply easier (up to 15 points either way).
ACCEPTANCE = {STANDARD: 0.55, LARGE: 0.65}
TENANT_SPREAD = 0.15
_QUESTIONS = (
    "Export last month's invoices?",
    "Add a new admin to the workspace?",
    "Rotate the API key?",
    "Set up single sign-on?",
)
_CONCURRENCY = 8


@dataclass(frozen=True)
class B2BOptions:
    """How big a run is: ``accounts`` tenants of 3 to 8 users, 2 to 4 questions each."""

    accounts: int = 40
    seed: int = 7
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class B2BResult:
    """What a run did and what the audit found; ``routes_seen`` is, per account, the routes
    its users' answers actually came from (as the answers say, independently of the log)."""

    report: AuditReport
    users: int
    questions: int
    routes_seen: dict[str, set[str]]
    failed_requests: int
    files: ExampleFiles
    seconds: float

    @property
    def audit(self) -> ExperimentAudit:
        [audit] = self.report.experiments
        return audit

    @property
    def accounts_with_both_routes(self) -> int:
        return sum(1 for routes in self.routes_seen.values() if len(routes) > 1)


@dataclass
class _Tally:
    questions: int = 0
    failed_requests: int = 0
    routes_seen: dict[str, set[str]] = field(default_factory=dict)


def run(options: B2BOptions, out: TextIO | None = None, err: TextIO | None = None) -> B2BResult:
    """Run the example; the readout goes to ``out`` (stdout), progress to ``err`` (stderr)."""
    out = out or sys.stdout
    started = time.perf_counter()
    out.write(
        f"B2B accounts: {options.accounts} tenants; experiment {FLAG!r} randomized by account\n"
    )
    members = [
        Member(f"acct-{n:03d}-user{k}", tenant_id=f"acct-{n:03d}")
        for n in range(options.accounts)
        for k in range(3 + int(draw(options.seed, "users", n) * 6))
    ]
    tokens = issue_tokens(members)
    with ExampleRun(EXAMPLE, options.settings, out) as example:
        app = build_app(
            assistant=build_assistant(example.client),
            client=example.client,
            provider=example.provider,
            members=tokens,
            tracer_provider=example.tracer_provider,
        )
        progress = Progress(len(tokens), "users", stream=err)
        tally = asyncio.run(_simulate(app, tokens, options.seed, progress))
        progress.close()
    report = example.readout(AUDIT_OPTIONS)
    result = B2BResult(
        report,
        len(members),
        tally.questions,
        tally.routes_seen,
        tally.failed_requests,
        example.files,
        time.perf_counter() - started,
    )
    out.write(
        f"\n{options.accounts} accounts, {result.users} users, {result.questions} questions; "
        f"accounts whose users got different routes: {result.accounts_with_both_routes}. "
        f"Done in {result.seconds:.1f} s.\n"
    )
    return result


async def _simulate(
    app: ASGIApp, tokens: dict[str, Member], seed: int, progress: Progress
) -> _Tally:
    tally = _Tally()
    gate = asyncio.Semaphore(_CONCURRENCY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b2b.example") as http:

        async def user(token: str, member: Member) -> None:
            async with gate:
                try:
                    await _ask_questions(http, token, member, seed, tally)
                except httpx.HTTPError:
                    tally.failed_requests += 1
                progress.advance()

        await asyncio.gather(*(user(token, member) for token, member in tokens.items()))
    return tally


async def _ask_questions(
    http: httpx.AsyncClient, token: str, member: Member, seed: int, tally: _Tally
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for k in range(2 + int(draw(seed, "questions", member.user_id) * 3)):
        question = _QUESTIONS[int(draw(seed, "question", member.user_id, k) * len(_QUESTIONS))]
        response = await http.post("/ask", headers=headers, json={"question": question})
        response.raise_for_status()
        route = str(response.json()["route"])
        tally.questions += 1
        tally.routes_seen.setdefault(str(member.tenant_id), set()).add(route)
        tenant = (2 * draw(seed, "tenant", member.tenant_id) - 1) * TENANT_SPREAD
        accepted = draw(seed, "accepted", member.user_id, k) < ACCEPTANCE.get(route, 0.0) + tenant
        feedback = await http.post("/feedback", headers=headers, json={"accepted": accepted})
        feedback.raise_for_status()
