"""The local IAM policy simulator: SimulatePrincipalPolicy and SimulateCustomPolicy, paged as
IAM pages them, then through a real moto server over a socket with plain boto3. (The evaluation
engine underneath is qa_console.ops.iam; its own tests are tests/test_iam_evaluate.py.)

The server tests fail if a moto upgrade breaks the patch (the calls would answer
NotImplemented / 500 or come back in a shape botocore does not parse).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fixtures_iam import SAGEMAKER, allow, deny, doc, policy
from fixtures_localaws_iam import IAM_TEST_ACCOUNT
from qa_console.localaws.iam.simulator import (
    SimulationInputError,
    SimulationRequest,
    simulate,
)
from qa_console.ops.iam.evaluate import ALLOWED, IMPLICIT_DENY


def test_simulate_pages_one_result_per_action_and_resource() -> None:
    grants = [policy(allow("s3:Get*", "arn:aws:s3:::b/*"))]
    request = SimulationRequest(
        action_names=["s3:GetObject", "s3:PutObject"],
        resource_arns=["arn:aws:s3:::b/1", "arn:aws:s3:::c/1"],
        max_items=3,
    )
    first = simulate(grants, request)
    assert first["IsTruncated"] is True
    pairs = [
        (r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"])
        for r in first["EvaluationResults"]
    ]
    assert pairs == [
        ("s3:GetObject", "arn:aws:s3:::b/1", ALLOWED),
        ("s3:GetObject", "arn:aws:s3:::c/1", IMPLICIT_DENY),
        ("s3:PutObject", "arn:aws:s3:::b/1", IMPLICIT_DENY),
    ]
    rest = simulate(grants, SimulationRequest(**{**request.__dict__, "marker": first["Marker"]}))
    assert rest["IsTruncated"] is False and len(rest["EvaluationResults"]) == 1
    with pytest.raises(SimulationInputError):
        simulate(grants, SimulationRequest(**{**request.__dict__, "marker": "forged"}))


# --- through a real moto server ------------------------------------------------------------------


def _context(key: str, *values: str, kind: str = "string") -> list[dict[str, Any]]:
    return [{"ContextKeyName": key, "ContextKeyValues": list(values), "ContextKeyType": kind}]


def _by_action(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["EvalActionName"]: result for result in response["EvaluationResults"]}


def _sources(result: dict[str, Any]) -> list[str]:
    return [statement["SourcePolicyId"] for statement in result["MatchedStatements"]]


def test_install_is_idempotent(iam_moto_endpoint: str) -> None:
    from moto.iam.responses import IamResponse

    from qa_console.localaws.iam.simulator import install_iam_simulation

    before = IamResponse.simulate_principal_policy  # type: ignore[attr-defined]
    install_iam_simulation()
    assert IamResponse.simulate_principal_policy is before  # type: ignore[attr-defined]
    assert IamResponse.simulate_custom_policy.__module__.endswith("iam.simulator")  # type: ignore[attr-defined]


def test_user_simulation_collects_inline_managed_and_group_policies(
    iam_client: Any, unique_name: Callable[[str], str]
) -> None:
    user, group = unique_name("user"), unique_name("group")
    arn = iam_client.create_user(UserName=user)["User"]["Arn"]
    assert f":{IAM_TEST_ACCOUNT}:" in arn
    iam_client.create_group(GroupName=group)
    iam_client.add_user_to_group(GroupName=group, UserName=user)
    iam_client.put_group_policy(
        GroupName=group, PolicyName="GroupS3",
        PolicyDocument=doc(allow(["s3:GetObject", "s3:DeleteObject"], Sid="GroupS3")),
    )  # fmt: skip
    managed = iam_client.create_policy(
        PolicyName=unique_name("logs"), PolicyDocument=doc(allow("logs:*"))
    )["Policy"]
    iam_client.attach_group_policy(GroupName=group, PolicyArn=managed["Arn"])
    iam_client.put_user_policy(
        UserName=user, PolicyName="NoDeletes", PolicyDocument=doc(deny("s3:DeleteObject"))
    )
    response = iam_client.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=["s3:GetObject", "s3:DeleteObject", "logs:GetLogEvents", "ec2:RunInstances"],
    )
    results = _by_action(response)
    assert response["IsTruncated"] is False
    assert results["s3:GetObject"]["EvalDecision"] == "allowed"
    assert _sources(results["s3:GetObject"]) == [f"group_{group}_GroupS3"]
    assert results["s3:DeleteObject"]["EvalDecision"] == "explicitDeny"
    assert _sources(results["s3:DeleteObject"]) == [f"user_{user}_NoDeletes"]
    assert results["logs:GetLogEvents"]["EvalDecision"] == "allowed"
    assert _sources(results["logs:GetLogEvents"]) == [managed["PolicyName"]]
    assert results["ec2:RunInstances"]["EvalDecision"] == "implicitDeny"
    assert results["ec2:RunInstances"]["MatchedStatements"] == []
    assert all(result["EvalResourceName"] == "*" for result in results.values())
    statement = results["s3:GetObject"]["MatchedStatements"][0]
    assert statement["SourcePolicyType"] == "IAM Policy"
    assert statement["StartPosition"] == {"Line": 1, "Column": 41}


def test_role_pass_role_needs_passed_to_service(
    iam_client: Any, unique_name: Callable[[str], str]
) -> None:
    role = iam_client.create_role(
        RoleName=unique_name("deployer"),
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": SAGEMAKER}}]}
        ),
    )["Role"]  # fmt: skip
    iam_client.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="PassToSageMaker",
        PolicyDocument=doc(
            allow(
                "iam:PassRole",
                "arn:aws:iam::*:role/*",
                Condition={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
            )
        ),
    )
    execution_role = f"arn:aws:iam::{IAM_TEST_ACCOUNT}:role/ExecutionRole"
    with_context = iam_client.simulate_principal_policy(
        PolicySourceArn=role["Arn"],
        ActionNames=["iam:PassRole"],
        ResourceArns=[execution_role],
        ContextEntries=_context("iam:PassedToService", SAGEMAKER),
    )["EvaluationResults"][0]
    assert with_context["EvalDecision"] == "allowed"
    assert with_context["EvalResourceName"] == execution_role
    assert _sources(with_context) == [f"role_{role['RoleName']}_PassToSageMaker"]

    without = iam_client.simulate_principal_policy(
        PolicySourceArn=role["Arn"], ActionNames=["iam:PassRole"], ResourceArns=[execution_role]
    )["EvaluationResults"][0]
    assert without["EvalDecision"] == "implicitDeny"
    (specific,) = without["ResourceSpecificResults"]
    assert specific["EvalResourceName"] == execution_role
    assert specific["EvalResourceDecision"] == "implicitDeny"
    assert specific["MissingContextValues"] == ["iam:PassedToService"]

    to_ec2 = iam_client.simulate_principal_policy(
        PolicySourceArn=role["Arn"],
        ActionNames=["iam:PassRole"],
        ContextEntries=_context("iam:PassedToService", "ec2.amazonaws.com"),
    )["EvaluationResults"][0]
    assert to_ec2["EvalDecision"] == "implicitDeny"
    assert to_ec2["MissingContextValues"] == []


def test_principal_simulation_adds_input_policies_and_boundaries(
    iam_client: Any, unique_name: Callable[[str], str]
) -> None:
    arn = iam_client.create_user(UserName=unique_name("user"))["User"]["Arn"]
    response = iam_client.simulate_principal_policy(
        PolicySourceArn=arn,
        PolicyInputList=[doc(allow("*"))],
        PermissionsBoundaryPolicyInputList=[doc(allow("s3:*"))],
        ActionNames=["s3:ListBucket", "iam:CreateUser"],
    )
    results = _by_action(response)
    assert results["s3:ListBucket"]["EvalDecision"] == "allowed"
    assert "PolicyInputList.1" in _sources(results["s3:ListBucket"])
    assert results["s3:ListBucket"]["PermissionsBoundaryDecisionDetail"] == {
        "AllowedByPermissionsBoundary": True
    }
    assert results["iam:CreateUser"]["EvalDecision"] == "implicitDeny"
    assert results["iam:CreateUser"]["PermissionsBoundaryDecisionDetail"] == {
        "AllowedByPermissionsBoundary": False
    }


def test_custom_policy_matches_aws_documented_output(iam_client: Any) -> None:
    text = (
        '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*",'
        '"Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
    )
    late = iam_client.simulate_custom_policy(
        PolicyInputList=[text],
        ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=_context("aws:CurrentTime", "2019-04-25T11:00:00Z", kind="date"),
    )
    assert late["EvaluationResults"] == [
        {
            "EvalActionName": "dynamodb:CreateBackup",
            "EvalResourceName": "*",
            "EvalDecision": "allowed",
            "MatchedStatements": [
                {
                    "SourcePolicyId": "PolicyInputList.1",
                    "SourcePolicyType": "IAM Policy",
                    "StartPosition": {"Line": 1, "Column": 38},
                    "EndPosition": {"Line": 1, "Column": 167},
                }
            ],
            "MissingContextValues": [],
        }
    ]
    early = iam_client.simulate_custom_policy(
        PolicyInputList=[text],
        ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=_context("aws:CurrentTime", "2014-04-25T11:00:00Z", kind="date"),
    )["EvaluationResults"][0]
    assert (early["EvalDecision"], early["MatchedStatements"]) == ("implicitDeny", [])
    unknown_time = iam_client.simulate_custom_policy(
        PolicyInputList=[text], ActionNames=["dynamodb:CreateBackup"]
    )["EvaluationResults"][0]
    assert unknown_time["MissingContextValues"] == ["aws:CurrentTime"]


def test_custom_policy_refuses_a_malformed_document(iam_client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        iam_client.simulate_custom_policy(
            PolicyInputList=["{not json"], ActionNames=["s3:GetObject"]
        )
    assert raised.value.response["Error"]["Code"] == "InvalidInput"


def test_unknown_principal_is_no_such_entity(iam_client: Any) -> None:
    for kind in ("user", "role", "group"):
        with pytest.raises(ClientError) as raised:
            iam_client.simulate_principal_policy(
                PolicySourceArn=f"arn:aws:iam::{IAM_TEST_ACCOUNT}:{kind}/nobody-here",
                ActionNames=["s3:GetObject"],
            )
        error = raised.value.response
        assert error["Error"]["Code"] == "NoSuchEntity"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert f"The {kind} with name nobody-here cannot be found." in error["Error"]["Message"]


def test_assumed_role_arn_is_invalid_input(iam_client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        iam_client.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:sts::{IAM_TEST_ACCOUNT}:assumed-role/Deployer/session-1",
            ActionNames=["s3:GetObject"],
        )
    error = raised.value.response
    assert error["Error"]["Code"] == "InvalidInput"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "does not clearly define entity type and name" in error["Error"]["Message"]


def test_the_default_caller_of_an_unenforcing_moto_is_allowed_everything(iam_client: Any) -> None:
    """moto names credentials of no IAM user `arn:aws:sts::ACCT:user/moto` and, without IAM
    enforcement (the embedded local AWS), lets them do anything: the simulator says so."""
    response = iam_client.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:sts::{IAM_TEST_ACCOUNT}:user/moto",
        ActionNames=["iam:PassRole", "sagemaker:CreateEndpoint"],
    )
    results = _by_action(response)
    assert {r["EvalDecision"] for r in results.values()} == {"allowed"}
    assert _sources(results["iam:PassRole"]) == ["local-aws-default-caller"]
    with pytest.raises(ClientError):  # a real IAM user of that name is still looked up
        iam_client.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{IAM_TEST_ACCOUNT}:user/moto",
            ActionNames=["s3:GetObject"],
        )


def test_pagination_with_max_items_and_marker(iam_client: Any) -> None:
    actions = [f"s3:Action{number}" for number in range(7)]
    first = iam_client.simulate_custom_policy(
        PolicyInputList=[doc(allow("s3:*"))], ActionNames=actions, MaxItems=3
    )
    assert first["IsTruncated"] is True and len(first["EvaluationResults"]) == 3
    paginator = iam_client.get_paginator("simulate_custom_policy")
    pages = list(
        paginator.paginate(
            PolicyInputList=[doc(allow("s3:*"))],
            ActionNames=actions,
            PaginationConfig={"PageSize": 3},
        )
    )
    assert [len(page["EvaluationResults"]) for page in pages] == [3, 3, 1]
    seen = [result["EvalActionName"] for page in pages for result in page["EvaluationResults"]]
    assert seen == actions


def test_aws_managed_sagemaker_policy_is_attached_and_evaluated(
    iam_client: Any, unique_name: Callable[[str], str]
) -> None:
    managed_arn = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
    assert iam_client.get_policy(PolicyArn=managed_arn)["Policy"]["PolicyName"] == (
        "AmazonSageMakerFullAccess"
    )
    user = unique_name("mluser")
    arn = iam_client.create_user(UserName=user)["User"]["Arn"]
    iam_client.attach_user_policy(UserName=user, PolicyArn=managed_arn)
    execution_role = f"arn:aws:iam::{IAM_TEST_ACCOUNT}:role/BioSageMakerExecutionRole"
    allowed = iam_client.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=["sagemaker:CreateEndpoint", "iam:PassRole"],
        ResourceArns=[execution_role],
        ContextEntries=_context("iam:PassedToService", SAGEMAKER),
    )
    results = _by_action(allowed)
    assert results["sagemaker:CreateEndpoint"]["EvalDecision"] == "allowed"
    assert _sources(results["sagemaker:CreateEndpoint"]) == ["AmazonSageMakerFullAccess"]
    assert results["iam:PassRole"]["EvalDecision"] == "allowed"
    # The managed policy only lets SageMaker roles be passed to SageMaker.
    without = iam_client.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["iam:PassRole"], ResourceArns=[execution_role]
    )["EvaluationResults"][0]
    assert without["EvalDecision"] == "implicitDeny"
    assert "iam:PassedToService" in without["ResourceSpecificResults"][0]["MissingContextValues"]
    not_admin = iam_client.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["iam:CreateUser"]
    )["EvaluationResults"][0]
    assert not_admin["EvalDecision"] == "implicitDeny"
