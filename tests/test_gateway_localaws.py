"""The gateway as the embedded local AWS runs it: in the supervisor process, next to moto."""

from __future__ import annotations

import json
import uuid

import httpx
from fixtures_gateway import lambda_zip
from fixtures_localaws import LocalAws

from qa_console.ops.localaws.gateway import invoke_url

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
    function_arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": lambda_zip({"app.py": HANDLER})},
    )["FunctionArn"]
    api_id = apigw.create_rest_api(name=name)["id"]
    lam.add_permission(
        FunctionName=name,
        StatementId="apigateway",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{local_aws.region}:123456789012:{api_id}/*/POST/ask",
    )
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    ask = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="ask")["id"]
    apigw.put_method(
        restApiId=api_id,
        resourceId=ask,
        httpMethod="POST",
        authorizationType="NONE",
        apiKeyRequired=True,
    )
    apigw.put_integration(
        restApiId=api_id,
        resourceId=ask,
        httpMethod="POST",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{local_aws.region}:lambda:path/2015-03-31/functions/"
        f"{function_arn}/invocations",
    )
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    key = apigw.create_api_key(name=name, enabled=True)
    plan = apigw.create_usage_plan(
        name=name,
        apiStages=[{"apiId": api_id, "stage": "prod"}],
        throttle={"rateLimit": 10.0, "burstLimit": 5},
    )
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

    # The launcher exports the gateway's URL, so the URL the expose feature prints is local.
    url = invoke_url(api_id, "prod", "ask")
    assert url.startswith(local_aws.gateway_url + "/restapis/")
    question = {"question": "who are you?"}
    answered = httpx.post(url, json=question, headers={"x-api-key": key["value"]}, timeout=30)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"answer": "WHO ARE YOU?", "key": key["value"]}
    assert answered.headers["access-control-allow-origin"] == "*"
    refused = httpx.post(url, json=question, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {"message": "Forbidden"}
