"""boto3 sessions and clients for a target: 'local' (the embedded local AWS) or an AWS profile.

There is one code path for real AWS and the local one. For 'local', the embedded local AWS is
started if it is not running, and botocore's standard endpoint settings are exported to this
process (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, AWS_DISABLE_HOST_PREFIX_INJECTION)
so every boto3 client built afterwards talks to it. Ops code never branches on the target.
"""

from __future__ import annotations

from typing import Any

LOCAL_TARGET = "local"


def client_config(**overrides: Any) -> Any:
    """botocore Config with the standard retry mode (the default, legacy, retries too little)."""
    from botocore.config import Config

    settings: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
    settings.update(overrides)
    return Config(**settings)


def session(target: str = LOCAL_TARGET, region: str = "us-east-1") -> Any:
    """A boto3 Session for the target. For 'local', starts the embedded local AWS on demand."""
    import boto3

    if target == LOCAL_TARGET:
        from qa_console.localaws import ensure_running

        ensure_running()
        return boto3.Session(region_name=region)
    _withdraw_local_endpoints()
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=target, region_name=region)
    except ProfileNotFound:
        from qa_console.errors import ConfigError

        raise ConfigError(
            f"AWS profile {target!r} does not exist",
            hint="use --target local for the embedded local AWS, or a profile from "
            "~/.aws/config (aws configure --profile NAME)",
        ) from None


def _withdraw_local_endpoints() -> None:
    """If this process talked to the local AWS before, stop routing real-AWS clients there."""
    import sys

    launcher = sys.modules.get("qa_console.localaws.launcher")
    if launcher is not None:
        launcher.withdraw_env()


def client(
    service: str, target: str = LOCAL_TARGET, region: str = "us-east-1", **config: Any
) -> Any:
    """A boto3 client for one service of the target, with standard retries."""
    return session(target, region).client(service, config=client_config(**config))
