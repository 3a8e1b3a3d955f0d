"""The minimal policies that grant what a deployment needs, scoped to its real ARNs.

`policy_document(requirements)` writes one statement per service and resource set (the
PassRole statement with its iam:PassedToService condition), in the order the requirements come.
`fixes(report)` turns an IamReport into what to do per principal: the policy granting exactly
its fixable denied rows, the trust policy when the role's trust is denied, the command that
applies each, and the rows no Allow can fix (an explicit Deny, a boundary, an SCP).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa_console.ops.iam.report import IamReport, PrincipalReport, Row
from qa_console.ops.iam.requirements import (
    ASSUME_ROLE,
    Requirement,
    caller_requirements,
    execution_role_needs,
)

if TYPE_CHECKING:
    from qa_console.ops.iam.facts import DeploymentFacts

VERSION = "2012-10-17"
CALLER_POLICY_NAME = "qa-console-deploy"
EXECUTION_POLICY_NAME = "qa-console-execution"
TRUST_POLICY_NAME = "trust-policy"
_WORD = re.compile(r"[A-Za-z0-9]+")


def trust_policy(service: str) -> dict[str, Any]:
    """The trust policy that lets `service` (sagemaker.amazonaws.com) assume a role."""
    return {
        "Version": VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": ASSUME_ROLE}
        ],
    }


def policy_document(requirements: Iterable[Requirement]) -> dict[str, Any]:
    """An identity policy allowing exactly these requirements (their `granted` resources).

    Actions with the same conditions and the same set of resources share one statement, so a
    service's rows come out as a handful of statements, each named after what it covers."""
    # (service, conditions) -> action -> resources, both in first-seen order.
    by_service: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, list[str]]] = {}
    for requirement in requirements:
        actions = by_service.setdefault((requirement.service, requirement.conditions), {})
        resources = actions.setdefault(requirement.action, [])
        if requirement.granted not in resources:
            resources.append(requirement.granted)
    statements: list[dict[str, Any]] = []
    sids: set[str] = set()
    for (service, conditions), actions in by_service.items():
        by_resources: dict[tuple[str, ...], list[str]] = {}
        for action, granted in actions.items():
            by_resources.setdefault(tuple(sorted(granted)), []).append(action)
        for resource_set, grouped in by_resources.items():
            statement: dict[str, Any] = {
                "Sid": _unique(_sid(service, resource_set), sids),
                "Effect": "Allow",
                "Action": grouped if len(grouped) > 1 else grouped[0],
                "Resource": list(resource_set) if len(resource_set) > 1 else resource_set[0],
            }
            if conditions:
                statement["Condition"] = {"StringEquals": dict(conditions)}
            statements.append(statement)
    return {"Version": VERSION, "Statement": statements}


def minimal_policies(facts: DeploymentFacts) -> dict[str, tuple[str, dict[str, Any]]]:
    """The whole minimal policies of a deployment, by whom they are for: "caller" (the
    deployer's identity policy), "role" (the execution role's), "trust" (the execution role's
    trust policy), each as (the name to put it under, the document)."""
    needs = execution_role_needs(facts)
    return {
        "caller": (CALLER_POLICY_NAME, policy_document(caller_requirements(facts))),
        "role": (EXECUTION_POLICY_NAME, policy_document(needs.requirements)),
        "trust": (TRUST_POLICY_NAME, trust_policy(needs.trusted_service)),
    }


def _sid(service: str, resources: tuple[str, ...]) -> str:
    """`SagemakerModel`, `S3Bucket`, `IamRole`...: the service and the kinds of resource."""
    kinds = list(dict.fromkeys(_resource_kind(service, arn) for arn in resources))
    return "".join(word.capitalize() for word in _WORD.findall(" ".join([service, *kinds])))


def _resource_kind(service: str, arn: str) -> str:
    if arn == "*":
        return "all"
    resource = arn.split(":", 5)[-1]
    if service == "s3":
        return "objects" if "/" in resource else "bucket"
    if service == "apigateway":
        parts = resource.strip("/").split("/")
        return " ".join(part for part in parts[:1] + parts[2:3] if part and part != "*") or "all"
    return re.split(r"[/:]", resource, maxsplit=1)[0]


def _unique(sid: str, taken: set[str]) -> str:
    candidate, number = sid, 2
    while candidate in taken:
        candidate, number = f"{sid}{number}", number + 1
    taken.add(candidate)
    return candidate


@dataclass(frozen=True)
class PrincipalFix:
    """What one principal needs changed.

    policy:        an identity policy granting its fixable denied rows (None when none are)
    policy_name:   the name to put it under (inline)
    trust_policy:  the trust policy to set, when the role's trust is denied (or it is missing)
    commands:      what to run, one line each (the role is created by `iam create-role`)
    blocked:       denied rows no Allow fixes (explicit Deny, permissions boundary, SCP)
    """

    subject: str
    principal_arn: str
    policy: dict[str, Any] | None
    policy_name: str
    trust_policy: dict[str, Any] | None = None
    commands: tuple[str, ...] = ()
    blocked: tuple[Row, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "principal_arn": self.principal_arn,
            "policy_name": self.policy_name,
            "policy": self.policy,
            "trust_policy": self.trust_policy,
            "commands": list(self.commands),
            "blocked": [row.to_dict() for row in self.blocked],
        }


def fixes(report: IamReport) -> list[PrincipalFix]:
    """One PrincipalFix per principal with denied rows, the caller first."""
    return [fix for principal in report.principals if (fix := principal_fix(principal))]


def principal_fix(report: PrincipalReport) -> PrincipalFix | None:
    """What one principal needs changed, or None when nothing of it is denied."""
    denied = report.denied
    if not denied:
        return None
    trust_denied = any(_is_trust(report, row) for row in denied)
    grants = [row for row in denied if row.fixable and not _is_trust(report, row)]
    policy = policy_document(row.requirement for row in grants) if grants else None
    name = report.name
    policy_name = CALLER_POLICY_NAME if report.subject == "caller" else EXECUTION_POLICY_NAME
    commands: list[str] = []
    if not report.exists:
        commands.append(f"qa-console iam create-role {name}")
    else:
        if policy is not None:
            entity = "user" if report.kind == "user" else "role"
            commands.append(
                f"aws iam put-{entity}-policy --{entity}-name {name} --policy-name "
                f"{policy_name} --policy-document file://{policy_name}.json"
            )
        if trust_denied:
            commands.append(
                f"aws iam update-assume-role-policy --role-name {name} "
                f"--policy-document file://{TRUST_POLICY_NAME}.json"
            )
    service = report.trusted_service
    return PrincipalFix(
        subject=report.subject,
        principal_arn=report.arn,
        policy=policy,
        policy_name=policy_name,
        trust_policy=trust_policy(service) if trust_denied and service else None,
        commands=tuple(commands),
        blocked=tuple(row for row in denied if not row.fixable),
    )


def _is_trust(report: PrincipalReport, row: Row) -> bool:
    return row.requirement.action == ASSUME_ROLE and row.requirement.resource == report.arn
