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
    default_sources,
    header,
    path_param,
    query_param,
)
from featbit_experiments_starlette.sources import Repeated
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
    reader = UnitReader(UnitCatalog(), {"conversation": (header("x-thread"), query_param("cid"))})

    ids, problems = reader.read(scope(query=b"cid=q-1"))

    assert (ids, list(problems)) == ({"conversation": "q-1"}, [])


def test_sources_that_disagree_give_no_id_but_a_conflict_naming_both() -> None:
    reader = UnitReader(UnitCatalog(), {"conversation": (header("x-thread"), query_param("cid"))})

    ids, problems = reader.read(scope(headers=[(b"x-thread", b"t-1")], query=b"cid=q-1"))

    assert ids == {}
    [conflict] = problems
    assert conflict.description == "header x-thread, query cid"
    assert conflict.guardrail.value == "unit_conflict"


def test_an_invalid_value_is_not_followed_by_the_next_sources_value() -> None:
    reader = UnitReader(UnitCatalog(), {"conversation": (header("x-thread"), query_param("cid"))})

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


# -- what each source reads, exactly ----------------------------------------------------------


def test_a_repeated_header_joins_every_copy_into_one_repeated_value() -> None:
    repeated = [(b"x-conversation-id", b"c-1"), (b"x-other", b"o"), (b"x-conversation-id", b"c-2")]

    value = header("x-conversation-id")(scope(headers=repeated))

    assert isinstance(value, Repeated) and value == "c-1, c-2"


def test_a_query_parameter_sent_once_is_its_value_and_twice_is_repeated() -> None:
    source = query_param("cid")

    once = source(scope(query=b"cid=c-1&other=x"))
    twice = source(scope(query=b"cid=c-1&other=x&cid=c-2"))

    assert once == "c-1" and not isinstance(once, Repeated)
    assert isinstance(twice, Repeated) and twice == "c-1, c-2"


def test_a_blank_query_parameter_is_read_as_sent_so_a_blank_copy_still_repeats() -> None:
    """``?cid=`` is an empty value (which the reader treats as absent), and ``?cid=&cid=c-1``
    is two copies: the blank one is not silently dropped to let the other through."""
    source = query_param("cid")

    assert source(scope(query=b"cid=")) == ""
    blank_then_value = source(scope(query=b"cid=&cid=c-1"))
    assert isinstance(blank_then_value, Repeated) and blank_then_value == ", c-1"
    ids, invalid = UnitReader(UnitCatalog(), {"conversation": (source,)}).read(
        scope(query=b"cid=&cid=c-1")
    )
    assert ids == {} and [i.source.description for i in invalid] == ["query cid"]


def test_a_cookie_sent_once_is_its_value_whichever_cookie_header_carries_it() -> None:
    source = cookie("conversation")
    headers = [(b"cookie", b"theme=dark"), (b"cookie", b"lang=en; conversation=c-9")]

    value = source(scope(headers=headers))

    assert value == "c-9" and not isinstance(value, Repeated)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"cookie", b"conversation=c-1;conversation=c-2")],
        [(b"cookie", b"conversation=c-1; theme=dark; conversation=c-2")],
        [(b"cookie", b"conversation=c-1"), (b"cookie", b"conversation=c-2")],
    ],
    ids=["one-header-no-spaces", "one-header", "two-headers"],
)
def test_a_cookie_sent_twice_is_one_repeated_value(headers: list[tuple[bytes, bytes]]) -> None:
    value = cookie("conversation")(scope(headers=headers))

    assert isinstance(value, Repeated) and value == "c-1, c-2"


def test_a_path_source_says_where_it_reads() -> None:
    source = path_param("cid", "/chat/{cid}")

    assert (source.location, source.name, source.description) == ("path", "cid", "path cid")
    assert source.client_controlled is True
    with pytest.raises(
        ValueError, match=r"^path_param needs at least one route template naming the parameter$"
    ):
        path_param("cid")


def test_a_path_outside_the_root_path_is_matched_whole() -> None:
    source = path_param("cid", "/chat/{cid}")

    # "/abc" is as long as "/api": stripping it regardless would leave "/chat/c-3".
    assert source(scope("/abc/chat/c-3", root_path="/api")) is None


def test_a_root_path_is_stripped_only_at_a_segment_boundary() -> None:
    whole = path_param("cid", "/apiary/chat/{cid}")
    below_root = path_param("cid", "/{cid}")

    assert whole(scope("/apiary/chat/c-3", root_path="/api")) == "c-3"
    # The mount's own root is the empty route path, which no parameter matches.
    assert below_root(scope("/api", root_path="/api")) is None
    assert below_root(scope("/api/c-4", root_path="/api")) == "c-4"


def test_authentication_sources_are_server_side_and_need_the_user_scope() -> None:
    for source in (
        authenticated_user(),
        authenticated_tenant(),
        authenticated_user(to_id=str.upper),
        authenticated_tenant(to_id=str.upper),
    ):
        assert source.location == "auth" and source.client_controlled is False
        assert source.scope_key == "user"
    assert authenticated_user(to_id=str.upper).name == "user.identity"
    assert authenticated_tenant().name == "user.tenant_id"


def test_to_id_maps_the_identity_and_is_not_called_for_anonymous_requests() -> None:
    def to_id(identity: str) -> str:
        return "id-" + identity.lower()

    assert authenticated_user(to_id=to_id)(scope(user=SimpleUser("Alice"))) == "id-alice"
    assert authenticated_tenant(to_id=to_id)(scope(user=TenantUser("alice", "ACME"))) == "id-acme"
    assert authenticated_user(to_id=to_id)(scope(user=UnauthenticatedUser())) is None
    assert authenticated_user(to_id=to_id)(scope()) is None


def test_a_user_without_the_attribute_or_with_none_in_it_has_no_id() -> None:
    assert authenticated_tenant()(scope(user=SimpleUser("alice"))) is None
    no_tenant = TenantUser("alice", "acme")
    no_tenant.tenant_id = None  # type: ignore[assignment]
    assert authenticated_tenant()(scope(user=no_tenant)) is None


@pytest.mark.parametrize(
    ("unit", "position", "field"),
    [
        ("conversation", 0, b"x-conversation-id"),
        ("user", 1, b"x-user-id"),
        ("account", 1, b"x-account-id"),
        ("workflow", 0, b"x-workflow-id"),
        ("request", 0, b"x-request-id"),
    ],
)
def test_each_default_unit_reads_its_documented_header(
    unit: str, position: int, field: bytes
) -> None:
    source = default_sources()[unit][position]

    assert source.location == "header" and source.header_key == field
    assert source(scope(headers=[(field, b"id-1")])) == "id-1"
