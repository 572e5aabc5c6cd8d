"""Tests for rfcheck.journal: every exchange recorded with notes and facts; redaction."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest

import rfcheck.provider.app as app_module
from rfcheck.journal import Exchange, Journal, redact_value
from rfcheck.provider.accounts import Client
from rfcheck.facts import API_HOST, AUTH_HOST
from rfcheck.provider.app import Provider
from tests.helpers import REDIRECT_URI, Agent, Login, redirect_params

JWT_LIKE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


def open_exchange(journal: Journal, **overrides: object) -> Exchange:
    fields: dict[str, object] = dict(at=0.0, origin="target", host="api", method="GET", url=f"{API_HOST}/x",
                                     path="/x", query={}, headers={"x-network": "test"}, form={})
    return journal.open(**{**fields, **overrides})


# -- recording through the provider -------------------------------------------------------
def test_every_exchange_is_recorded_in_order(agent: Agent, login: Callable[..., Login], provider: Provider) -> None:
    result = login(nonce="n")
    agent.api("GET", "/invoices", result.access_token)
    agent.http.get("https://elsewhere.example/collect")
    exchanges = list(provider.journal)
    assert [e.n for e in exchanges] == [1, 2, 3, 4] and len(provider.journal) == 4
    assert [(e.host, e.method, e.path, e.status) for e in exchanges] == [
        ("auth", "GET", "/authorize", 302), ("auth", "POST", "/oauth/token", 200),
        ("api", "GET", "/invoices", 200), ("other", "GET", "/collect", 502)]
    assert exchanges[-1].facts == {"foreign": True}
    assert all(e.origin == "target" and e.notes for e in exchanges)


def test_request_details_are_parsed(agent: Agent, code_client: Client, login: Callable[..., Login],
                                    provider: Provider) -> None:
    result = login(token_auth="basic")
    front, back = list(provider.journal)
    assert front.query["client_id"] == code_client.client_id and front.query["redirect_uri"] == REDIRECT_URI
    assert front.url.startswith(f"{AUTH_HOST}/authorize?")
    assert front.request_line == "GET /authorize"
    assert back.form["grant_type"] == "authorization_code" and back.form["code"] == result.code
    assert back.header("Authorization") == back.headers["authorization"] and back.header("AUTHORIZATION")
    assert all(name == name.lower() for name in back.headers)


def test_responses_are_recorded(login: Callable[..., Login], provider: Provider) -> None:
    result = login()
    back = list(provider.journal)[1]
    assert back.response_json == result.tokens
    assert back.response_headers["cache-control"] == "no-store"
    front = list(provider.journal)[0]
    assert front.response_json is None and front.response_headers["location"].startswith(REDIRECT_URI)


def test_facts_of_a_token_exchange(login: Callable[..., Login], provider: Provider, code_client: Client) -> None:
    login()
    facts = list(provider.journal)[1].facts
    assert facts["grant_type"] == "authorization_code"
    assert (facts["client_auth"], facts["client_id"], facts["code_status"]) == (
        "client_secret_post", code_client.client_id, "redeemed")
    assert facts["issued"]["access_jti"] in provider.tokens.access and facts["issued"]["id_token"] is True
    assert facts["code_exchange"] == 1


def test_errors_are_noted(agent: Agent, code_client: Client, provider: Provider) -> None:
    agent.token(code_client, grant_type="authorization_code", code="bogus", redirect_uri=REDIRECT_URI)
    exchange = list(provider.journal)[-1]
    assert exchange.status == 403 and exchange.facts["error"] == "invalid_grant"
    assert exchange.facts["code_status"] == "unknown"
    assert any("invalid_grant" in note for note in exchange.notes)


def test_form_is_recorded_even_when_the_endpoint_refuses(agent: Agent, provider: Provider) -> None:
    agent.token(grant_type="client_credentials", audience="accounts")
    assert list(provider.journal)[-1].form == {"grant_type": "client_credentials", "audience": "accounts"}


def test_json_bodies_are_recorded_as_form(agent: Agent, cc_client: Client, provider: Provider) -> None:
    agent.token(cc_client, json_body=True, grant_type="client_credentials", audience="accounts")
    assert list(provider.journal)[-1].form["audience"] == "accounts"


def test_internal_errors_are_kept_and_answered_500(provider: Provider, agent: Agent,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(call: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setitem(app_module._AUTH_ROUTES, ("GET", "/.well-known/jwks.json"), broken)
    response = agent.http.get(f"{AUTH_HOST}/.well-known/jwks.json")
    assert response.status_code == 500 and response.json()["error"] == "server_error"
    assert [str(e) for e in provider.errors] == ["boom"]
    assert list(provider.journal)[-1].facts["internal_error"] is True
    provider.errors.clear()  # seen; the provider fixture's teardown check is for real failures


# -- steps, marks --------------------------------------------------------------------------
def test_steps_and_marks() -> None:
    journal = Journal()
    assert open_exchange(journal).step == "setup"
    journal.set_step("expiry")
    mark = journal.mark()
    second = open_exchange(journal)
    assert second.step == "expiry" and journal.since(mark) == [second]


def test_thread_steps_are_per_thread() -> None:
    journal = Journal()
    journal.set_step("parallel")
    seen: dict[str, str] = {}

    def unit(name: str) -> None:
        with journal.thread_step(name):
            seen[name] = open_exchange(journal).step
        seen[name + "-after"] = open_exchange(journal).step

    threads = [threading.Thread(target=unit, args=(f"unit-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {**{f"unit-{i}": f"unit-{i}" for i in range(3)}, **{f"unit-{i}-after": "parallel" for i in range(3)}}
    assert sorted(e.n for e in journal) == list(range(1, 7))


def test_concurrent_opens_get_unique_numbers() -> None:
    journal = Journal()
    threads = [threading.Thread(target=lambda: [open_exchange(journal) for _ in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.n for e in journal) == list(range(1, 201))


def test_note_adds_text_and_facts() -> None:
    exchange = open_exchange(Journal())
    exchange.note("first", a=1)
    exchange.note("second", a=2, b=True)
    assert exchange.notes == ["first", "second"] and exchange.facts == {"a": 2, "b": True}


# -- redaction ------------------------------------------------------------------------------
def test_redact_value_keeps_a_prefix_and_a_hash() -> None:
    redacted = redact_value("supersecretvalue")
    assert redacted.startswith("supers…#") and len(redacted) == len("supers…#") + 4
    assert redact_value("supersecretvalue") == redacted != redact_value("supersecretvaluf")


def test_redaction_hides_everything_the_provider_issued(login: Callable[..., Login], code_client: Client,
                                                        provider: Provider) -> None:
    result = login(nonce="n")
    issued = [code_client.client_secret, result.code, result.access_token, result.refresh_token, result.id_token,
              provider.api_key_for(provider.user)]
    text = " | ".join(f"value={value}" for value in issued)
    redacted = provider.journal.redact(text)
    for value in issued:
        assert value not in redacted
        assert redact_value(value) in redacted


def test_redaction_hides_front_channel_tokens(agent: Agent, code_client: Client, provider: Provider) -> None:
    answer = redirect_params(agent.authorize(code_client, response_type="code id_token token", nonce="n"))
    redacted = provider.journal.redact(repr(answer))
    assert all(answer[name] not in redacted for name in ("code", "access_token", "id_token"))


def test_redaction_hides_jwt_shaped_strings_it_did_not_issue() -> None:
    redacted = Journal().redact(f"Authorization: Bearer {JWT_LIKE} end")
    assert JWT_LIKE not in redacted and "eyJhbG…#" in redacted and redacted.endswith(" end")


def test_redaction_leaves_ordinary_text_alone() -> None:
    journal = Journal()
    journal.add_secret("short")  # under 8 characters: not worth hiding, and would wreck ordinary text
    journal.add_secret("")
    assert journal.secrets == frozenset()
    assert journal.redact("a short note about eyJ and dots.") == "a short note about eyJ and dots."


def test_longer_secrets_are_replaced_first() -> None:
    journal = Journal()
    journal.add_secret("abcdefgh")
    journal.add_secret("abcdefgh-and-more")
    redacted = journal.redact("x abcdefgh-and-more y")
    assert redacted == f"x {redact_value('abcdefgh-and-more')} y"


def test_describe_is_redacted(provider: Provider, login: Callable[..., Login]) -> None:
    result = login()
    exchange = list(provider.journal)[1]
    exchange.note(f"the client sent {result.access_token} and {result.refresh_token}")
    described = provider.journal.describe(exchange)
    assert described["method"] == "POST" and described["path"] == "/oauth/token" and described["status"] == 200
    assert described["from"] == "target" and described["to"] == "auth" and described["at"].endswith("Z")
    assert result.access_token not in described["note"] and result.refresh_token not in described["note"]


def test_authorization_parameters_are_read_from_the_query_or_a_posted_form(agent: Agent, code_client: Client,
                                                                           provider: Provider) -> None:
    agent.authorize(code_client, state="by-get", code_challenge_method=None)
    form = dict(httpx.URL(agent.authorize_url(code_client, state="by-post")).params)
    agent.http.post(f"{AUTH_HOST}/authorize", data=form)
    by_get, by_post = list(provider.journal)
    assert by_get.params["state"] == "by-get" and by_get.form == {}
    assert by_post.params["state"] == "by-post" and by_post.query == {}
    assert by_post.params["client_id"] == code_client.client_id
