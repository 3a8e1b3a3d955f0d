"""Can the service assume the role? The role's trust policy, read with iam:GetRole and evaluated
locally as the resource policy it is (IAM's simulator does not simulate service principals).

The request is sts:AssumeRole on the role by the service principal with aws:SourceAccount of the
deployment's account; a trust policy that tests anything else (aws:SourceArn) makes the row
unknown, not denied. Reading the role also tells whether it exists.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from qa_console.ops.aws.errors import AUTH_CODES, NOT_FOUND_CODES, aws_errors, error_code
from qa_console.ops.iam.evaluate import (
    ALLOWED,
    EXPLICIT_DENY,
    RESOURCE_POLICY_TYPE,
    PolicyDocumentError,
    RequestContext,
    evaluate,
    parse_policy,
)
from qa_console.ops.iam.report import Method, Row, State
from qa_console.ops.iam.requirements import ASSUME_ROLE, RoleNeeds

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target


def check_trust(
    target: Target, iam: Any, needs: RoleNeeds, account_id: str
) -> tuple[Row, bool, tuple[str, ...]]:
    """(trust row, whether the role exists, notes) from the role's trust policy."""
    from botocore.exceptions import ClientError

    trust = needs.trust
    name = needs.role_arn.rsplit("/", 1)[-1]
    with aws_errors(f"read role {name}", target=target, resource=f"role {name}"):
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as error:
            code = error_code(error)
            if code in NOT_FOUND_CODES:
                detail = "the role does not exist"
                return Row(trust, State.DENIED, Method.ROLE_LOOKUP, detail), False, ()
            if code in AUTH_CODES:
                detail = "cannot read the role (iam:GetRole is not allowed)"
                return Row(trust, State.UNKNOWN, Method.NOT_CHECKED, detail), True, ()
            raise
    notes: tuple[str, ...] = ()
    if role.get("Arn") and role["Arn"] != needs.role_arn:
        notes = (f"the role's ARN is {role['Arn']}, not {needs.role_arn}: use that one",)
    document = role.get("AssumeRolePolicyDocument") or {}
    text = document if isinstance(document, str) else json.dumps(document)
    try:
        policy = parse_policy(text, "trust policy", RESOURCE_POLICY_TYPE)
        result = evaluate(
            ASSUME_ROLE,
            needs.role_arn,
            [],
            resource_policy=policy,
            caller_arn=needs.trusted_service,
            context=RequestContext({"aws:SourceAccount": account_id}),
        )
    except PolicyDocumentError as error:
        return Row(trust, State.UNKNOWN, Method.TRUST, f"cannot evaluate: {error}"), True, notes
    if result.decision == ALLOWED:
        return Row(trust, State.ALLOWED, Method.TRUST), True, notes
    unknowable = [key for key in result.missing_context_values if key != "aws:SourceAccount"]
    if result.decision != EXPLICIT_DENY and unknowable:
        detail = f"the trust policy tests {', '.join(unknowable)}, which the check cannot know"
        return Row(trust, State.UNKNOWN, Method.TRUST, detail), True, notes
    detail = f"the trust policy does not let {needs.trusted_service} assume the role"
    return Row(trust, State.DENIED, Method.TRUST, detail), True, notes
