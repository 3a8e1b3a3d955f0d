"""IAM test setup: policy documents in a line, and principals (users, roles, sessions) with given
policies on a real moto, each with a Target that acts as it.

Two IAMs are used:
- `local_principals`: the embedded local AWS, whose moto answers SimulatePrincipalPolicy (our
  patch) and does not enforce IAM (so setup needs no permissions);
- `enforcing_principals`: a stock moto server in its own process with IAM enforcement on
  (INITIAL_NO_AUTH_ACTION_COUNT): it has no simulator, and it refuses what a user's policies do
  not allow, so the preflight's local evaluation and its "cannot read" answers are real.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from qa_console.ops.aws.target import Connection, Target
from qa_console.ops.iam.evaluate import Policy, RequestContext, evaluate, parse_policy
from qa_console.ops.iam.facts import DeploymentFacts
from qa_console.ops.iam.fix import policy_document
from qa_console.ops.iam.requirements import caller_requirements

if TYPE_CHECKING:
    from fixtures_localaws import LocalAws

SAGEMAKER = "sagemaker.amazonaws.com"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, on every moto here
ADMIN_SETUP_CALLS = 3  # create_user, put_user_policy, create_access_key of the admin


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


def deployment(unique_name: Callable[[str], str]) -> DeploymentFacts:
    """A deployment of names unique to the test, in moto's default account, named the way
    `deployment_facts` names what it plans from the settings (`<endpoint>-model`...)."""
    endpoint = unique_name("bot")
    return DeploymentFacts(
        account_id=ACCOUNT,
        region=REGION,
        bucket=unique_name("bucket")[:63],
        model_key="qa-console/model.tar.gz",
        execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/{unique_name('exec')[:64]}",
        endpoint_name=endpoint,
        model_name=f"{endpoint}-model",
        endpoint_config_name=f"{endpoint}-config",
    )


def without(facts: DeploymentFacts, *actions: str) -> dict[str, Any]:
    """The deployment's minimal caller policy minus these actions."""
    return policy_document(r for r in caller_requirements(facts) if r.action not in actions)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Principals:
    """Users, roles and role sessions on one moto, made by an admin that may do everything."""

    def __init__(self, url: str, admin_keys: Mapping[str, str], region: str = REGION) -> None:
        self.url = url
        self.region = region
        self.admin_keys = dict(admin_keys)
        self.admin = self.target("admin", self.admin_keys)
        self.iam = self.admin.client("iam")

    def target(self, name: str, keys: Mapping[str, str]) -> Target:
        """A Target whose every call goes to this moto with these credentials."""
        connection = Connection({"*": self.url}, credentials=dict(keys))
        return Target(name, self.region, connect=lambda: connection)

    def user(
        self, name: str, policies: Mapping[str, Mapping[str, Any]], *, group: str | None = None
    ) -> tuple[str, Target]:
        """A user with these inline policies (in `group` when given, as the group's), its ARN
        and a Target acting as it."""
        arn = str(self.iam.create_user(UserName=name)["User"]["Arn"])
        if group is None:
            self.put_policies("user", name, policies)
        else:
            self.iam.create_group(GroupName=group)
            self.put_policies("group", group, policies)
            self.iam.add_user_to_group(GroupName=group, UserName=name)
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        keys = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }
        return arn, self.target(name, keys)

    def role(
        self,
        name: str,
        policies: Mapping[str, Mapping[str, Any]],
        *,
        trusted: Mapping[str, Any],
        path: str = "/",
    ) -> str:
        """A role trusting `trusted` (a Principal block) with these inline policies; its ARN."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": trusted, "Action": "sts:AssumeRole"}],
        }
        arn = self.iam.create_role(
            RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        self.put_policies("role", name, policies)
        return str(arn)

    def put_policies(self, kind: str, name: str, policies: Mapping[str, Mapping[str, Any]]) -> None:
        put = getattr(self.iam, f"put_{kind}_policy")
        for policy_name, document in policies.items():
            put(
                **{f"{kind.title()}Name": name},
                PolicyName=policy_name,
                PolicyDocument=json.dumps(document),
            )

    def session(self, role_arn: str, name: str, assumer: Target | None = None) -> Target:
        """A Target acting as a session of the role (sts:AssumeRole by `assumer`, the admin by
        default)."""
        credentials = (
            (assumer or self.admin)
            .client("sts")
            .assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
        )
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        return self.target(name, keys)


@pytest.fixture
def local_principals(local_aws: LocalAws) -> Principals:
    """Principals on the embedded local AWS (its simulator answers; nothing is enforced)."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return Principals(local_aws.endpoint_url, keys, local_aws.region)


@contextlib.contextmanager
def enforcing_moto(setup_calls: int) -> Iterator[str]:
    """A stock moto server in its own process, on loopback, that checks every request against
    IAM once its first `setup_calls` requests (unauthenticated: the setup) are spent."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(setup_calls)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def enforcing_principals() -> Iterator[Principals]:
    """Principals on a stock moto (no simulator) that enforces IAM once the admin is made."""
    import boto3

    with enforcing_moto(ADMIN_SETUP_CALLS) as url:
        setup = boto3.client(
            "iam",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        setup.create_user(UserName="admin")
        setup.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=doc(allow("*")))
        key = setup.create_access_key(UserName="admin")["AccessKey"]
        keys = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }
        yield Principals(url, keys)
