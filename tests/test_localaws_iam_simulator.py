"""The local IAM policy simulator: the pure evaluation engine, then SimulatePrincipalPolicy and
SimulateCustomPolicy through a real moto server over a socket with plain boto3.

The server tests fail if a moto upgrade breaks the patch (the calls would answer
NotImplemented / 500 or come back in a shape botocore does not parse).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fixtures_localaws_iam import IAM_TEST_ACCOUNT
from qa_console.localaws.iam.policy_eval import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Policy,
    PolicyDocumentError,
    Position,
    RequestContext,
    evaluate,
    parse_policy,
)
from qa_console.localaws.iam.simulator import (
    SimulationInputError,
    SimulationRequest,
    simulate,
)

SAGEMAKER = "sagemaker.amazonaws.com"


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> str:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version:
        document = {"Version": version, **document}
    return json.dumps(document)


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def policy(
    *statements: dict[str, Any], name: str = "P", version: str | None = "2012-10-17"
) -> Policy:
    return parse_policy(doc(*statements, version=version), name)


def decide(
    policies: list[Policy], action: str, resource: str = "*", **context: str | list[str]
) -> str:
    return evaluate(action, resource, policies, context=RequestContext(context)).decision


# --- the pure engine ---------------------------------------------------------------------------


def test_allow_reports_the_statement_where_aws_documents_it() -> None:
    # AWS's published simulate-custom-policy example: this exact text gives StartPosition 1:38 and
    # EndPosition 1:167 for PolicyInputList.1.
    text = (
        '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*",'
        '"Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
    )
    parsed = parse_policy(text, "PolicyInputList.1")
    context = RequestContext({"aws:CurrentTime": "2019-04-25T11:00:00Z"})
    result = evaluate("dynamodb:CreateBackup", "*", [parsed], context=context)
    assert result.decision == ALLOWED
    (matched,) = result.matched_statements
    assert (matched.policy_id, matched.policy_type) == ("PolicyInputList.1", "IAM Policy")
    assert (matched.start, matched.end) == (Position(1, 38), Position(1, 167))
    early = RequestContext({"aws:CurrentTime": "2014-04-25T11:00:00Z"})
    assert evaluate("dynamodb:CreateBackup", "*", [parsed], context=early).decision == IMPLICIT_DENY


def test_statement_positions_in_a_pretty_printed_array() -> None:
    # AdministratorAccess as IAM stores it; AWS reports its statement at 3:17 - 8:6.
    text = (
        '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {\n      "Effect": "Allow",\n'
        '      "Action": "*",\n      "Resource": "*"\n    }\n  ]\n}'
    )
    (statement,) = parse_policy(text, "AdministratorAccess").statements
    assert (statement.start, statement.end) == (Position(3, 17), Position(8, 6))
    two = parse_policy('{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}, {"Effect"'
                       ':"Deny","Action":"a:b","Resource":"*"}]}', "X")  # fmt: skip
    first, second = two.statements
    assert first.start == Position(1, 15)
    assert second.start == first.end  # the reader stands just after the previous statement


def test_explicit_deny_beats_allow_and_is_the_only_match() -> None:
    grants = policy(allow("s3:*"), name="grants")
    guard = policy(deny("s3:DeleteObject", Sid="NoDelete"), name="guard")
    result = evaluate("s3:DeleteObject", "*", [grants, guard])
    assert result.decision == EXPLICIT_DENY
    assert [(m.policy_id, m.sid) for m in result.matched_statements] == [("guard", "NoDelete")]
    assert decide([grants, guard], "s3:GetObject") == ALLOWED


def test_implicit_deny_when_nothing_matches() -> None:
    result = evaluate("ec2:RunInstances", "*", [policy(allow("s3:GetObject"))])
    assert result.decision == IMPLICIT_DENY
    assert result.matched_statements == ()
    assert decide([], "s3:GetObject") == IMPLICIT_DENY


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:Get*", "s3:GetObject", ALLOWED),
        ("s3:get*", "S3:GETOBJECT", ALLOWED),  # action names are case-insensitive
        ("s3:Get?bject", "s3:GetObject", ALLOWED),
        ("s3:Get?bject", "s3:GetObjectAcl", IMPLICIT_DENY),
        ("s3:Get*", "s3:PutObject", IMPLICIT_DENY),
        ("*", "sagemaker:CreateEndpoint", ALLOWED),
        (["ec2:*", "s3:List*"], "s3:ListBucket", ALLOWED),
    ],
)
def test_action_wildcards(pattern: Any, action: str, expected: str) -> None:
    assert decide([policy(allow(pattern))], action) == expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c", ALLOWED),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::Bucket/a", IMPLICIT_DENY),  # case-sensitive
        ("arn:aws:s3:::bucket/?", "arn:aws:s3:::bucket/a", ALLOWED),
        ("arn:aws:s3:::bucket/?", "arn:aws:s3:::bucket/ab", IMPLICIT_DENY),
        ("arn:aws:iam::*:role/app-*", "arn:aws:iam::123456789012:role/app-x", ALLOWED),
        # A wildcard stays inside its ARN part: the account `*` cannot eat `:role/app-x`.
        ("arn:aws:iam::*:role/app-*", "arn:aws:iam::1:user/role/app-x", IMPLICIT_DENY),
        ("arn:aws:logs:*", "arn:aws:logs:us-east-1:1:log-group:/aws/x:*", ALLOWED),
        # The simulator's default resource "*" is literal: a specific ARN does not cover it.
        ("arn:aws:s3:::bucket/*", "*", IMPLICIT_DENY),
    ],
)
def test_resource_wildcards(pattern: str, resource: str, expected: str) -> None:
    assert decide([policy(allow("s3:GetObject", pattern))], "s3:GetObject", resource) == expected


def test_not_action() -> None:
    everything_but_iam = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide([everything_but_iam], "s3:GetObject") == ALLOWED
    assert decide([everything_but_iam], "iam:CreateUser") == IMPLICIT_DENY


def test_not_resource() -> None:
    only_data = policy(
        allow("s3:*"),
        {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::data/*"]},
    )
    assert decide([only_data], "s3:GetObject", "arn:aws:s3:::data/x") == ALLOWED
    assert decide([only_data], "s3:GetObject", "arn:aws:s3:::other/x") == EXPLICIT_DENY


CONDITION_CASES = [
    # (operator, policy value, request values, expected to hold)
    ("StringEquals", "sagemaker.amazonaws.com", [SAGEMAKER], True),
    ("StringEquals", "Sagemaker.amazonaws.com", [SAGEMAKER], False),
    ("StringNotEquals", "ec2.amazonaws.com", [SAGEMAKER], True),
    ("StringNotEquals", SAGEMAKER, [SAGEMAKER], False),
    ("StringEqualsIgnoreCase", "SAGEMAKER.amazonaws.com", [SAGEMAKER], True),
    ("StringNotEqualsIgnoreCase", "SAGEMAKER.amazonaws.com", [SAGEMAKER], False),
    ("StringLike", "sage*.amazonaws.???", [SAGEMAKER], True),
    ("StringLike", "ec2.*", [SAGEMAKER], False),
    ("StringNotLike", "ec2.*", [SAGEMAKER], True),
    ("StringNotLike", "*.amazonaws.com", [SAGEMAKER], False),
    ("NumericEquals", 5, ["5.0"], True),
    ("NumericNotEquals", "5", ["6"], True),
    ("NumericLessThan", "10", ["9.5"], True),
    ("NumericLessThanEquals", "10", ["10"], True),
    ("NumericGreaterThan", "10", ["10"], False),
    ("NumericGreaterThanEquals", "10", ["10"], True),
    ("NumericEquals", "5", ["five"], False),
    ("DateEquals", "2024-01-01T00:00:00Z", ["2024-01-01T00:00:00+00:00"], True),
    ("DateNotEquals", "2024-01-01T00:00:00Z", ["2024-01-02T00:00:00Z"], True),
    ("DateLessThan", "2024-01-01T00:00:00Z", ["2023-12-31T23:59:59Z"], True),
    ("DateLessThanEquals", "2024-01-01", ["2024-01-01T00:00:00Z"], True),
    ("DateGreaterThan", "2024-01-01T00:00:00Z", ["1704067201"], True),  # epoch seconds
    ("DateGreaterThanEquals", "2024-01-01T00:00:00Z", ["2023-01-01T00:00:00Z"], False),
    ("Bool", "true", ["True"], True),
    ("Bool", True, ["false"], False),
    ("BinaryEquals", "cXEtY29uc29sZQ==", ["cXEtY29uc29sZQ=="], True),
    ("IpAddress", "203.0.113.0/24", ["203.0.113.7"], True),
    ("IpAddress", "203.0.113.0/24", ["198.51.100.7"], False),
    ("IpAddress", "2001:db8::/32", ["2001:db8::1"], True),
    ("NotIpAddress", "203.0.113.0/24", ["198.51.100.7"], True),
    ("ArnEquals", "arn:aws:iam::*:role/app", ["arn:aws:iam::123456789012:role/app"], True),
    (
        "ArnLike",
        "arn:aws:sagemaker:*:*:endpoint/bio-*",
        ["arn:aws:sagemaker:us-east-1:1:endpoint/bio-1"],
        True,
    ),
    (
        "ArnLike",
        "arn:aws:sagemaker:*:*:endpoint/bio-*",
        ["arn:aws:sagemaker:us-east-1:1:model/bio-1"],
        False,
    ),
    ("ArnNotEquals", "arn:aws:iam::*:role/app", ["arn:aws:iam::1:role/other"], True),
    ("ArnNotLike", "arn:aws:iam::*:role/*", ["arn:aws:iam::1:role/x"], False),
    # Several policy values for one key are alternatives.
    ("StringEquals", ["ec2.amazonaws.com", SAGEMAKER], [SAGEMAKER], True),
]


@pytest.mark.parametrize(("operator", "wanted", "actual", "holds"), CONDITION_CASES)
def test_condition_operator_families(
    operator: str, wanted: Any, actual: list[str], holds: bool
) -> None:
    guarded = policy(allow("svc:Act", Condition={operator: {"test:Key": wanted}}))
    result = evaluate("svc:Act", "*", [guarded], context=RequestContext({"test:key": actual}))
    assert result.decision == (ALLOWED if holds else IMPLICIT_DENY)
    assert result.missing_context_values == ()


@pytest.mark.parametrize(
    ("operator", "holds"),
    [
        ("StringEquals", False),  # a positive operator fails on an absent key
        ("StringNotEquals", True),  # a negated one holds
        ("ArnNotLike", True),
        ("NotIpAddress", True),
        ("StringEqualsIfExists", True),  # IfExists: absent means no restriction
        ("NumericLessThanIfExists", True),
        ("ForAllValues:StringEquals", True),  # vacuously true on no values
        ("ForAnyValue:StringEquals", False),
    ],
)
def test_absent_key_semantics_and_reporting(operator: str, holds: bool) -> None:
    guarded = policy(allow("svc:Act", Condition={operator: {"test:Key": "1"}}))
    result = evaluate("svc:Act", "*", [guarded])
    assert result.decision == (ALLOWED if holds else IMPLICIT_DENY)
    assert result.missing_context_values == ("test:Key",)


def test_if_exists_still_applies_when_the_key_is_present() -> None:
    guarded = policy(allow("svc:Act", Condition={"StringEqualsIfExists": {"test:Key": "a"}}))
    assert decide([guarded], "svc:Act", **{"test:Key": "a"}) == ALLOWED
    assert decide([guarded], "svc:Act", **{"test:Key": "b"}) == IMPLICIT_DENY


def test_null_operator_tests_presence_and_is_not_a_missing_value() -> None:
    must_be_absent = policy(allow("svc:Act", Condition={"Null": {"aws:TokenIssueTime": "true"}}))
    must_exist = policy(allow("svc:Act", Condition={"Null": {"aws:TokenIssueTime": "false"}}))
    assert evaluate("svc:Act", "*", [must_be_absent]).decision == ALLOWED
    assert evaluate("svc:Act", "*", [must_be_absent]).missing_context_values == ()
    assert decide([must_exist], "svc:Act") == IMPLICIT_DENY
    assert decide([must_exist], "svc:Act", **{"aws:TokenIssueTime": "2024-01-01"}) == ALLOWED


@pytest.mark.parametrize(
    ("operator", "tags", "holds"),
    [
        ("ForAllValues:StringEquals", ["team", "env"], True),
        ("ForAllValues:StringEquals", ["team", "owner"], False),
        ("ForAnyValue:StringEquals", ["owner", "env"], True),
        ("ForAnyValue:StringEquals", ["owner"], False),
        ("ForAllValues:StringLike", ["team", "env-x"], True),
        # Negated with a set qualifier: every request value must avoid the listed ones.
        ("ForAllValues:StringNotEquals", ["owner", "cost"], True),
        ("ForAllValues:StringNotEquals", ["owner", "team"], False),
        ("ForAnyValue:StringNotEquals", ["team", "owner"], True),
        # No qualifier on a multi-valued key: one value must match / none may match.
        ("StringEquals", ["owner", "team"], True),
        ("StringNotEquals", ["owner", "team"], False),
    ],
)
def test_set_qualifiers(operator: str, tags: list[str], holds: bool) -> None:
    allowed_keys = ["team", "env*"] if "Like" in operator else ["team", "env"]
    guarded = policy(allow("svc:Tag", Condition={operator: {"aws:TagKeys": allowed_keys}}))
    assert decide([guarded], "svc:Tag", "*", **{"aws:TagKeys": tags}) == (
        ALLOWED if holds else IMPLICIT_DENY
    )


def test_keys_are_anded_values_are_ored() -> None:
    condition = {
        "StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"], "test:Env": "prod"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    guarded = policy(allow("svc:Act", Condition=condition))
    ok = {"aws:RequestedRegion": "eu-west-1", "test:Env": "prod", "aws:SecureTransport": "true"}
    assert decide([guarded], "svc:Act", **ok) == ALLOWED
    assert decide([guarded], "svc:Act", **{**ok, "test:Env": "dev"}) == IMPLICIT_DENY
    assert decide([guarded], "svc:Act", **{**ok, "aws:SecureTransport": "false"}) == IMPLICIT_DENY
    assert (
        decide([guarded], "svc:Act", **{**ok, "aws:RequestedRegion": "us-west-2"}) == IMPLICIT_DENY
    )


def test_condition_key_names_are_case_insensitive() -> None:
    guarded = policy(
        allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": SAGEMAKER}})
    )
    assert decide([guarded], "iam:PassRole", **{"IAM:passedtoservice": SAGEMAKER}) == ALLOWED


def test_pass_role_reports_the_missing_passed_to_service() -> None:
    pass_role = policy(
        allow(
            "iam:PassRole",
            "arn:aws:iam::*:role/*SageMaker*",
            Condition={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        )
    )
    role = "arn:aws:iam::123456789012:role/MySageMakerRole"
    without = evaluate("iam:PassRole", role, [pass_role])
    assert without.decision == IMPLICIT_DENY
    assert without.missing_context_values == ("iam:PassedToService",)
    context = RequestContext({"iam:PassedToService": SAGEMAKER})
    with_context = evaluate("iam:PassRole", role, [pass_role], context=context)
    assert (with_context.decision, with_context.missing_context_values) == (ALLOWED, ())
    # Only statements that match the action and resource can need a key.
    unrelated = evaluate("s3:GetObject", "*", [pass_role])
    assert unrelated.missing_context_values == ()


def test_deny_conditions_report_missing_keys_too() -> None:
    guarded = policy(
        allow("s3:*"), deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}})
    )
    result = evaluate("s3:GetObject", "*", [guarded])
    assert (result.decision, result.missing_context_values) == (ALLOWED, ("aws:SecureTransport",))
    assert decide([guarded], "s3:GetObject", **{"aws:SecureTransport": "false"}) == EXPLICIT_DENY


def test_policy_variables_in_resources_and_conditions() -> None:
    home = policy(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"))
    mine = "arn:aws:s3:::home/alice/notes"
    assert decide([home], "s3:GetObject", mine, **{"aws:username": "alice"}) == ALLOWED
    assert decide([home], "s3:GetObject", mine, **{"aws:username": "bob"}) == IMPLICIT_DENY
    # A substituted value is literal: a user named `*` does not get a wildcard.
    assert decide([home], "s3:GetObject", mine, **{"aws:username": "*"}) == IMPLICIT_DENY
    missing = evaluate("s3:GetObject", mine, [home])
    assert (missing.decision, missing.missing_context_values) == (IMPLICIT_DENY, ("aws:username",))
    defaulted = policy(allow("s3:*", "arn:aws:s3:::home/${aws:username, 'alice'}/*"))
    assert decide([defaulted], "s3:GetObject", mine) == ALLOWED
    tagged = policy(
        allow("svc:Act", Condition={"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}})
    )
    assert (
        decide([tagged], "svc:Act", **{"aws:ResourceTag/owner": "al", "aws:username": "al"})
        == ALLOWED
    )
    # Version 2008-10-17 (or none) keeps ${...} as literal text.
    literal = policy(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"), version=None)
    assert decide([literal], "s3:GetObject", "arn:aws:s3:::home/${aws:username}/x") == ALLOWED


def test_permissions_boundary_caps_identity_policies() -> None:
    admin = policy(allow("*"), name="admin")
    boundary = policy(allow(["s3:*", "sagemaker:*"]), name="PermissionsBoundaryPolicyInputList.1")
    inside = evaluate("s3:GetObject", "*", [admin], permissions_boundaries=[boundary])
    assert (inside.decision, inside.allowed_by_permissions_boundary) == (ALLOWED, True)
    outside = evaluate("iam:CreateUser", "*", [admin], permissions_boundaries=[boundary])
    assert (outside.decision, outside.allowed_by_permissions_boundary) == (IMPLICIT_DENY, False)
    assert evaluate("s3:GetObject", "*", [admin]).allowed_by_permissions_boundary is None


def test_resource_policy_grants_the_named_caller_and_its_deny_wins() -> None:
    caller = "arn:aws:iam::123456789012:user/alice"
    bucket = parse_policy(
        doc(
            {"Effect": "Allow", "Principal": {"AWS": caller}, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "*"},
        ),
        "ResourcePolicy",
        "resource",
    )  # fmt: skip
    obj = "arn:aws:s3:::b/k"
    granted = evaluate("s3:GetObject", obj, [], resource_policy=bucket, caller_arn=caller)
    assert granted.decision == ALLOWED
    stranger = "arn:aws:iam::999999999999:user/eve"
    assert (
        evaluate("s3:GetObject", obj, [], resource_policy=bucket, caller_arn=stranger).decision
        == IMPLICIT_DENY
    )
    admin = policy(allow("s3:*"))
    denied = evaluate("s3:DeleteObject", obj, [admin], resource_policy=bucket, caller_arn=caller)
    assert denied.decision == EXPLICIT_DENY


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"Version": "2012-10-17"}',
        doc({"Effect": "Permit", "Action": "s3:*", "Resource": "*"}),
        doc({"Effect": "Allow", "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"}),
    ],
)
def test_malformed_policies_are_refused(text: str) -> None:
    with pytest.raises(PolicyDocumentError):
        parse_policy(text, "PolicyInputList.1")


def test_unknown_condition_operator_is_refused() -> None:
    bad = policy(allow("svc:Act", Condition={"StringSortOf": {"k": "v"}}))
    with pytest.raises(PolicyDocumentError, match="StringSortOf"):
        evaluate("svc:Act", "*", [bad])


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
