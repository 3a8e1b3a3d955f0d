"""`qa-console iam check|policy|create-role` as a user runs them: the installed console script
against the embedded local AWS, acting as an IAM user of it (its access keys in the
environment), with the defaults from the settings (QA_CONSOLE_* variables)."""

from __future__ import annotations

import json
from collections.abc import Callable

from fixtures_foundation import run_cli
from fixtures_iam import ACCOUNT, Principals, deployment, without
from qa_console.ops.iam.facts import DeploymentFacts
from qa_console.ops.iam.fix import minimal_policies
from qa_console.ops.iam.role import create_execution_role

Name = Callable[[str], str]


def settings_env(facts: DeploymentFacts) -> dict[str, str]:
    """The settings that describe this deployment, as a user would have them configured."""
    return {
        "QA_CONSOLE_EXECUTION_ROLE": facts.execution_role_arn,
        "QA_CONSOLE_BUCKET": facts.bucket,
        "QA_CONSOLE_FOLDER": "qa-console",
        "QA_CONSOLE_ENDPOINT_NAME": facts.endpoint_name,
    }


def as_user(principals: Principals, name: str, document: dict[str, object]) -> dict[str, str]:
    """Access keys of a new user with this policy, as environment variables."""
    _, target = principals.user(name, {"deploy": document})
    keys = target.connection.credentials
    return {
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
    }


def printed_policy(stdout: str, name: str) -> dict[str, object]:
    """The policy document printed under `# <name>.json` by `iam check`."""
    after = stdout.split(f"# {name}.json", 1)[1].split("\n", 1)[1]
    document, _ = json.JSONDecoder().raw_decode(after)
    assert isinstance(document, dict)
    return document


def test_check_denies_pass_role_prints_the_fix_and_passes_once_it_is_attached(
    local_principals: Principals, unique_name: Name
) -> None:
    facts = deployment(unique_name)
    create_execution_role(local_principals.admin, facts)
    user = unique_name("cliuser")
    env = {
        **settings_env(facts),
        **as_user(
            local_principals,
            user,
            without(facts, "iam:PassRole"),
        ),
    }

    denied = run_cli("iam", "check", env=env)

    assert denied.returncode == 3, denied.stderr
    assert "Traceback" not in denied.stderr
    table_rows = [line for line in denied.stdout.splitlines() if "│" in line]
    denied_rows = [line for line in table_rows if " denied " in line]
    assert len(denied_rows) == 1
    assert "iam:PassRole" in denied_rows[0] and facts.execution_role_arn in denied_rows[0]
    assert not any(" unknown " in line for line in table_rows)
    assert f"caller: arn:aws:iam::{ACCOUNT}:user/{user}" in denied.stdout
    fix = printed_policy(denied.stdout, "qa-console-deploy")
    assert fix["Statement"] == [
        {
            "Sid": "IamRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": facts.execution_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    ]
    assert "error: 1 permission the deploy needs is denied" in denied.stderr
    assert (
        f"hint: save the policy above and run: aws iam put-user-policy --user-name {user} "
        "--policy-name qa-console-deploy --policy-document file://qa-console-deploy.json"
    ) in " ".join(denied.stderr.split())

    as_json = run_cli("iam", "check", "--json", env=env)
    assert as_json.returncode == 3
    data = json.loads(as_json.stdout)
    assert data["iam_check"]["ok"] is False
    assert data["iam_check"]["counts"]["denied"] == 1
    (caller, role) = data["iam_check"]["principals"]
    assert (caller["subject"], role["subject"]) == ("caller", "execution role")
    assert [r["action"] for r in caller["rows"] if r["state"] == "denied"] == ["iam:PassRole"]
    assert {r["checked_by"] for r in caller["rows"]} == {"simulated"}
    assert [f["policy"] for f in data["fixes"]] == [fix]

    local_principals.put_policies("user", user, {"qa-console-deploy": fix})
    passing = run_cli("iam", "check", env=env)
    assert passing.returncode == 0, passing.stderr
    assert " denied " not in passing.stdout and "error:" not in passing.stderr
    assert json.loads(run_cli("iam", "check", "--json", env=env).stdout)["iam_check"]["ok"]


def test_policy_prints_the_whole_minimal_policies(
    unique_name: Name, local_principals: Principals
) -> None:
    facts = deployment(unique_name)
    env = settings_env(facts)
    policies = minimal_policies(facts)
    for flag, key in (("--caller", "caller"), ("--role", "role"), ("--trust", "trust")):
        printed = run_cli("iam", "policy", flag, env=env)
        assert printed.returncode == 0, printed.stderr
        assert json.loads(printed.stdout) == policies[key][1]
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    wrapped = run_cli("iam", "policy", "--caller", "--role-arn", other, "--json", env=env)
    data = json.loads(wrapped.stdout)["policy"]
    assert (data["for"], data["name"]) == ("caller", "qa-console-deploy")
    assert other in json.dumps(data["document"])
    refused = run_cli("iam", "policy", "--caller", "--role", env=env)
    assert refused.returncode == 2
    assert "pass exactly one of --caller, --role, --trust" in refused.stderr


def test_create_role_then_check_of_that_role_is_allowed(
    unique_name: Name, local_principals: Principals
) -> None:
    facts = deployment(unique_name)
    env = {key: value for key, value in settings_env(facts).items() if "ROLE" not in key}
    name = facts.role_name

    created = run_cli("iam", "create-role", name, "--json", env=env)
    assert created.returncode == 0, created.stderr
    role = json.loads(created.stdout)["role"]
    assert (role["created"], role["role_arn"]) == (True, facts.execution_role_arn)
    assert role["role_policy"] == minimal_policies(facts)["role"][1]

    checked = run_cli("iam", "check", "--role", name, env=env)
    assert checked.returncode == 0, checked.stderr
    assert f"execution role: {facts.execution_role_arn}" in checked.stdout
    assert " denied " not in checked.stdout and " unknown " not in checked.stdout

    again = run_cli("iam", "create-role", name, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == facts.execution_role_arn
    assert "already exists as wanted" in again.stderr


def test_check_without_an_execution_role_says_how_to_get_one(local_principals: Principals) -> None:
    missing = run_cli("iam", "check")
    assert missing.returncode == 2
    assert "error: no SageMaker execution role to check" in missing.stderr
    assert "qa-console iam create-role NAME" in missing.stderr
