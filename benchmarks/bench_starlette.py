"""Starlette middleware overhead: throughput of a small Starlette app with
``UnitContextMiddleware`` against the same app without it, and against a second copy of the
bare app (an A/A control), all in the same rounds.

Each app runs under uvicorn in its own subprocess on 127.0.0.1, and a load generator in this
process (plain asyncio keep-alive connections, far cheaper per request than the server) drives
the three at the same time. The servers are pinned to one CPU and the generator to another, so
the apps share every condition of the moment (other work on the machine, caches, clock speed)
and the scheduler splits that CPU between them fairly; the requests each completes per second
of its own CPU time (Linux schedstat) then compare their cost per request directly. Measuring
the apps one after the other on a shared machine swung by +-30% between rounds; measured
together, the two copies of the bare app agree within a few percent, which the A/A rows show.

Two endpoints, taking turns round by round: one that only answers, so the middleware's whole
cost shows, and one that evaluates an experiment flag, where the app without the middleware
builds the evaluation context from the header itself. Requests rotate over 1,000
conversation IDs, so after the first rounds the flag endpoint's evaluations are repeat turns
(ledger hits). Every round follows a warm-up load (all rows are warm); ratios are medians of
the per-round ratios. Target: the app with the middleware keeps at least 97% of the bare
app's throughput on both endpoints.

``python -m benchmarks --profile starlette`` profiles the middleware app in this process
instead, driven the way uvicorn drives it (one task per request, a fresh scope each time).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._report import Row, print_rows

FLAG = "bench-prompt-style"
HOST = "127.0.0.1"
CONNECTIONS = 12  # per server
ROUNDS = 9  # a multiple of the three servers (see run())
WARMUP_SECONDS = 0.2
ROUND_SECONDS = 1.0
#: Conversations the load rotates over (after the first rounds, repeat turns: ledger hits).
DISTINCT_IDS = 1_000
TARGET = 0.97
ENDPOINTS = {"/plain": "empty endpoint", "/experiment": "flag endpoint"}

_ENV_MIDDLEWARE = "FEATBIT_BENCH_MIDDLEWARE"
_ENV_BOOTSTRAP = "FEATBIT_BENCH_BOOTSTRAP"


# -- the app (built inside each uvicorn subprocess) ------------------------------------------


def create_app() -> Any:
    """The benchmark app; with the middleware when ``FEATBIT_BENCH_MIDDLEWARE=1``."""
    from contextlib import asynccontextmanager

    from featbit_experiments_starlette import UnitContextMiddleware, use_contextvars_propagator
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from featbit_experiments import FeatBitProvider

    with_middleware = os.environ[_ENV_MIDDLEWARE] == "1"
    provider = FeatBitProvider.offline(os.environ[_ENV_BOOTSTRAP], sinks=[])
    client = api.get_client("bench-starlette")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        use_contextvars_propagator()
        api.set_provider_and_wait(provider, domain="bench-starlette")
        yield
        api.shutdown()

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def experiment(request: Request) -> PlainTextResponse:
        if with_middleware:
            value = await client.get_string_value_async(FLAG, "none")
        else:
            context = EvaluationContext(
                attributes={"conversationId": request.headers["x-conversation-id"]}
            )
            value = await client.get_string_value_async(FLAG, "none", context)
        return PlainTextResponse(value)

    middleware = [Middleware(UnitContextMiddleware, provider=provider)] if with_middleware else []
    return Starlette(
        routes=[Route("/plain", plain), Route("/experiment", experiment)],
        middleware=middleware,
        lifespan=lifespan,
    )


# -- servers ---------------------------------------------------------------------------------


def _bootstrap() -> Path:
    from tests.support import flags as fl

    path = Path(tempfile.mkdtemp(prefix="bench-starlette-")) / "flags.json"
    flag = fl.flag(FLAG, ["concise", "detailed"], tags=["unit:conversation"])
    path.write_text(fl.bootstrap_json([flag]), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _start_server(with_middleware: bool, bootstrap: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        _ENV_MIDDLEWARE: "1" if with_middleware else "0",
        _ENV_BOOTSTRAP: str(bootstrap),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable, "-m", "uvicorn", "benchmarks.bench_starlette:create_app", "--factory",
        "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=root, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            if asyncio.run(_count(port, [_request("/plain", "ready")], 0.05)) > 0:
                return process, port
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the benchmark server did not start")
        time.sleep(0.1)


# -- load generator --------------------------------------------------------------------------


def _request(path: str, conversation_id: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nX-Conversation-Id: {conversation_id}\r\n\r\n"
    ).encode("ascii")


async def _connection(port: int, requests: list[bytes], stop_at: float) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    done = 0
    try:
        while time.perf_counter() < stop_at:
            writer.write(requests[done % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"benchmark request failed: {head[:40]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done


async def _count(port: int, requests: list[bytes], seconds: float) -> int:
    """Requests completed in ``seconds`` over CONNECTIONS keep-alive connections."""
    stop_at = time.perf_counter() + seconds
    shares = [requests[i::CONNECTIONS] or requests for i in range(CONNECTIONS)]
    results = await asyncio.gather(*(_connection(port, share, stop_at) for share in shares))
    return sum(results)


def _cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid``'s threads, in nanosecond resolution (Linux schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _round(servers: list[tuple[int, int]], path: str) -> list[float]:
    """Load every server at once for one round; per server, requests per CPU-second."""
    requests = [_request(path, f"conv-bench-{i:04d}") for i in range(DISTINCT_IDS)]

    async def load(seconds: float) -> list[int]:
        return list(await asyncio.gather(*(_count(port, requests, seconds) for _, port in servers)))

    asyncio.run(load(WARMUP_SECONDS))
    cpu = [_cpu_seconds(pid) for pid, _ in servers]
    done = asyncio.run(load(ROUND_SECONDS))
    used = [_cpu_seconds(pid) - before for (pid, _), before in zip(servers, cpu, strict=True)]
    return [n / c for n, c in zip(done, used, strict=True)]


# -- the benchmark ---------------------------------------------------------------------------


def run() -> list[Row]:
    bootstrap = _bootstrap()
    processes = [_start_server(flag, bootstrap) for flag in (False, True, False)]
    servers = [(process.pid, port) for process, port in processes]
    own_cpus = _pin(*(pid for pid, _ in servers))
    measured: dict[str, list[tuple[float, float, float]]] = {path: [] for path in ENDPOINTS}
    try:
        for index in range(ROUNDS):
            for path in ENDPOINTS:  # the endpoints take turns, round by round
                # Which server the load generator serves first moves round by round: the
                # first one gets a small edge otherwise, which the A/A control showed.
                shift = index % len(servers)
                rates = _round(servers[shift:] + servers[:shift], path)
                bare, wrapped, control = rates[-shift:] + rates[:-shift] if shift else rates
                measured[path].append((bare, wrapped, control))
    finally:
        if own_cpus:
            os.sched_setaffinity(0, own_cpus)
        for process, _ in processes:
            process.terminate()
            process.wait(10)
    rows: list[Row] = []
    for path, label in ENDPOINTS.items():
        rows += _rows(label, measured[path])
    return rows


def _pin(*server_pids: int) -> set[int]:
    """Servers on one CPU, the load generator on another, so the servers share one CPU's
    conditions. Returns this process's CPUs to restore (empty when there is nothing to pin)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return set()
    for pid in server_pids:
        os.sched_setaffinity(pid, {cpus[-1]})
    os.sched_setaffinity(0, {cpus[0]})
    return set(cpus)


def _rows(label: str, rounds: list[tuple[float, float, float]]) -> list[Row]:
    bare = [b for b, _, _ in rounds]
    ratios = [w / b for b, w, _ in rounds]
    controls = [c / b for b, _, c in rounds]
    return [
        Row(
            name=f"{label}: bare app, req per server CPU-s",
            value=statistics.median(bare),
            unit="req/s",
            ratio=1.0,
            note="warm: every round follows a warm-up load",
        ),
        Row(
            name=f"GOAL {label}: with UnitContextMiddleware",
            value=statistics.median(w for _, w, _ in rounds),
            unit="req/s",
            ratio=statistics.median(ratios),
            baseline="same app without the middleware, same rounds",
            target=f">= {TARGET:.2f}x",
            note=f"rounds {_listed(ratios, '.3f')}",
        ),
        Row(
            name=f"{label}: bare vs bare (A/A control)",
            value=statistics.median(c for _, _, c in rounds),
            unit="req/s",
            ratio=statistics.median(controls),
            baseline="the method's noise: should be 1.00x",
            note=f"rounds {_listed(controls, '.3f')}",
        ),
    ]


def _listed(values: list[float], spec: str) -> str:
    return ", ".join(format(value, spec) for value in values)


# -- profiling in this process ----------------------------------------------------------------


def profile() -> Callable[[], None]:
    """For ``--profile``: the app with the middleware, its lifespan started, driven directly
    as uvicorn drives it (one task and a fresh scope per request), 20,000 requests over both
    endpoints; set up before the profiler starts."""
    os.environ[_ENV_MIDDLEWARE] = "1"
    os.environ[_ENV_BOOTSTRAP] = str(_bootstrap())
    app = create_app()
    loop = asyncio.new_event_loop()
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    running = loop.run_until_complete(_lifespan(app, lifespan))

    async def requests() -> None:
        for i in range(20_000):
            path = "/plain" if i % 2 else "/experiment"
            await loop.create_task(_one_request(app, path, f"conv-bench-{i % DISTINCT_IDS:04d}"))
        lifespan.put_nowait({"type": "lifespan.shutdown"})
        await running

    def drive() -> None:
        loop.run_until_complete(requests())

    return drive


async def _lifespan(app: Any, messages: asyncio.Queue[dict[str, Any]]) -> asyncio.Task[None]:
    """Start ``app``'s lifespan; the task it runs in ends after a shutdown message."""
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    messages.put_nowait({"type": "lifespan.startup"})
    running = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "state": {}}, messages.get, send)
    )
    await started.wait()
    return running


async def _one_request(app: Any, path: str, conversation_id: str) -> None:
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "server": (HOST, 8000), "client": (HOST, 50000),
        "scheme": "http", "method": "GET", "root_path": "", "path": path,
        "raw_path": path.encode("ascii"), "query_string": b"", "state": {},
        "headers": [(b"host", HOST.encode("ascii")),
                    (b"x-conversation-id", conversation_id.encode("ascii"))],
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    await app(scope, receive, send)


if __name__ == "__main__":
    print_rows("bench_starlette", run())
