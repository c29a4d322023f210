"""Where the examples find FeatBit, the assignment store and their output directory.

Every example runs on embedded defaults: the flags defined in code in ``examples/_flags.py``
(served offline; ``examples/data/flags.json`` holds the same data in FeatBit's format), the
unit policy file (``examples/data/policy.toml``), the in-memory assignment store, and files
under ``out/`` at the repository root (git-ignored).
Environment variables point an example at real services instead:

- ``FEATBIT_ENV_SECRET``, ``FEATBIT_STREAMING_URL``, ``FEATBIT_EVENT_URL``: all three connect
  to a FeatBit server (its environment must hold the examples' flags, as in ``flags.json``);
  setting only some of them is an error naming the missing ones, never a silent offline run.
- ``REDIS_URL``: keep assignments in Redis (``RedisStore``), shared by every instance.
- ``EXAMPLES_OUT``: the output directory.
- ``EXAMPLES_SPANS``: ``file`` (default: ``spans.jsonl`` next to the events), ``console`` or
  ``off``.

Nothing here prints a secret: :meth:`Settings.describe` names the services without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from examples._flags import EXAMPLE_FLAGS
from featbit_experiments import (
    AssignmentStore,
    EventSink,
    FeatBitProvider,
    RedisStore,
    UnitPolicy,
    load_policy,
)

__all__ = [
    "DATA",
    "FLAGS",
    "POLICY",
    "REPOSITORY",
    "FeatBitServer",
    "Settings",
    "SettingsError",
    "shown_path",
]

REPOSITORY = Path(__file__).resolve().parent.parent
DATA = REPOSITORY / "examples" / "data"
FLAGS = DATA / "flags.json"
FLAGS_IN_CODE = REPOSITORY / "examples" / "_flags.py"
POLICY = DATA / "policy.toml"

_FEATBIT_VARIABLES = ("FEATBIT_ENV_SECRET", "FEATBIT_STREAMING_URL", "FEATBIT_EVENT_URL")
_SPAN_MODES = ("file", "console", "off")


class SettingsError(ValueError):
    """The environment asks for something the examples cannot do (the message says what)."""


@dataclass(frozen=True)
class FeatBitServer:
    """A FeatBit server to connect to instead of the bootstrap file.

    Args:
        env_secret: The environment's server-side secret.
        streaming_url: The evaluation server's WebSocket base URL.
        event_url: Where insights (exposures and metrics) are sent.
        config_options: Extra ``fbclient.config.Config`` options (timeouts, proxies).
    """

    env_secret: str
    streaming_url: str
    event_url: str
    config_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """What an example runs on (see the module docstring for the environment variables).

    Args:
        featbit: A FeatBit server, or None for the flags defined in code, served offline.
        redis_url: A Redis server for the assignment store, or None for the in-memory one.
        out_dir: Where each example writes its directory of events, spans and report.
        spans: ``file``, ``console`` or ``off``.
    """

    featbit: FeatBitServer | None = None
    redis_url: str | None = None
    out_dir: Path = REPOSITORY / "out"
    spans: str = "file"

    def __post_init__(self) -> None:
        if self.spans not in _SPAN_MODES:
            raise SettingsError(
                f"EXAMPLES_SPANS={self.spans!r}: use one of {', '.join(_SPAN_MODES)}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        given = {
            name: env[name].strip() for name in _FEATBIT_VARIABLES if env.get(name, "").strip()
        }
        featbit = None
        if given:
            missing = [name for name in _FEATBIT_VARIABLES if name not in given]
            if missing:
                raise SettingsError(
                    f"{', '.join(sorted(given))} set but {', '.join(missing)} missing: set all "
                    "three to use a FeatBit server, or none for the offline flags"
                )
            secret, streaming_url, event_url = (given[name] for name in _FEATBIT_VARIABLES)
            featbit = FeatBitServer(secret, streaming_url, event_url)
        out = env.get("EXAMPLES_OUT", "").strip()
        return cls(
            featbit=featbit,
            redis_url=env.get("REDIS_URL", "").strip() or None,
            out_dir=Path(out) if out else REPOSITORY / "out",
            spans=env.get("EXAMPLES_SPANS", "").strip().lower() or "file",
        )

    def policy(self) -> UnitPolicy:
        """The examples' unit policy file."""
        return load_policy(POLICY)

    def store(self, example: str) -> AssignmentStore | None:
        """The assignment store: Redis when ``redis_url`` is set (keys prefixed per example),
        else None, which makes the provider use its in-memory store."""
        if self.redis_url is None:
            return None
        return RedisStore(self.redis_url, key_prefix=f"featbit-examples:{example}:")

    def provider(self, example: str, *, sinks: Iterable[EventSink]) -> FeatBitProvider:
        """A provider on the configured FeatBit source, policy and store."""
        policy = self.policy()
        store = self.store(example)
        if self.featbit is None:
            return FeatBitProvider.offline(
                flags=EXAMPLE_FLAGS, policy=policy, sinks=sinks, store=store
            )
        return FeatBitProvider.connect(
            self.featbit.env_secret,
            self.featbit.streaming_url,
            self.featbit.event_url,
            policy=policy,
            sinks=sinks,
            store=store,
            **self.featbit.config_options,
        )

    def describe(self) -> list[str]:
        """What the example runs on, one line each, without secrets."""
        featbit = (
            f"FeatBit server {_redacted(self.featbit.streaming_url)} (FEATBIT_* variables)"
            if self.featbit is not None
            else f"offline, defined in code ({shown_path(FLAGS_IN_CODE)})"
        )
        store = (
            f"Redis {_redacted(self.redis_url)} (REDIS_URL)"
            if self.redis_url is not None
            else "in memory"
        )
        return [
            f"flags:       {featbit}",
            f"unit policy: {shown_path(POLICY)}",
            f"assignments: {store}",
        ]


def _redacted(url: str) -> str:
    """``url`` without a user name or password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPOSITORY))
    except ValueError:
        return str(path)
