"""The IAM preflight against real IAMs over sockets: the embedded local AWS (its moto answers
SimulatePrincipalPolicy) and a stock moto that enforces IAM and has no simulator, where the
check falls back to evaluating the principals' fetched policies itself.

Every "fix" here is proven: the printed policy is attached and the check run again passes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from fixtures_iam import ACCOUNT, Principals, allow, deny, deployment, without
from qa_console.errors import AuthError, UsageError
from qa_console.ops.iam.check import check_deployment
from qa_console.ops.iam.facts import ExposeFacts
from qa_console.ops.iam.fix import fixes, minimal_policies
from qa_console.ops.iam.identity import caller_identity
from qa_console.ops.iam.report import IamReport, Method, State
from qa_console.ops.iam.requirements import SAGEMAKER_SERVICE, caller_requirements
from qa_console.ops.iam.role import create_execution_role, delete_role

Name = Callable[[str], str]
# What the preflight itself needs where it must read policies (no simulator) and what stock
# moto's enforcement asks even of sts:GetCallerIdentity.
PREFLIGHT = {
    "Version": "2012-10-17",
    "Statement": [allow(["sts:GetCallerIdentity", "iam:Get*", "iam:List*"])],
}
SIMULATOR = {"Version": "2012-10-17", "Statement": [allow("iam:SimulatePrincipalPolicy")]}


def states(report: IamReport) -> list[tuple[str, str, str, str]]:
    return [
        (p.subject, row.requirement.action, row.requirement.resource, str(row.state))
        for p in report.principals
        for row in p.rows
    ]


def denied_pairs(report: IamReport) -> list[tuple[str, str]]:
    return [(row.requirement.action, row.requirement.resource) for _, row in report.denied]


def all_allowed(report: IamReport) -> bool:
    return all(row.state == State.ALLOWED for p in report.principals for row in p.rows)


# --- the embedded local AWS: SimulatePrincipalPolicy answers -----------------------------------


def test_a_caller_without_pass_role_is_denied_exactly_that_and_the_fix_makes_it_pass(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    create_execution_role(local_principals.admin, facts)
    user = unique_name("deployer")
    user_arn, deployer = local_principals.user(user, {"deploy": without(facts, "iam:PassRole")})

    report = check_deployment(deployer, facts)

    assert report.caller.arn == user_arn
    assert denied_pairs(report) == [("iam:PassRole", facts.execution_role_arn)]
    assert {row.method for row in report.caller.rows} == {Method.SIMULATED}
    assert not report.unknown
    (fix,) = fixes(report)
    assert fix.policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "IamRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": facts.execution_role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}},
            }
        ],
    }
    assert fix.commands == (
        f"aws iam put-user-policy --user-name {user} --policy-name qa-console-deploy "
        "--policy-document file://qa-console-deploy.json",
    )
    with pytest.raises(AuthError, match=r"^1 permission the deploy needs is denied$") as caught:
        report.raise_if_denied()
    assert caught.value.details == (
        f"denied: iam:PassRole on {facts.execution_role_arn} for the caller {user_arn} "
        "(no policy allows it)",
    )

    local_principals.put_policies("user", user, {fix.policy_name: fix.policy})
    again = check_deployment(deployer, facts)
    assert all_allowed(again), states(again)
    assert len(again.caller.rows) == len(caller_requirements(facts))


def test_a_complete_setup_through_a_group_is_all_allowed(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    created = create_execution_role(local_principals.admin, facts)
    _, caller_policy = minimal_policies(facts)["caller"]
    _, deployer = local_principals.user(
        unique_name("member"), {"deploy": caller_policy}, group=unique_name("deployers")
    )
    report = check_deployment(deployer, facts)
    assert all_allowed(report), states(report)
    role = report.role
    assert role is not None and role.arn == created.role_arn
    assert role.rows[0].requirement.action == "sts:AssumeRole"
    assert role.rows[0].method == Method.TRUST
    assert {row.method for row in role.rows[1:]} == {Method.SIMULATED}
    assert fixes(report) == []


def test_an_assumed_role_caller_is_checked_as_its_role(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    create_execution_role(local_principals.admin, facts)
    name = unique_name("ci")[:64]
    logs = ("logs:FilterLogEvents", "logs:StartLiveTail", "logs:DescribeLogStreams")
    role_arn = local_principals.role(
        name,
        {"deploy": without(facts, *logs)},
        trusted={"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        path="/pipelines/",
    )
    session = local_principals.session(role_arn, "build-7")

    identity = caller_identity(session)
    assert identity.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/build-7"
    assert identity.principal_arn == role_arn  # the path comes from iam:GetRole
    report = check_deployment(session, facts, identity=identity)
    assert report.caller.arn == role_arn
    assert {action for action, _ in denied_pairs(report)} == set(logs)
    (fix,) = fixes(report)
    assert fix.commands[0].startswith(f"aws iam put-role-policy --role-name {name} ")
    assert fix.policy is not None
    local_principals.put_policies("role", name, {fix.policy_name: fix.policy})
    assert all_allowed(check_deployment(session, facts, identity=identity))


def test_create_role_then_check_is_allowed_and_create_role_is_idempotent(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    admin = local_principals.admin
    created = create_execution_role(admin, facts)
    assert created.created and created.role_arn == facts.execution_role_arn
    assert created.policy_names == ("qa-console-execution",)
    role = check_deployment(admin, facts).role
    assert role is not None and all(row.state == State.ALLOWED for row in role.rows)

    again = create_execution_role(admin, facts)
    assert (again.created, again.role_arn) == (False, created.role_arn)

    local_principals.put_policies("role", facts.role_name, {"extra": allow_all()})
    with pytest.raises(UsageError, match=r"differs in other policies \(extra\)"):
        create_execution_role(admin, facts)
    local_principals.iam.delete_role_policy(RoleName=facts.role_name, PolicyName="extra")

    assert delete_role(admin, created.role_name, created.policy_names) is True
    assert delete_role(admin, created.role_name, created.policy_names) is False
    gone = check_deployment(admin, facts)
    assert gone.role is not None and not gone.role.exists


def allow_all() -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": [allow("*")]}


def test_a_role_sagemaker_cannot_assume_or_pull_with_gets_both_fixes(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    _, role_policy = minimal_policies(facts)["role"]
    statements = [s for s in role_policy["Statement"] if not s["Sid"].startswith("Ecr")]
    name = facts.role_name
    local_principals.role(
        name,
        {"qa-console-execution": {**role_policy, "Statement": statements}},
        trusted={"Service": "ec2.amazonaws.com"},
    )
    report = check_deployment(local_principals.admin, facts)
    assert report.caller.denied == []
    assert [action for action, _ in denied_pairs(report)] == [
        "sts:AssumeRole",
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    ]
    (fix,) = fixes(report)
    assert fix.trust_policy == minimal_policies(facts)["trust"][1]
    assert fix.policy is not None
    assert [s["Sid"] for s in fix.policy["Statement"]] == ["EcrAll", "EcrRepository"]
    assert fix.commands[1] == (
        f"aws iam update-assume-role-policy --role-name {name} "
        "--policy-document file://trust-policy.json"
    )
    iam = local_principals.iam
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(fix.trust_policy))
    local_principals.put_policies("role", name, {"qa-console-ecr": fix.policy})
    assert all_allowed(check_deployment(local_principals.admin, facts))


def test_a_missing_role_is_one_finding_fixed_by_create_role(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    report = check_deployment(local_principals.admin, facts)
    role = report.role
    assert role is not None and not role.exists
    assert {row.method for row in role.rows} == {Method.ROLE_LOOKUP}
    error = report.denied_error()
    assert error is not None
    assert error.message == f"the execution role {facts.role_name} does not exist"
    (fix,) = fixes(report)
    assert fix.commands == (f"qa-console iam create-role {facts.role_name}",)


def test_an_explicit_deny_is_not_fixable_and_unknowable_context_is_unknown(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    create_execution_role(local_principals.admin, facts)
    logs = ["logs:FilterLogEvents", "logs:StartLiveTail", "logs:DescribeLogStreams"]
    granted = without(facts, *logs)
    from_the_office = allow(logs, "*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})
    no_deletes = deny("sagemaker:DeleteEndpoint")
    _, deployer = local_principals.user(
        unique_name("careful"),
        {
            "deploy": granted,
            "office": {"Version": "2012-10-17", "Statement": [from_the_office]},
            "NoDeletes": {"Version": "2012-10-17", "Statement": [no_deletes]},
        },
    )
    report = check_deployment(deployer, facts)
    (denied,) = report.caller.denied
    assert denied.requirement.action == "sagemaker:DeleteEndpoint"
    assert not denied.fixable and "NoDeletes" in denied.detail
    assert [row.requirement.action for row in report.caller.unknown] == logs
    assert all("aws:SourceIp" in row.detail for row in report.caller.unknown)
    (fix,) = fixes(report)
    assert fix.policy is None and fix.commands == ()
    assert [row.requirement.action for row in fix.blocked] == ["sagemaker:DeleteEndpoint"]


def test_the_local_aws_default_caller_may_do_everything(
    local_principals: Principals, unique_name: Name
) -> None:
    """moto without enforcement lets its default identity do anything; the simulator says so."""
    facts = deployment(unique_name)
    report = check_deployment(local_principals.admin, facts, roles=False)
    assert report.caller.identity_arn == f"arn:aws:sts::{ACCOUNT}:user/moto"
    assert all_allowed(report) and report.roles == ()


# --- a stock moto with IAM enforcement: no simulator --------------------------------------------


def test_without_a_simulator_rows_are_evaluated_locally_with_the_same_verdicts(
    local_principals: Principals, enforcing_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    user = unique_name("twin")
    policies = {"deploy": without(facts, "iam:PassRole"), "preflight": PREFLIGHT}
    reports = []
    for principals in (local_principals, enforcing_principals):
        create_execution_role(principals.admin, facts)
        _, deployer = principals.user(user, {**policies, "simulator": SIMULATOR})
        reports.append(check_deployment(deployer, facts))
    simulated, local = reports

    assert states(local) == states(simulated)
    assert denied_pairs(local) == [("iam:PassRole", facts.execution_role_arn)]
    assert {row.method for row in local.caller.rows} == {Method.LOCAL}
    assert local.role is not None
    assert [row.method for row in local.role.rows[:2]] == [Method.TRUST, Method.LOCAL]
    (note,) = local.caller.notes
    assert note.startswith("this IAM does not implement SimulatePrincipalPolicy: evaluated locally")


def test_a_caller_denied_the_simulator_is_evaluated_locally_and_the_fix_proven(
    enforcing_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    create_execution_role(enforcing_principals.admin, facts)
    user = unique_name("nosim")
    _, deployer = enforcing_principals.user(
        user, {"deploy": without(facts, "iam:PassRole"), "preflight": PREFLIGHT}
    )
    report = check_deployment(deployer, facts)
    assert denied_pairs(report) == [("iam:PassRole", facts.execution_role_arn)]
    assert report.caller.notes[0].startswith("iam:SimulatePrincipalPolicy is not allowed")
    assert f"user_{user}_deploy" in report.caller.notes[0]

    (fix,) = fixes(report)
    assert fix.policy is not None
    enforcing_principals.put_policies("user", user, {fix.policy_name: fix.policy})
    again = check_deployment(deployer, facts)
    assert all_allowed(again), states(again)
    assert {row.method for row in again.caller.rows} == {Method.LOCAL}


def test_without_the_simulator_or_iam_reads_every_row_is_unknown_with_the_reason(
    enforcing_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    create_execution_role(enforcing_principals.admin, facts)
    identity_only = {"Version": "2012-10-17", "Statement": [allow("sts:GetCallerIdentity")]}
    _, stranger = enforcing_principals.user(unique_name("stranger"), {"who": identity_only})
    report = check_deployment(stranger, facts)
    assert report.ok and not report.denied
    assert len(report.unknown) == sum(len(p.rows) for p in report.principals)
    detail = report.caller.rows[0].detail
    assert detail == (
        "iam:SimulatePrincipalPolicy is not allowed, and it cannot read its policies "
        "(iam:GetUser is not allowed)"
    )
    assert report.role is not None
    assert report.role.rows[0].detail == "cannot read the role (iam:GetRole is not allowed)"


def test_an_assumed_role_without_a_simulator_is_evaluated_from_its_role(
    enforcing_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    create_execution_role(enforcing_principals.admin, facts)
    name = unique_name("runner")[:64]
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    role_arn = enforcing_principals.role(
        name,
        {"deploy": without(facts, "sagemaker:InvokeEndpoint"), "preflight": PREFLIGHT},
        trusted={"AWS": admin_arn},
    )
    session = enforcing_principals.session(role_arn, "job-1")
    report = check_deployment(session, facts)
    assert report.caller.arn == role_arn
    assert report.caller.identity_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/job-1"
    assert denied_pairs(report) == [("sagemaker:InvokeEndpoint", facts.endpoint_arn)]
    assert {row.method for row in report.caller.rows} == {Method.LOCAL}


def test_an_exposed_endpoint_checks_the_functions_role_too(
    local_principals: Principals, unique_name: Name
) -> None:
    base = deployment(unique_name)
    function_role = local_principals.role(
        unique_name("fn")[:64], {}, trusted={"Service": "lambda.amazonaws.com"}
    )
    facts = dataclasses.replace(base, expose=ExposeFacts(unique_name("api"), function_role))
    create_execution_role(local_principals.admin, facts)
    report = check_deployment(local_principals.admin, facts)
    function = report.principals[-1]
    assert (function.subject, function.arn) == ("function role", function_role)
    assert function.rows[0].state == State.ALLOWED  # trusted by lambda.amazonaws.com
    assert [row.requirement.action for row in function.denied] == [
        "sagemaker:InvokeEndpoint",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    (fix,) = fixes(report)
    assert fix.policy is not None
    local_principals.put_policies("role", function.name, {fix.policy_name: fix.policy})
    assert all_allowed(check_deployment(local_principals.admin, facts))
