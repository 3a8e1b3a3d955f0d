"""Where AWS calls go: a Target is the embedded local AWS or an AWS profile, and it builds the boto3
sessions and clients for itself.

There is one code path for real AWS and the local one. A Target built from a profile builds
plain boto3 clients; the 'local' Target builds the same clients with botocore's standard endpoint
settings passed per client (`endpoint_url`, the runtime's own URL for sagemaker-runtime, host
prefix injection off), which is what AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME and
AWS_DISABLE_HOST_PREFIX_INJECTION would do, without touching this process's environment. So ops
code never branches on the target, and one process can use both (the TUI switching target).

Target names other than the providers' are AWS profiles. The embedded local AWS provides
'local'; it is named here by a "module:function" string, as the registry names backend kinds,
so this module and every ops function stay free of imports of qa_console.localaws: the pipeline
reaches it only through the endpoints its Target hands out.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

LOCAL_TARGET = "local"
DEFAULT_REGION = "us-east-1"
PROVIDERS: dict[str, str] = {LOCAL_TARGET: "qa_console.localaws:local_target"}
EXECUTE_API_URL = "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/{path}"


@dataclass(frozen=True)
class TargetHints:
    """What to tell a user whose call failed, worded for where the call went."""

    unreachable: str
    no_credentials: str


def profile_hints(profile: str) -> TargetHints:
    return TargetHints(
        unreachable="check the network and the region",
        no_credentials=f"run `aws configure --profile {profile}` (or `aws sso login --profile "
        f"{profile}`), or use the embedded local AWS with --target local",
    )


LOCAL_HINTS = TargetHints(
    unreachable="start the local AWS with `qa-console local up` (`qa-console local status` "
    "says what runs)",
    no_credentials="the local AWS takes any credentials: unset AWS_PROFILE",
)


def client_config(**overrides: Any) -> Any:
    """botocore Config with the standard retry mode (the default, legacy, retries too little)."""
    from botocore.config import Config

    settings: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
    settings.update(overrides)
    return Config(**settings)


@dataclass(frozen=True)
class Connection:
    """How a Target's calls reach it.

    endpoint_urls: service -> URL for services not at AWS's own endpoints ("*" is every other
                   service); empty for real AWS
    api_urls:      where a REST API stage answers, a str.format template with `{api_id}`,
                   `{stage}`, `{path}` and `{region}`; AWS's execute-api by default
    credentials:   boto3.Session keyword arguments (aws_access_key_id, ...); empty: the profile's
    """

    endpoint_urls: Mapping[str, str] = field(default_factory=dict)
    api_urls: str = EXECUTE_API_URL
    credentials: Mapping[str, str] = field(default_factory=dict)


class Target:
    """One place AWS calls go. Build it with `resolve(name, region)` or `Target.profile(...)`.

    A provider's Target connects on first use (`connect`: the local one starts the embedded
    local AWS then), so naming a target costs nothing and a command that fails on bad input
    starts nothing.
    """

    def __init__(
        self,
        name: str,
        region: str,
        *,
        connect: Callable[[], Connection] | None = None,
        hints: TargetHints | None = None,
        profile: str | None = None,
    ) -> None:
        self.name = name
        self.region = region
        self.hints = hints or profile_hints(name)
        self._profile = profile
        self._connect = connect or Connection
        self._connection: Connection | None = None
        self._session: Any = None
        self._lock = threading.RLock()

    @classmethod
    def profile(cls, name: str, region: str) -> Target:
        """An AWS profile from ~/.aws/config (credentials as the AWS CLI finds them)."""
        return cls(name, region, profile=name)

    def __repr__(self) -> str:
        return f"Target({self.name!r}, {self.region!r})"

    def describe(self) -> str:
        """`local (us-east-1)` or `profile prod (eu-west-1)`, for messages."""
        kind = "" if self._profile is None else "profile "
        return f"{kind}{self.name} ({self.region})"

    @property
    def connection(self) -> Connection:
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            return self._connection

    def to_dict(self) -> dict[str, Any]:
        """What a status line shows; connects (the local AWS starts) to know its endpoints."""
        return {
            "name": self.name,
            "region": self.region,
            "endpoint_urls": dict(self.connection.endpoint_urls),
        }

    # --- boto3 ------------------------------------------------------------------------------

    def session(self) -> Any:
        """The boto3 Session (made once). An unknown profile is a one-line ConfigError."""
        with self._lock:
            if self._session is None:
                import boto3

                from qa_console.ops.aws.errors import aws_errors

                botocore_session = None
                if self._profile is None:
                    # No profile at all, not even AWS_PROFILE from the shell: a Target with its own
                    # endpoints and credentials must not fail on (or read) a profile it never uses.
                    import botocore.session

                    botocore_session = botocore.session.Session(
                        session_vars={"profile": (None, None, None, None)}
                    )
                credentials = dict(self.connection.credentials)
                with aws_errors("use the AWS target", target=self):
                    self._session = boto3.Session(
                        profile_name=self._profile,
                        region_name=self.region,
                        botocore_session=botocore_session,
                        **credentials,
                    )
            return self._session

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client for one service, with standard retries; `config` goes to botocore's
        Config (read_timeout=70, say)."""
        session = self.session()
        urls = self.connection.endpoint_urls
        endpoint = urls.get(service) or urls.get("*")
        if endpoint is not None:
            config.setdefault("inject_host_prefix", False)  # the IP endpoint has no subdomains
        return session.client(service, endpoint_url=endpoint, config=client_config(**config))

    def api_url(self, api_id: str, stage: str, path: str = "") -> str:
        """Where a client calls `path` of a REST API's stage on this target."""
        return self.connection.api_urls.format(
            api_id=api_id, stage=stage, path=path.lstrip("/"), region=self.region
        )


def resolve(name: str | None, region: str | None) -> Target:
    """The Target a name means: a provider's ('local' starts or finds the embedded local AWS),
    else the AWS profile of that name."""
    name = name or LOCAL_TARGET
    region = region or DEFAULT_REGION
    provider = PROVIDERS.get(name)
    if provider is None:
        return Target.profile(name, region)
    module, _, function = provider.partition(":")
    made: Target = getattr(importlib.import_module(module), function)(region)
    return made
