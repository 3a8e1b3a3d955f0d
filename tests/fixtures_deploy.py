"""Deploying to the embedded local AWS in tests: an execution role that passes the IAM preflight,
a DeployRequest builder, asking an endpoint, and the SageMaker names that exist.

    def test_x(local_aws, deploy_role, t5_archive):
        deploy_model(local_aws.target, t5_archive, deploy_request("x", deploy_role), bucket=...)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fixtures_localaws import LocalAws
from qa_console.backends.sagemaker import SageMakerBackend
from qa_console.ops.deploy.plan import DeployRequest
from qa_console.ops.iam.fix import trust_policy

KNOWN = ("who was ada lovelace?", "poet")  # what the packaged tiny model (t5_archive) learned


@pytest.fixture(scope="session")
def deploy_role(local_aws: LocalAws) -> str:
    iam = local_aws.client("iam")
    trust = trust_policy("sagemaker.amazonaws.com")
    try:
        arn = str(
            iam.create_role(RoleName="deploy-tests", AssumeRolePolicyDocument=json.dumps(trust))[
                "Role"
            ]["Arn"]
        )
    except iam.exceptions.EntityAlreadyExistsException:
        return str(iam.get_role(RoleName="deploy-tests")["Role"]["Arn"])
    # What an execution role needs (the preflight checks it), for any endpoint of the tests.
    serving = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket", "ecr:*", "logs:*",
                           "cloudwatch:PutMetricData", "s3:PutObject", "sns:Publish"],
                "Resource": "*",
            }
        ],
    }  # fmt: skip
    iam.put_role_policy(
        RoleName="deploy-tests", PolicyName="serving", PolicyDocument=json.dumps(serving)
    )
    return arn


def deploy_request(name: str, role: str, **options: Any) -> DeployRequest:
    return DeployRequest(
        endpoint=name,
        model_url="",
        role_arn=role,
        weights_bytes=0,
        transformers_version=None,
        **options,
    )


def answer(local_aws: LocalAws, endpoint: str, question: str = KNOWN[0]) -> str:
    backend = SageMakerBackend("t", endpoint=endpoint, target="local", region=local_aws.region)
    return backend.ask(question).text


def names_in(local_aws: LocalAws) -> set[str]:
    """Every model, endpoint config and endpoint name in the local SageMaker."""
    sagemaker = local_aws.client("sagemaker")
    found = {item["ModelName"] for item in sagemaker.list_models()["Models"]}
    configs = sagemaker.list_endpoint_configs()["EndpointConfigs"]
    found |= {item["EndpointConfigName"] for item in configs}
    found |= {item["EndpointName"] for item in sagemaker.list_endpoints()["Endpoints"]}
    return found
