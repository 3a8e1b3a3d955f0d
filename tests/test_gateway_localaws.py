"""The gateway as the embedded local AWS runs it: in the supervisor process, next to moto."""

from __future__ import annotations

import json
import uuid

import httpx

from fixtures_gateway import build_key_api
from fixtures_localaws import LocalAws
from qa_console.localaws.apigateway import local_invoke_url

HANDLER = """
import json

def handler(event, context):
    question = json.loads(event["body"])["question"]
    key = event["requestContext"]["identity"]["apiKey"]
    return {
        "statusCode": 200,
        "headers": {"Access-Control-Allow-Origin": "*"},
        "body": json.dumps({"answer": question.upper(), "key": key}),
    }
"""


def test_an_api_with_a_key_is_served_by_the_local_aws(local_aws: LocalAws) -> None:
    name = f"gw-local-{uuid.uuid4().hex[:8]}"
    iam, lam, apigw = (local_aws.client(s) for s in ("iam", "lambda", "apigateway"))
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    api_id, key = build_key_api(
        lam,
        apigw,
        name=name,
        role=role["Role"]["Arn"],
        handler=HANDLER,
        throttle={"rateLimit": 10.0, "burstLimit": 5},
        region=local_aws.region,
    )

    # The launcher exports the gateway's URL, so the URL the expose feature prints is local.
    url = local_invoke_url(local_aws.gateway_url, api_id, "prod", "ask")
    assert url.startswith(local_aws.gateway_url + "/restapis/")
    question = {"question": "who are you?"}
    answered = httpx.post(url, json=question, headers={"x-api-key": key}, timeout=30)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"answer": "WHO ARE YOU?", "key": key}
    assert answered.headers["access-control-allow-origin"] == "*"
    refused = httpx.post(url, json=question, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {"message": "Forbidden"}
