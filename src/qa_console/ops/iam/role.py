"""Create (and remove) a SageMaker execution role with exactly the deployment's role policy.

`create_execution_role` makes the role named by `facts.execution_role_arn`: a trust policy for
sagemaker.amazonaws.com and one inline policy, the minimal role policy of ops/iam/fix.py. Run
again it changes nothing when the role is already exactly that (and completes a role whose
policy an interrupted run did not put yet); a role of that name with anything else is a
UsageError, never modified. What it returns is what teardown needs to remove it.

A new role takes a few seconds to be usable by SageMaker (IAM is eventually consistent): a
create_model right after may answer "Could not assume role" once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa_console.errors import UsageError
from qa_console.ops.aws.errors import NOT_FOUND_CODES, aws_errors, error_code
from qa_console.ops.iam.fix import EXECUTION_POLICY_NAME, policy_document, trust_policy
from qa_console.ops.iam.requirements import execution_role_needs

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.ops.iam.facts import DeploymentFacts

CREATED_BY_TAG = {"Key": "created-by", "Value": "qa-console"}


@dataclass(frozen=True)
class CreatedRole:
    """The role and the inline policies on it (what teardown deletes); `created` is False when
    it already existed as wanted."""

    role_arn: str
    role_name: str
    policy_names: tuple[str, ...]
    created: bool
    trust_policy: dict[str, Any]
    role_policy: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "role_arn": self.role_arn,
            "role_name": self.role_name,
            "policy_names": list(self.policy_names),
            "created": self.created,
            "trust_policy": self.trust_policy,
            "role_policy": self.role_policy,
        }


def _path(role_arn: str) -> str:
    """`/service-role/` from arn:aws:iam::ACCT:role/service-role/NAME; `/` without a path."""
    resource = role_arn.split(":", 5)[-1].removeprefix("role")
    folder = resource.rsplit("/", 1)[0]
    return f"{folder}/" if folder else "/"


def default_role_name(endpoint: str) -> str:
    """The execution role `qa-console up` and the TUI create for an endpoint when none is set."""
    return f"qa-console-{endpoint}"


def create_execution_role(target: Target, facts: DeploymentFacts) -> CreatedRole:
    """Create `facts.execution_role_arn` with the deployment's trust and role policy."""
    from botocore.exceptions import ClientError

    needs = execution_role_needs(facts)
    trust = trust_policy(needs.trusted_service)
    policy = policy_document(needs.requirements)
    name = facts.role_name
    iam = target.client("iam")
    created = True
    with aws_errors(
        f"create role {name}", target=target, resource=f"role {name}", permission="iam:CreateRole"
    ):
        try:
            arn = iam.create_role(
                RoleName=name,
                Path=_path(facts.execution_role_arn),
                AssumeRolePolicyDocument=json.dumps(trust),
                Description="SageMaker execution role made by qa-console",
                Tags=[CREATED_BY_TAG],
            )["Role"]["Arn"]
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":
                raise
            arn = _existing_role_arn(target, iam, name, trust, policy)
            created = False
    with aws_errors(
        f"put the policy of role {name}",
        target=target,
        resource=f"role {name}",
        permission="iam:PutRolePolicy",
    ):
        iam.put_role_policy(
            RoleName=name, PolicyName=EXECUTION_POLICY_NAME, PolicyDocument=json.dumps(policy)
        )
    made = CreatedRole(str(arn), name, (EXECUTION_POLICY_NAME,), created, trust, policy)
    if created:
        _record_role(target, facts.endpoint_name, made)
    return made


def _record_role(target: Target, endpoint: str, created: CreatedRole) -> None:
    """Record the role with the endpoint it serves, so `teardown ENDPOINT` removes it too."""
    from qa_console.store import open_store
    from qa_console.store.resources import new_run_id, record

    with open_store() as store:
        record(
            store,
            run_id=new_run_id(),
            target=target.name,
            region=target.region,
            endpoint=endpoint,
            kind="iam-role",
            name=created.role_name,
            arn=created.role_arn,
            details={"policy_names": list(created.policy_names)},
        )


def _existing_role_arn(
    target: Target, iam: Any, name: str, trust: dict[str, Any], policy: dict[str, Any]
) -> str:
    """The ARN of a role that is already what we would create (or that plus nothing yet: an
    interrupted create); UsageError naming the difference otherwise."""
    with aws_errors(f"read role {name}", target=target, resource=f"role {name}"):
        role = iam.get_role(RoleName=name)["Role"]
        inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        ours = (
            iam.get_role_policy(RoleName=name, PolicyName=EXECUTION_POLICY_NAME)["PolicyDocument"]
            if EXECUTION_POLICY_NAME in inline
            else None
        )
    differences = []
    if _normal(role.get("AssumeRolePolicyDocument")) != _normal(trust):
        differences.append("its trust policy")
    others = [p for p in inline if p != EXECUTION_POLICY_NAME]
    others += [p["PolicyName"] for p in attached]
    if others:
        differences.append(f"other policies ({', '.join(others)})")
    if ours is not None and _normal(ours) != _normal(policy):
        differences.append(f"its {EXECUTION_POLICY_NAME} policy")
    if differences:
        raise UsageError(
            f"role {name} already exists and differs in {' and '.join(differences)}",
            hint=f"choose another name, or check it as it is: qa-console iam check --role {name}",
        )
    return str(role["Arn"])


def _normal(document: Any) -> Any:
    """A policy document in a comparable form (IAM may answer text or a decoded object)."""
    if isinstance(document, str):
        document = json.loads(document)
    return json.loads(json.dumps(document, sort_keys=True))


def delete_role(target: Target, role_name: str, policy_names: tuple[str, ...]) -> bool:
    """Remove a role this tool created and its inline policies; False when it was already gone."""
    from botocore.exceptions import ClientError

    iam = target.client("iam")
    with aws_errors(
        f"delete role {role_name}",
        target=target,
        resource=f"role {role_name}",
        permission="iam:DeleteRole",
    ):
        for policy_name in policy_names:
            try:
                iam.delete_role_policy(RoleName=role_name, PolicyName=policy_name)
            except ClientError as error:
                if error_code(error) not in NOT_FOUND_CODES:
                    raise
        try:
            iam.delete_role(RoleName=role_name)
        except ClientError as error:
            if error_code(error) not in NOT_FOUND_CODES:
                raise
            return False
    return True
