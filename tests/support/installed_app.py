"""A small app run by tests/test_packaging.py against the three distributions installed from
their wheels into a fresh virtual environment outside the repository (not imported by the
test suite): an offline provider fed by flags in code, a Starlette app behind
UnitContextMiddleware, a LangChain router choosing each conversation's branch. It prints one
JSON object saying where the core was imported from and what each conversation got."""

from __future__ import annotations

import asyncio
import json

from featbit_experiments_langchain import experiment_branch
from featbit_experiments_starlette import UnitContextMiddleware, use_contextvars_propagator
from langchain_core.runnables import RunnableLambda
from openfeature import api
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

import featbit_experiments
from featbit_experiments import Experiment, FeatBitProvider, Flag, InMemorySink, UnitPolicy

FLAG = "support-retrieval-test"
sink = InMemorySink()
provider = FeatBitProvider.offline(
    flags=[
        Flag.string(
            FLAG,
            ["control", "retrieval_profile_b"],
            split={"control": 50, "retrieval_profile_b": 50},
        )
    ],
    policy=UnitPolicy([Experiment(FLAG, unit="conversation")]),
    sinks=[sink],
)
use_contextvars_propagator()
api.set_provider_and_wait(provider)
router = experiment_branch(
    FLAG,
    {
        "control": RunnableLambda(lambda question: f"control: {question}"),
        "retrieval_profile_b": RunnableLambda(lambda question: f"profile b: {question}"),
    },
)


async def ask(request: object) -> JSONResponse:
    answer = await router.ainvoke("where is my parcel?")
    return JSONResponse({"answer": answer})


app = Starlette(
    routes=[Route("/ask", ask)],
    middleware=[Middleware(UnitContextMiddleware, provider=provider)],
)


async def request(conversation: str) -> dict[str, str]:
    sent: list[dict[str, object]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/ask",
        "raw_path": b"/ask",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"x-conversation-id", conversation.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(bytes(m.get("body", b"")) for m in sent if m["type"] == "http.response.body")  # type: ignore[call-overload]
    return dict(json.loads(body))


async def main() -> None:
    answers: dict[str, set[str]] = {}
    for conversation in ("conv-1", "conv-2", "conv-3", "conv-4", "conv-1"):
        answers.setdefault(conversation, set()).add((await request(conversation))["answer"])
    exposures = sink.of_kind("experiment_exposure")
    print(
        json.dumps(
            {
                "core": featbit_experiments.__file__,
                "answers": {k: sorted(v) for k, v in answers.items()},
                "exposed_units": sorted({e["unitId"] for e in exposures}),
                "variants": sorted({e["variation"] for e in exposures}),
            }
        )
    )
    provider.shutdown()


asyncio.run(main())
