"""Who is calling: sts:GetCallerIdentity, and the IAM principal the policy simulator accepts for it.

The simulator takes IAM user and role ARNs only. A session of an assumed role
(`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`) is simulated as its role; the role's real ARN
may carry a path (`role/service-role/NAME`) that the session ARN drops, so it is looked up when
iam:GetRole allows, else written as `role/NAME`. The root user is allowed everything by IAM
itself, and a federated user has no policies of its own to simulate.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa_console.ops.aws.errors import AUTH_CODES, NOT_FOUND_CODES, aws_errors, error_code

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>.+)$"
)

USER = "user"
ROLE = "role"
ROOT = "root"
FEDERATED = "federated-user"


@dataclass(frozen=True)
class CallerIdentity:
    """The caller as STS names it, and as the simulator needs it.

    arn:           what sts:GetCallerIdentity answered
    principal_arn: the IAM user or role ARN to simulate; None for root and federated users
    kind:          user, role (also for an assumed-role session), root, federated-user, or the
                   resource type of an ARN this module does not know
    name:          the user or role name
    """

    arn: str
    account_id: str
    partition: str
    principal_arn: str | None
    kind: str
    name: str

    def to_dict(self) -> dict[str, str | None]:
        return {
            "arn": self.arn,
            "account_id": self.account_id,
            "principal_arn": self.principal_arn,
            "kind": self.kind,
            "name": self.name,
        }


def parse_identity(arn: str, account_id: str) -> CallerIdentity:
    """Map a caller ARN to the principal to simulate, without any AWS call."""
    match = _ARN.match(arn)
    if match is None:
        return CallerIdentity(arn, account_id, "aws", None, "unknown", arn)
    partition, service, resource = match["partition"], match["service"], match["resource"]
    account = match["account"]
    kind, _, rest = resource.partition("/")
    if resource == ROOT:
        return CallerIdentity(arn, account, partition, None, ROOT, ROOT)
    if service == "sts" and kind == "assumed-role" and "/" in rest:
        role_name = rest.split("/", 1)[0]
        role = f"arn:{partition}:iam::{account}:role/{role_name}"
        return CallerIdentity(arn, account, partition, role, ROLE, role_name)
    if kind == FEDERATED:
        return CallerIdentity(arn, account, partition, None, FEDERATED, rest)
    # IAM users and roles, and anything else the simulator may know better than we do (moto's
    # default caller is `arn:aws:sts::ACCT:user/moto`): simulated as named.
    return CallerIdentity(arn, account, partition, arn, kind, rest.rsplit("/", 1)[-1])


def caller_identity(target: Target) -> CallerIdentity:
    """Who the target's credentials are (sts:GetCallerIdentity needs no permission)."""
    with aws_errors("find who you are (sts get-caller-identity)", target=target):
        answer = target.client("sts").get_caller_identity()
    identity = parse_identity(str(answer["Arn"]), str(answer["Account"]))
    if identity.kind == ROLE and identity.arn != identity.principal_arn:
        return _with_role_path(target, identity)
    return identity


def _with_role_path(target: Target, identity: CallerIdentity) -> CallerIdentity:
    """The assumed role's full ARN (with its path) when iam:GetRole allows; as mapped otherwise."""
    from botocore.exceptions import ClientError

    with aws_errors(f"read role {identity.name}", target=target):
        try:
            role = target.client("iam").get_role(RoleName=identity.name)["Role"]
        except ClientError as error:
            if error_code(error) in AUTH_CODES | NOT_FOUND_CODES:
                return identity  # the mapped ARN is still what the simulator needs
            raise
    return dataclasses.replace(identity, principal_arn=str(role["Arn"]))
