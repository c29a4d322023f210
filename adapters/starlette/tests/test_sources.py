"""Unit ID sources read raw values from the ASGI scope; the reader picks the first valid one
per unit and reports invalid ones without trusting them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from featbit_experiments_starlette import (
    Source,
    UnitReader,
    authenticated_tenant,
    authenticated_user,
    cookie,
    header,
    path_param,
    query_param,
)
from starlette.authentication import BaseUser, SimpleUser, UnauthenticatedUser

from adapters.starlette.tests.apps import TenantUser
from featbit_experiments import ConfigurationError
from featbit_experiments.units import UnitCatalog


def scope(
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
    **extra: Any,
) -> dict[str, Any]:
    """An HTTP scope as an ASGI server hands it to the app."""
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": headers or [],
        **extra,
    }


def test_a_header_source_matches_the_name_case_insensitively() -> None:
    source = header("X-Conversation-Id")

    assert source(scope(headers=[(b"x-conversation-id", b"c-1")])) == "c-1"
    assert source(scope(headers=[(b"x-other", b"c-1")])) is None


def test_a_repeated_header_is_one_value_that_no_unit_accepts() -> None:
    reader = UnitReader(UnitCatalog())
    repeated = [(b"x-conversation-id", b"c-1"), (b"x-conversation-id", b"c-2")]

    ids, invalid = reader.read(scope(headers=repeated))

    assert ids == {}
    assert [(i.unit, i.source.description) for i in invalid] == [
        ("conversation", "header x-conversation-id")
    ]


def test_a_query_source_reads_the_decoded_parameter() -> None:
    assert query_param("cid")(scope(query=b"a=1&cid=c%2D7")) == "c-7"
    assert query_param("cid")(scope(query=b"a=1")) is None


def test_a_cookie_source_reads_the_named_cookie() -> None:
    headers = [(b"cookie", b"theme=dark; conversation=c-9")]

    assert cookie("conversation")(scope(headers=headers)) == "c-9"
    assert cookie("missing")(scope(headers=headers)) is None


def test_a_path_source_matches_its_templates_before_routing() -> None:
    source = path_param("cid", "/chat/{cid}", "/chat/{cid}/messages")

    assert source(scope("/chat/c-3")) == "c-3"
    assert source(scope("/chat/c-4/messages")) == "c-4"
    assert source(scope("/other/c-5")) is None


def test_a_path_source_matches_below_the_root_path() -> None:
    source = path_param("cid", "/chat/{cid}")

    assert source(scope("/api/chat/c-3", root_path="/api")) == "c-3"


def test_a_path_source_prefers_path_params_already_routed() -> None:
    source = path_param("cid", "/chat/{cid}")

    assert source(scope("/elsewhere", path_params={"cid": "c-8"})) == "c-8"


def test_a_path_template_without_the_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="no parameter 'cid'"):
        path_param("cid", "/chat/{id}")


def test_the_authenticated_user_source_reads_the_identity() -> None:
    assert authenticated_user()(scope(user=SimpleUser("alice"))) == "alice"


def test_an_anonymous_user_has_no_user_id() -> None:
    assert authenticated_user()(scope(user=UnauthenticatedUser())) is None
    assert authenticated_user()(scope()) is None


def test_a_user_class_without_an_identity_has_no_user_id() -> None:
    class Partial(BaseUser):
        @property
        def is_authenticated(self) -> bool:
            return True

    assert authenticated_user()(scope(user=Partial())) is None


def test_the_authenticated_tenant_source_reads_the_tenant() -> None:
    assert authenticated_tenant()(scope(user=TenantUser("alice", "acme"))) == "acme"


def test_a_later_source_is_used_when_the_earlier_ones_have_no_value() -> None:
    reader = UnitReader(
        UnitCatalog(), {"conversation": (header("x-thread"), query_param("cid"))}
    )

    ids, problems = reader.read(scope(query=b"cid=q-1"))

    assert (ids, list(problems)) == ({"conversation": "q-1"}, [])


def test_sources_that_disagree_give_no_id_but_a_conflict_naming_both() -> None:
    reader = UnitReader(
        UnitCatalog(), {"conversation": (header("x-thread"), query_param("cid"))}
    )

    ids, problems = reader.read(scope(headers=[(b"x-thread", b"t-1")], query=b"cid=q-1"))

    assert ids == {}
    [conflict] = problems
    assert conflict.description == "header x-thread, query cid"
    assert conflict.guardrail.value == "unit_conflict"


def test_an_invalid_value_is_not_followed_by_the_next_sources_value() -> None:
    reader = UnitReader(
        UnitCatalog(), {"conversation": (header("x-thread"), query_param("cid"))}
    )

    ids, problems = reader.read(scope(headers=[(b"x-thread", b"a b")], query=b"cid=q-1"))

    assert ids == {}
    assert [p.source.description for p in problems] == ["header x-thread"]


def test_an_empty_value_counts_as_absent() -> None:
    ids, invalid = UnitReader(UnitCatalog()).read(scope(headers=[(b"x-conversation-id", b"")]))

    assert (ids, list(invalid)) == ({}, [])


def test_a_source_that_raises_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(scope: Any) -> str | None:
        raise RuntimeError("bug in a custom source")

    reader = UnitReader(
        UnitCatalog(),
        {"workflow": (Source("custom", "broken", broken), header("x-workflow-id"))},
    )

    with caplog.at_level(logging.ERROR, logger="featbit_experiments"):
        ids, _ = reader.read(scope(headers=[(b"x-workflow-id", b"wf-1")]))

    assert ids == {"workflow": "wf-1"}
    assert "custom broken" in caplog.text


def test_a_unit_mapped_to_no_sources_is_not_read() -> None:
    reader = UnitReader(UnitCatalog(), {"request": ()})

    ids, _ = reader.read(scope(headers=[(b"x-request-id", b"r-1")]))

    assert "request" not in ids
    assert "request" not in reader.plan


def test_an_unknown_unit_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown unit"):
        UnitReader(UnitCatalog(), {"tenant": header("x-tenant")})


def test_a_bare_callable_counts_as_client_controlled() -> None:
    with pytest.raises(ConfigurationError, match="client-controlled"):
        UnitReader(UnitCatalog(), {"user": lambda scope: "u-1"})
