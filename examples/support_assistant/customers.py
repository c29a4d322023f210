"""Simulated customers: conversations driven over HTTP against the support assistant.

Each conversation belongs to one signed-in customer (a bearer token), carries its ID in the
``X-Conversation-Id`` header and has a topic and a patience of 2 to 4 questions. After each
answer from an article the customer is satisfied with probability 0.8, says thanks (one more
turn) and closes the conversation as resolved. A customer who runs out of patience asks for a
human (the assistant hands over), or, one time in four, just leaves. So a conversation has 2 to
5 turns; every second turn is streamed (the app's streaming endpoint), so each conversation
mixes both kinds of turn. Every choice is a draw from the seed and the conversation,
so a run does not depend on how concurrent requests interleave.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .._chance import draw
from .._progress import Progress
from .assistant import TOPICS, is_answer

__all__ = ["Conversation", "Tally", "drive", "plan"]

SATISFIED_BY_ANSWER = 0.8
LEAVES_WITHOUT_HUMAN = 0.25
MIN_PATIENCE, MAX_PATIENCE = 2, 4


@dataclass(frozen=True)
class Conversation:
    """One planned conversation."""

    conversation_id: str
    token: str
    topic: str
    patience: int


@dataclass
class Tally:
    """What the customers did and saw."""

    conversations: int = 0
    turns: int = 0
    streamed_turns: int = 0
    resolved: int = 0
    handoffs: int = 0
    left: int = 0
    failed_conversations: int = 0

    def line(self) -> str:
        text = (
            f"{self.turns} turns, {self.resolved} resolved, {self.handoffs} handed off, "
            f"{self.left} left"
        )
        return text + (f", {self.failed_conversations} FAILED" if self.failed_conversations else "")


def plan(seed: int, count: int, tokens: Sequence[str]) -> list[Conversation]:
    """``count`` conversations spread over the customers holding ``tokens``."""
    topics = list(TOPICS)
    conversations = []
    for n in range(count):
        conversation_id = f"conv-{seed}-{n:04d}"
        span = MAX_PATIENCE - MIN_PATIENCE + 1
        conversations.append(
            Conversation(
                conversation_id=conversation_id,
                token=tokens[int(draw(seed, "customer", n) * len(tokens))],
                topic=topics[int(draw(seed, "topic", n) * len(topics))],
                patience=MIN_PATIENCE + int(draw(seed, "patience", n) * span),
            )
        )
    return conversations


class _Failed(Exception):
    """A request the app did not answer with success: the conversation ends, counted as failed."""


async def drive(
    base_url: str,
    conversations: Sequence[Conversation],
    *,
    seed: int,
    concurrency: int,
    progress: Progress | None = None,
    tally: Tally | None = None,
) -> Tally:
    """Run every conversation, at most ``concurrency`` at a time, counting into ``tally``
    (a new one by default, so a progress line can read a given one as it fills)."""
    tally = tally if tally is not None else Tally()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:

        async def one(conversation: Conversation) -> None:
            async with gate:
                try:
                    await _converse(http, conversation, seed, tally)
                except (_Failed, httpx.HTTPError, ValueError, KeyError):
                    # A refused request or an unreadable answer ends this conversation only.
                    tally.failed_conversations += 1
                tally.conversations += 1
                if progress is not None:
                    progress.advance()

        await asyncio.gather(*(one(c) for c in conversations))
    return tally


async def _converse(
    http: httpx.AsyncClient, conversation: Conversation, seed: int, tally: Tally
) -> None:
    cid = conversation.conversation_id
    headers = {"Authorization": f"Bearer {conversation.token}", "X-Conversation-Id": cid}
    turn = 0

    async def say(message: str) -> tuple[str, bool]:
        nonlocal turn
        turn += 1
        tally.turns += 1
        if turn % 2 == 0:
            tally.streamed_turns += 1
            return await _streamed_turn(http, cid, headers, message, turn)
        response = await http.post(
            f"/conversations/{cid}/turns", headers=headers, json={"message": message, "turn": turn}
        )
        body = _success(response).json()
        return str(body["reply"]), bool(body["handoff"])

    resolved = False
    for question in range(1, conversation.patience + 1):
        reply, _ = await say(_question(conversation, question))
        if is_answer(reply) and draw(seed, "satisfied", cid, question) < SATISFIED_BY_ANSWER:
            await say("Thanks, that fixed it!")
            resolved = True
            break
    if resolved:
        tally.resolved += 1
    elif draw(seed, "leaves", cid) < LEAVES_WITHOUT_HUMAN:
        tally.left += 1
    else:
        _, handoff = await say("This isn't working. Can I talk to a human, please?")
        tally.handoffs += int(handoff)
    response = await http.post(
        f"/conversations/{cid}/close", headers=headers, json={"resolved": resolved}
    )
    _success(response)


async def _streamed_turn(
    http: httpx.AsyncClient, cid: str, headers: dict[str, str], message: str, turn: int
) -> tuple[str, bool]:
    parts: list[str] = []
    handoff = False
    async with http.stream(
        "POST",
        f"/conversations/{cid}/turns/stream",
        headers=headers,
        json={"message": message, "turn": turn},
    ) as response:
        _success(response)
        async for line in response.aiter_lines():
            if not line:
                continue
            item: dict[str, Any] = json.loads(line)
            if item.get("done"):
                handoff = bool(item.get("handoff"))
            else:
                parts.append(str(item.get("delta", "")))
    return "".join(parts), handoff


def _question(conversation: Conversation, n: int) -> str:
    topic = conversation.topic
    if n == 1:
        return f"Hi, I have a problem with my {topic}."
    return f"Still stuck with the {topic}; here are more details (attempt {n})."


def _success(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise _Failed(f"{response.request.method} {response.request.url}: {response.status_code}")
    return response
