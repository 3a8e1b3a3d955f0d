"""The IAM policy evaluator (ops/iam: evaluate.py, conditions.py, patterns.py), pure: Allow and
Deny, NotAction/NotResource, wildcards, condition operators, policy variables, permissions
boundaries and resource policies, with statement positions as IAM's simulator reports them.

The same engine answers the local moto's SimulatePrincipalPolicy
(tests/test_localaws_iam_simulator.py) and the preflight's local evaluation when a real
simulator is not allowed (tests/test_iam_check.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from fixtures_iam import SAGEMAKER, allow, decide, deny, doc, policy
from qa_console.ops.iam.evaluate import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    PolicyDocumentError,
    Position,
    RequestContext,
    evaluate,
    parse_policy,
)


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
