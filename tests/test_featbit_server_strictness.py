"""The test server refuses what FeatBit's evaluation server refuses (read in featbit/featbit
``modules/evaluation-server``): insights bound as System.Text.Json binds them, secrets and
streaming tokens validated as ``Secret``/``Token``/``RequestValidator`` validate them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.support.featbit_server_insights import bind_insights
from tests.support.featbit_server_protocol import (
    SecretEntry,
    decode_token,
    encode_guid,
    make_env_secret,
    secret_env_id,
    stream_rejection,
)

ENV = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")


def item(**fields: Any) -> dict[str, Any]:
    user = {"keyId": "u1", "name": "n", "customizedProperties": []}
    return {"user": user, "variations": [], "metrics": [], **fields}


def metric(**fields: Any) -> dict[str, Any]:
    return {"eventName": "m", "numericValue": 1.0, "timestamp": 1, **fields}


def variation(**fields: Any) -> dict[str, Any]:
    base = {"featureFlagKey": "f", "variation": {"id": "v", "value": "x"}, "timestamp": 1}
    return {**base, **fields}


def bind(*items: Any, raw: str | None = None) -> tuple[int, int]:
    bound = bind_insights((raw if raw is not None else json.dumps(list(items))).encode())
    return bound.status, len(bound.items)


# -- insights binding ------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_a_named_number_token_fails_the_whole_request(token: str) -> None:
    good = json.dumps(item(metrics=[metric()]))
    poisoned = '{"user": {"keyId": "u2"}, "metrics": [{"numericValue": TOKEN}]}'.replace(
        "TOKEN", token
    )
    assert bind(raw=f"[{good}, {poisoned}]") == (400, 0)
    assert bind(raw=f"[{good}]") == (200, 1)


@pytest.mark.parametrize(
    "bad",
    [
        item(metrics=[metric(numericValue="NaN")]),
        item(metrics=[metric(numericValue=None)]),
        item(metrics=[metric(timestamp=1.5)]),
        item(variations=[variation(sendToExperiment="true")]),
        item(variations=[variation(sendToExperiment=None)]),
        item(variations=[variation(timestamp=None)]),
        item(user={"keyId": 42}),
        item(user={"keyId": "u1", "customizedProperties": [{"name": "a", "value": 1}]}),
        item(user={"keyId": "u1", "name": "bad \udc80"}),
        item(variations={}),
    ],
    ids=[
        "NaN-string",
        "null-float",
        "fractional-long",
        "string-bool",
        "null-bool",
        "null-long",
        "number-for-string",
        "number-property-value",
        "unpaired-surrogate",
        "object-for-array",
    ],
)
def test_a_value_of_the_wrong_kind_fails_the_whole_request(bad: dict[str, Any]) -> None:
    assert bind(item(), bad) == (400, 0)


def test_what_the_web_defaults_allow_binds() -> None:
    lenient = item(
        metrics=[metric(numericValue="2.5", timestamp="17")],  # numbers from strings
        variations=[variation(reason="not bound", extra={"any": ["thing", None]})],
        unbound="\udc80 in a property nobody reads",
    )
    lenient["user"] = {"KEYID": "u1", "Name": "n"}  # property names in any case

    assert bind(lenient) == (200, 1)


def test_items_without_a_user_key_are_skipped_not_refused() -> None:
    assert bind(item(), {"user": {"keyId": "  "}}, {"user": None}, {"metrics": []}) == (200, 1)


def test_a_metric_beyond_float32_fails_the_whole_request_with_a_server_error() -> None:
    assert bind(item(), item(metrics=[metric(numericValue=1e39)])) == (500, 0)
    assert bind(item(metrics=[metric(numericValue=3.4e38)])) == (200, 1)


def test_null_arrays_fail_only_in_items_that_are_kept() -> None:
    assert bind(item(variations=None)) == (500, 0)
    assert bind(item(), {"user": {"keyId": ""}, "variations": None}) == (200, 1)


@pytest.mark.parametrize("raw", ["", "{}", "null", '{"user": {"keyId": "u1"}}', "[1,]"])
def test_a_body_that_is_not_an_array_of_insights_is_refused(raw: str) -> None:
    assert bind(raw=raw)[0] == 400


# -- secrets and tokens ----------------------------------------------------------------------


def test_secrets_encode_the_env_id_in_dotnet_guid_byte_order() -> None:
    # Guid.ToByteArray(): the first three groups little-endian.
    assert encode_guid(ENV) == "MyIRAFVEd2aImaq7zN3u_w"
    secret = make_env_secret(ENV)
    assert len(secret) == 44 and secret_env_id(secret) == ENV


@pytest.mark.parametrize(
    "secret",
    ["", "x" * 43, "A" * 22 + "A" * 22, "A" * 22 + "!" * 22, "A" * 22 + "==" + "A" * 20],
    ids=["empty", "short", "zero-guid", "not-base64", "padding-inside"],
)
def test_a_malformed_secret_has_no_env_id(secret: str) -> None:
    assert secret_env_id(secret) is None


def token(secret: str, timestamp_ms: int, position: int = 7) -> str:
    def encode(number: int, width: int) -> str:
        return "".join("QBWSPHDXZU"[int(d)] for d in str(number).zfill(width)[-width:])

    ts = str(timestamp_ms)
    return encode(position, 3) + encode(len(ts), 2) + secret[:position] + encode(
        timestamp_ms, len(ts)
    ) + secret[position:]


def test_a_token_needs_a_44_character_secret_after_padding() -> None:
    secret = make_env_secret(ENV)
    now = int(time.time() * 1000)
    decoded = decode_token(token(secret, now))
    assert decoded is not None and decoded.secret == secret and decoded.timestamp_ms == now
    assert decode_token(token(secret[:40], now)) is None
    assert decode_token("ZZZ" + token(secret, now)[3:]) is None  # position 888 overflows a byte


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"type": "server"}, "Missing token"),
        ({"type": "relay-proxy", "token": "t"}, "Invalid relay proxy token"),
        ({"type": "server", "token": "QQQ"}, "Invalid token: QQQ"),
        ({"type": "server", "token": "{malformed}"}, "Invalid token: Invalid token format"),
        ({"type": "server", "token": "{stale}"}, "Token is expired"),
        ({"type": "server", "token": "{unknown}"}, "Secret is not found"),
        ({"type": "client", "token": "{good}"}, "Inconsistent secret used: server"),
        ({"type": "server", "token": "{good}"}, ""),
    ],
)
def test_stream_requests_are_checked_in_featbits_order(
    params: dict[str, str], reason: str
) -> None:
    secret = make_env_secret(ENV)
    now = int(time.time() * 1000)
    tokens = {
        "{good}": token(secret, now),
        "{stale}": token(secret, now - 31_000),
        "{unknown}": token(make_env_secret(ENV), now),
        "{malformed}": token("A" * 44, now),
    }
    params = {k: tokens.get(v, v) for k, v in params.items()}

    found = stream_rejection(params, {secret: SecretEntry(secret, "server", ENV)}, now_ms=now)

    assert found.startswith(reason) if reason else found == ""
