"""`qa-console expose` against the embedded local AWS and its gateway: a deployed tiny model
answers through API Gateway and Lambda, by the http backend and a plain HTTP client; keys,
throttles, bad bodies and CORS behave as documented; re-exposing updates; the OpenAPI document
holds under generated requests; teardown removes it all."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures_deploy import KNOWN, deploy_request, names_in
from fixtures_foundation import run_cli
from fixtures_localaws import LocalAws
from qa_console.chat import ChatSession
from qa_console.ops.deploy.flow import deploy_model
from qa_console.ops.expose.api import ExposeRequest
from qa_console.ops.expose.flow import ExposeOutcome, expose_endpoint
from qa_console.ops.teardown import teardown

ENDPOINT = "exp-bot"
XDG = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One user for the whole module: the record, the key file and plugins.toml that expose
    writes must still be there for the tests that follow (conftest gives each test its own)."""
    home = tmp_path_factory.mktemp("expose-home")
    return {name: str(home / name.lower()) for name in XDG}


@pytest.fixture(autouse=True)
def _as_the_shared_user(shared_home: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in shared_home.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def exposed(
    local_aws: LocalAws, deploy_role: str, t5_archive: Path, shared_home: dict[str, str]
) -> ExposeOutcome:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in shared_home.items():
            patch.setenv(name, value)
        deploy_model(
            local_aws.target,
            t5_archive,
            deploy_request(ENDPOINT, deploy_role),
            bucket="expose-tests",
        )
        return expose_endpoint(local_aws.target, ExposeRequest(ENDPOINT, rate=50, burst=50))


def key_of(outcome: ExposeOutcome) -> str:
    return outcome.key_file.read_text().strip()


def post(outcome: ExposeOutcome, body: Any, key: str | None = None, raw: bool = False) -> Any:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    content = body if raw else json.dumps(body)
    return httpx.post(outcome.result.url, content=content, headers=headers, timeout=60)


def test_the_http_backend_answers_through_the_api_at_once(exposed: ExposeOutcome) -> None:
    """expose added NAME-api to the user's plugins.toml, the key read from its file."""
    session = ChatSession()
    assert exposed.backend in session.names
    reply = session.ask(KNOWN[0], exposed.backend)
    assert reply.answer == KNOWN[1]
    mode = stat.S_IMODE(exposed.key_file.stat().st_mode)
    assert mode == 0o600
    listed = run_cli("backends", "list", "--json")
    assert key_of(exposed) not in listed.stdout + listed.stderr


def test_a_plain_client_with_the_key_gets_the_answer(exposed: ExposeOutcome) -> None:
    reply = post(exposed, {"question": KNOWN[0]}, key_of(exposed))
    assert reply.status_code == 200
    data = reply.json()
    assert data["answer"] == KNOWN[1] and data["latency_ms"] > 0
    assert reply.headers["access-control-allow-origin"] == "*"


def test_no_key_or_another_apis_key_is_forbidden(
    exposed: ExposeOutcome, local_aws: LocalAws
) -> None:
    missing = post(exposed, {"question": KNOWN[0]})
    assert missing.status_code == 403
    assert missing.headers["access-control-allow-origin"] == "*"  # gateway responses too
    other = local_aws.client("apigateway").create_api_key(name="exp-other", enabled=True)
    assert post(exposed, {"question": KNOWN[0]}, other["value"]).status_code == 403


def test_bad_bodies_are_400_or_413_with_a_message_and_cors(exposed: ExposeOutcome) -> None:
    key = key_of(exposed)
    for body, raw, status, words in [
        ("not json", True, 400, "not JSON"),
        ([1, 2], False, 400, "JSON object"),
        ({"question": ""}, False, 400, "non-empty string"),
        ({"question": "x", "extra": 1}, False, 400, "unknown field 'extra'"),
        ({"question": "x", "parameters": [1]}, False, 400, "must be a JSON object"),
        ({"question": "x" * 3000}, False, 413, "limit is 2000"),
        ({"question": "x" * 20_000}, False, 413, "bytes"),
    ]:
        reply = post(exposed, body, key, raw=raw)
        assert reply.status_code == status, (body, reply.text)
        assert words in reply.json()["message"]
        assert reply.headers["access-control-allow-origin"] == "*"


def test_the_preflight_answers_with_the_cors_headers(exposed: ExposeOutcome) -> None:
    reply = httpx.options(exposed.result.url, timeout=30)
    assert reply.status_code == 204
    assert reply.headers["access-control-allow-methods"] == "POST,OPTIONS"
    assert "x-api-key" in reply.headers["access-control-allow-headers"].lower()


def test_over_the_rate_is_429(exposed: ExposeOutcome, local_aws: LocalAws) -> None:
    slow = expose_endpoint(
        local_aws.target, ExposeRequest(ENDPOINT, rate=0.5, burst=1, quota_per_day=None)
    )
    try:
        # The gateway, like API Gateway, applies a changed usage plan within a second or two.
        statuses: list[int] = []
        deadline = time.monotonic() + 10
        while 429 not in statuses and time.monotonic() < deadline:
            statuses.append(post(slow, {"question": KNOWN[0]}, key_of(slow)).status_code)
        assert 429 in statuses and statuses[0] == 200, statuses
        assert set(statuses) == {200, 429}
    finally:  # back to roomy limits for the other tests
        expose_endpoint(local_aws.target, ExposeRequest(ENDPOINT, rate=50, burst=50))


def test_exposing_again_is_an_update_that_keeps_the_key(
    exposed: ExposeOutcome, local_aws: LocalAws
) -> None:
    again = expose_endpoint(
        local_aws.target, ExposeRequest(ENDPOINT, rate=40, burst=40, quota_per_day=500)
    )
    assert again.result.updated
    assert (again.result.api_id, again.result.key_id) == (
        exposed.result.api_id,
        exposed.result.key_id,
    )
    assert key_of(again) == key_of(exposed)
    plan = local_aws.client("apigateway").get_usage_plan(usagePlanId=again.result.usage_plan_id)
    assert plan["throttle"]["rateLimit"] == 40 and plan["quota"]["limit"] == 500
    expose_endpoint(local_aws.target, ExposeRequest(ENDPOINT, rate=50, burst=50))


def test_the_cli_prints_the_url_and_hides_the_key(exposed: ExposeOutcome) -> None:
    run = run_cli("expose", ENDPOINT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == exposed.result.url
    assert key_of(exposed) not in run.stdout + run.stderr
    unwrapped = "".join(run.stderr.split())  # Rich wraps a long path across lines
    assert "".join(str(exposed.key_file).split()) in unwrapped and "curl" in run.stderr
    shown = json.loads(run_cli("expose", ENDPOINT, "--show-key", "--json").stdout)
    assert shown["api_key"] == key_of(exposed)
    missing = run_cli("expose", "no-such-endpoint")
    assert missing.returncode == 2 and "deploy it first" in missing.stderr
    answered = run_cli("ask", "--backend", f"{ENDPOINT}-api", "--json", KNOWN[0])
    assert json.loads(answered.stdout)["answer"] == KNOWN[1], answered.stderr


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
BODIES = (
    st.fixed_dictionaries({"question": st.text(max_size=60)})
    | st.fixed_dictionaries(
        {"question": st.text(min_size=1, max_size=40), "parameters": st.just({"max_new_tokens": 4})}
    )
    | JSON
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES)
def test_generated_requests_never_get_a_5xx_and_match_the_openapi_document(
    exposed: ExposeOutcome, body: Any
) -> None:
    document = json.loads(exposed.openapi_file.read_text())
    reply = post(exposed, body, key_of(exposed))
    documented = document["paths"]["/ask"]["post"]["responses"]
    assert reply.status_code < 500, (body, reply.text)
    assert str(reply.status_code) in documented, (body, reply.status_code)
    schema = documented[str(reply.status_code)]["content"]["application/json"]["schema"]
    resolver = {"$ref": schema["$ref"], "components": document["components"]}
    jsonschema.validate(reply.json(), resolver)
    assert reply.headers["access-control-allow-origin"] == "*"


def test_teardown_removes_the_api_and_what_expose_set_up_here(
    exposed: ExposeOutcome, local_aws: LocalAws
) -> None:
    apigw, lam, iam = (local_aws.client(s) for s in ("apigateway", "lambda", "iam"))
    role = exposed.result.function_name + "-lambda"
    assert iam.get_role(RoleName=role)
    result = teardown(local_aws.target, ENDPOINT)
    kinds = [item["kind"] for item in result.deleted]
    for kind in ("apigateway-usage-plan-key", "apigateway-usage-plan", "apigateway-api-key",
                 "apigateway-rest-api", "lambda-function", "sagemaker-endpoint", "iam-role",
                 "http-backend", "api-key-file"):  # fmt: skip
        assert kind in kinds, kinds
    assert exposed.result.api_id not in {api["id"] for api in apigw.get_rest_apis()["items"]}
    assert exposed.result.function_name not in {
        f["FunctionName"] for f in lam.list_functions()["Functions"]
    }
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role)
    assert ENDPOINT not in names_in(local_aws)
    assert not exposed.key_file.exists()
    assert exposed.backend not in ChatSession().names
