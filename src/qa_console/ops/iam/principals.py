"""A principal's own IAM policies, fetched for local evaluation when the simulator is not allowed.

A role's inline and attached managed policies; a user's, plus those of every group it is in; and
the permissions boundary of either. What this cannot see (service control policies, session
policies, resource policies such as bucket policies) is why locally evaluated rows say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa_console.ops.aws.errors import AUTH_CODES, NOT_FOUND_CODES, aws_errors, error_code
from qa_console.ops.iam.evaluate import Policy, PolicyDocumentError, parse_policy

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

_PRINCIPAL = re.compile(
    r"^arn:[\w-]+:(?:iam|sts)::\d{12}:(?P<kind>user|role)/(?:.*/)?(?P<name>[^/]+)$"
)


class PoliciesUnreadable(Exception):
    """The principal's policies cannot be read; the message says why, for an `unknown` row."""


@dataclass(frozen=True)
class PrincipalPolicies:
    policies: tuple[Policy, ...]
    boundaries: tuple[Policy, ...] = ()

    @property
    def names(self) -> list[str]:
        return [policy.policy_id for policy in (*self.policies, *self.boundaries)]


def fetch_policies(target: Target, principal_arn: str) -> PrincipalPolicies:
    """Every identity policy of a user or role, and its permissions boundary.

    Raises PoliciesUnreadable when IAM does not let the caller read them or the principal is
    not a user or role of IAM; other AWS failures are the usual typed errors."""
    match = _PRINCIPAL.match(principal_arn)
    if match is None:
        raise PoliciesUnreadable(f"{principal_arn} is not an IAM user or role")
    reader = _Reader(target, match["kind"], match["name"])
    return reader.read()


class _Reader:
    def __init__(self, target: Target, kind: str, name: str) -> None:
        self.target = target
        self.kind = kind
        self.name = name
        self.iam = target.client("iam")
        self._managed: dict[str, Policy] = {}

    def read(self) -> PrincipalPolicies:
        entity = self._call("Get" + self.kind.title(), **{self._key(self.kind): self.name})
        policies = self._entity_policies(self.kind, self.name)
        if self.kind == "user":
            groups = self._pages("ListGroupsForUser", "Groups", UserName=self.name)
            for group in groups:
                policies += self._entity_policies("group", str(group["GroupName"]))
        boundary_arn = (
            entity[self.kind.title()].get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        )
        boundaries = [self._managed_policy(str(boundary_arn))] if boundary_arn else []
        return PrincipalPolicies(tuple(policies), tuple(boundaries))

    @staticmethod
    def _key(kind: str) -> str:
        return f"{kind.title()}Name"

    def _entity_policies(self, kind: str, name: str) -> list[Policy]:
        title = kind.title()
        key = {self._key(kind): name}
        policies = []
        for policy_name in self._pages(f"List{title}Policies", "PolicyNames", **key):
            answer = self._call(f"Get{title}Policy", **key, PolicyName=policy_name)
            policies.append(self._parse(answer["PolicyDocument"], f"{kind}_{name}_{policy_name}"))
        attached = self._pages(f"ListAttached{title}Policies", "AttachedPolicies", **key)
        policies += [self._managed_policy(str(item["PolicyArn"])) for item in attached]
        return policies

    def _managed_policy(self, arn: str) -> Policy:
        if arn not in self._managed:
            policy = self._call("GetPolicy", PolicyArn=arn)["Policy"]
            version = self._call(
                "GetPolicyVersion", PolicyArn=arn, VersionId=policy["DefaultVersionId"]
            )["PolicyVersion"]
            self._managed[arn] = self._parse(version["Document"], str(policy["PolicyName"]))
        return self._managed[arn]

    @staticmethod
    def _parse(document: Any, policy_id: str) -> Policy:
        # boto3 decodes IAM's URL-encoded documents into dicts; some answers keep the text.
        text = document if isinstance(document, str) else json.dumps(document)
        try:
            return parse_policy(text, policy_id)
        except PolicyDocumentError as error:
            raise PoliciesUnreadable(f"policy {policy_id} cannot be evaluated: {error}") from None

    def _pages(self, operation: str, field: str, **arguments: Any) -> Iterator[Any]:
        marker: str | None = None
        while True:
            answer = self._call(operation, **arguments, **({"Marker": marker} if marker else {}))
            yield from answer.get(field, [])
            if not answer.get("IsTruncated"):
                return
            marker = answer["Marker"]

    def _call(self, operation: str, **arguments: Any) -> Any:
        """One IAM call; a denial or a missing principal is PoliciesUnreadable."""
        from botocore import xform_name
        from botocore.exceptions import ClientError

        with aws_errors(
            f"read the policies of {self.kind} {self.name}",
            target=self.target,
            permission=f"iam:{operation}",
        ):
            try:
                return getattr(self.iam, xform_name(operation))(**arguments)
            except ClientError as error:
                code = error_code(error)
                if code in AUTH_CODES:
                    raise PoliciesUnreadable(
                        f"cannot read its policies (iam:{operation} is not allowed)"
                    ) from None
                if code in NOT_FOUND_CODES:
                    raise PoliciesUnreadable(
                        f"cannot read its policies: {self.kind} {self.name} is not in IAM"
                    ) from None
                raise
