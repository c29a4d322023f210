"""Provider cost per evaluation, against the peer provider and the raw SDK in the same run.

One 50/50 experiment flag tagged ``unit:conversation``, offline clients fed the same bootstrap;
our provider in its default configuration (default sinks, telemetry on, in-memory ledger), the
peer ``featbit-openfeature-server`` (a plain provider: no unit policy, no ledger) and raw
``fbclient.variation``. Every call builds a fresh evaluation context (a fresh user dict for the
raw SDK), as a service does per request.

- Repeat turns (warm): 1,000 conversations assigned before timing, evaluated round-robin.
- First turns (cold per unit): 20,000 conversations never seen before, per workload.
- Recording span: the same turns inside a recording span of the OpenTelemetry SDK.
- 8 threads: total throughput against one thread making the same calls (wall time), for our
  provider's own paths, with the same ratio through OpenFeature and for the raw SDK as a
  reference (what any Python code sharing one GIL gets on this machine).

Times are this thread's CPU time per call, medians and minimums over alternating rounds (the
workloads take turns round by round, so load on a shared machine hits them alike). Each goal
row prints its target.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fbclient.client import FBClient
from fbclient.config import Config
from featbit_openfeature import FeatBitProvider as PeerProvider
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.trace import SpanLimits, TracerProvider

from benchmarks._report import Row, Timings, alternating_rounds, print_rows
from benchmarks._report import threaded_throughput_ratios as thread_ratios
from featbit_experiments import FeatBitProvider
from featbit_experiments.bootstrap import read_bootstrap

FLAG = "support-retrieval-test"
REPEAT_CONVERSATIONS = 1_000
FIRST_TURNS = 20_000
ROUNDS = 10


def bootstrap() -> Path:
    flag = {
        "id": "f1",
        "key": FLAG,
        "name": FLAG,
        "variationType": "string",
        "variations": [{"id": "a", "value": "control"}, {"id": "b", "value": "treatment"}],
        "targetUsers": [],
        "rules": [],
        "isEnabled": True,
        "disabledVariationId": "a",
        "fallthrough": {
            "dispatchKey": None,
            "includedInExpt": True,
            "variations": [
                {"id": "a", "rollout": [0, 0.5], "exptRollout": 1},
                {"id": "b", "rollout": [0.5, 1], "exptRollout": 1},
            ],
        },
        "exptIncludeAllTargets": True,
        "tags": ["unit:conversation"],
        "isArchived": False,
        "updatedAt": "2026-01-01T00:00:00Z",
    }
    path = Path(tempfile.mkdtemp()) / "bench.json"
    path.write_text(json.dumps({"featureFlags": [flag], "segments": []}))
    return path


def offline_client(path: Path) -> Any:
    client = FBClient(
        Config("offline-bootstrap", "http://127.0.0.1", "http://127.0.0.1", offline=True),
        start_wait=0,
    )
    if not client.initialize_from_external_json(read_bootstrap(path)):
        raise RuntimeError("the FeatBit SDK refused the benchmark's bootstrap")
    return client


def context(conversation_id: str) -> EvaluationContext:
    """Ours: the conversation ID under its attribute, the user as the targeting key."""
    return EvaluationContext("u-1", {"conversationId": conversation_id, "userId": "u-1"})


def peer_context(conversation_id: str) -> EvaluationContext:
    """The peer buckets on the targeting key, so the conversation ID goes there."""
    return EvaluationContext(conversation_id, {"conversationId": conversation_id})


def user(conversation_id: str) -> dict[str, str]:
    return {"key": conversation_id, "name": conversation_id, "conversationId": conversation_id}


def openfeature_client(provider: Any) -> Any:
    domain = f"bench-provider-{uuid.uuid4().hex[:8]}"
    api.set_provider_and_wait(provider, domain=domain)
    return api.get_client(domain)


Turn = Callable[[str], Any]


def repeat_round(turn: Turn, conversations: list[str]) -> Callable[[], int]:
    def run_round() -> int:
        for conversation in conversations:
            turn(conversation)
        return len(conversations)

    return run_round


def first_round(turn: Turn, prefix: str, calls: int) -> Callable[[], int]:
    counter = itertools.count()

    def run_round() -> int:
        for _ in range(calls):
            turn(f"{prefix}-{next(counter)}")
        return calls

    return run_round


def goal(name: str, ours: Timings, base: Timings, target: float, baseline: str) -> Row:
    ratio = ours.median / base.median
    return Row(
        name=name,
        value=ours.median * 1e6,
        unit="us cpu",
        ratio=ratio,
        target=f"<= {target:.2f}x",
        baseline=baseline,
        note=f"{'met' if ratio <= target else 'NOT MET'}: ours {ours.describe()}; "
        f"{baseline} {base.describe()} (us; ratio of minimums {ours.minimum / base.minimum:.2f}x)",
    )


def plain(name: str, timings: Timings, note: str = "") -> Row:
    text = timings.describe() + (f"; {note}" if note else "")
    return Row(name=name, value=timings.median * 1e6, unit="us cpu", note=text)


def measure(make_ours: Callable[[Path], Any] | None = None) -> dict[str, Any]:
    """Every figure of this benchmark (``make_ours``: builds the provider measured as ours)."""
    path = bootstrap()
    ours = (make_ours or (lambda p: FeatBitProvider.offline(p)))(path)
    peer = PeerProvider(offline_client(path))
    fb = offline_client(path)
    ours_of, peer_of = openfeature_client(ours), openfeature_client(peer)
    conversations = [f"conv-{n:06d}" for n in range(REPEAT_CONVERSATIONS)]

    def ours_turn(c: str) -> Any:
        return ours_of.get_string_value(FLAG, "control", context(c))

    def peer_turn(c: str) -> Any:
        return peer_of.get_string_value(FLAG, "control", peer_context(c))

    def ours_resolve(c: str) -> Any:
        return ours.resolve_string_details(FLAG, "control", context(c))

    def peer_resolve(c: str) -> Any:
        return peer.resolve_string_details(FLAG, "control", peer_context(c))

    def raw(c: str) -> Any:
        return fb.variation(FLAG, user(c), "control")

    for conversation in conversations:  # warm: every repeat conversation is assigned
        ours_turn(conversation)
    checks = (ours_turn("check"), peer_turn("check"), raw("check"))
    if len({*checks, "control", "treatment"}) != 2:
        raise RuntimeError(f"a provider does not serve the flag: {checks}")
    per_round = FIRST_TURNS // ROUNDS
    turns = alternating_rounds(
        {
            "raw": repeat_round(raw, conversations),
            "peer repeat": repeat_round(peer_turn, conversations),
            "ours repeat": repeat_round(ours_turn, conversations),
            "peer resolve": repeat_round(peer_resolve, conversations),
            "ours resolve": repeat_round(ours_resolve, conversations),
            "peer first": first_round(peer_turn, "peer-first", per_round),
            "ours first": first_round(ours_turn, "ours-first", per_round),
        },
        rounds=ROUNDS,
    )
    tracer = TracerProvider(span_limits=SpanLimits(max_events=128)).get_tracer("bench")

    spans = alternating_rounds(
        {
            "repeat": repeat_round(ours_turn, conversations),
            "repeat span": _spanned(tracer, ours_turn, conversations),
            "first": first_round(ours_turn, "first-plain", REPEAT_CONVERSATIONS),
            "first span": _spanned_first(tracer, ours_turn, "first-span", REPEAT_CONVERSATIONS),
            "resolve": repeat_round(ours_resolve, conversations),
            "resolve span": _spanned(tracer, ours_resolve, conversations),
        },
        rounds=ROUNDS,
    )
    threads = thread_ratios(
        {
            "repeat": lambda n: ours_resolve(conversations[n % REPEAT_CONVERSATIONS]),
            "first": lambda n: ours_resolve(f"thread-first-{n}"),
            "repeat, through OpenFeature": lambda n: ours_turn(
                conversations[n % REPEAT_CONVERSATIONS]
            ),
            "raw fbclient variation": lambda n: raw(conversations[n % REPEAT_CONVERSATIONS]),
        },
        calls=8_000,
    )
    ours.shutdown()
    peer.shutdown()
    fb.stop()
    api.clear_providers()
    return {"turns": turns, "spans": spans, "threads": threads}


def _spanned(tracer: Any, turn: Turn, conversations: list[str]) -> Callable[[], int]:
    def run_round() -> int:
        for start in range(0, len(conversations), 100):  # one span per 100 turns
            with tracer.start_as_current_span("turn"):
                for conversation in conversations[start : start + 100]:
                    turn(conversation)
        return len(conversations)

    return run_round


def _spanned_first(tracer: Any, turn: Turn, prefix: str, calls: int) -> Callable[[], int]:
    counter = itertools.count()

    def run_round() -> int:
        for _ in range(0, calls, 100):
            with tracer.start_as_current_span("turn"):
                for _ in range(100):
                    turn(f"{prefix}-{next(counter)}")
        return calls

    return run_round


def rows(figures: dict[str, Any]) -> list[Row]:
    t, s, threads = figures["turns"], figures["spans"], figures["threads"]
    out = [
        plain("raw fbclient variation (repeat keys)", t["raw"]),
        plain("peer through OpenFeature, repeat turn", t["peer repeat"]),
        plain("peer through OpenFeature, first turn", t["peer first"], "cold per unit"),
        plain("peer provider.resolve_string_details, repeat", t["peer resolve"]),
        goal(
            "ours through OpenFeature, repeat turn (warm ledger hit)",
            t["ours repeat"],
            t["peer repeat"],
            0.9,
            "peer",
        ),
        goal(
            "ours through OpenFeature, first turn (cold per unit)",
            t["ours first"],
            t["peer first"],
            1.0,
            "peer",
        ),
        goal(
            "ours provider.resolve_string_details, repeat (warm)",
            t["ours resolve"],
            t["raw"],
            0.5,
            "raw fbclient variation",
        ),
    ]
    for kind in ("repeat", "first"):
        spanned, bare = s[f"{kind} span"], s[kind]
        delta = (spanned.median - bare.median) * 1e6
        out.append(
            Row(
                name=f"recording span, {kind} turn: added per evaluation",
                value=delta,
                unit="us cpu",
                target="<= +8 us",
                note=f"{'met' if delta <= 8 else 'NOT MET'}: with span {spanned.describe()}, "
                f"without {bare.describe()} (us); difference of minimums "
                f"{(spanned.minimum - bare.minimum) * 1e6:+.2f}",
            )
        )
    spanned, bare = s["resolve span"], s["resolve"]
    out.append(
        Row(
            name="  recording span, repeat turn, provider.resolve: added",
            value=(spanned.median - bare.median) * 1e6,
            unit="us cpu",
            note=f"reference (our recorder without the OpenFeature SDK around it): with span "
            f"{spanned.describe()}, without {bare.describe()} (us)",
        )
    )
    for kind, (median, minimum) in threads.items():
        goal_row = kind in ("repeat", "first")
        verdict = ("met: " if median >= 1.0 else "NOT MET: ") if goal_row else "reference: "
        out.append(
            Row(
                name=f"8 threads vs 1, {'ours (provider) ' if goal_row else ''}{kind}",
                value=median,
                unit="x",
                ratio=median,
                target=">= 1.00x" if goal_row else "",
                note=f"{verdict}median of 9 alternating rounds, minimum {minimum:.2f}x "
                "(wall time, 8,000 calls a round)",
            )
        )
    return out


def run() -> list[Row]:
    return rows(measure())


def profile() -> Callable[[], None]:
    """Our repeat and first turns through OpenFeature, set up outside the profile."""
    path = bootstrap()
    provider = FeatBitProvider.offline(path)
    client = openfeature_client(provider)
    conversations = [f"conv-{n:06d}" for n in range(REPEAT_CONVERSATIONS)]
    for conversation in conversations:
        client.get_string_value(FLAG, "control", context(conversation))
    counter = itertools.count()

    def turns() -> None:
        for _ in range(10):
            for conversation in conversations:
                client.get_string_value(FLAG, "control", context(conversation))
        for _ in range(FIRST_TURNS // 2):
            client.get_string_value(FLAG, "control", context(f"first-{next(counter)}"))

    return turns


if __name__ == "__main__":
    print_rows("bench_provider", run())
