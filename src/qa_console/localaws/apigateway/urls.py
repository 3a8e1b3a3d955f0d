"""Where a REST API stage answers on the local gateway.

The local gateway serves every API at one unambiguous path (several APIs can share a stage
name), so clients need no DNS tricks:

    {gateway}/restapis/{api_id}/{stage}/_user_request_/{path}

It also answers `{gateway}/{stage}/{path}` with a Host header `{api_id}.execute-api.<anything>`,
and `{gateway}/{stage}/{path}` alone when the stage and path name exactly one API.

The 'local' Target carries this as its API URL template (ops/aws/target.py Target.api_url), so
code that prints or calls an API's URL never asks which gateway it is on.
"""

from __future__ import annotations

USER_REQUEST = "_user_request_"


def url_template(base_url: str) -> str:
    """The local gateway's URL for `{api_id}`, `{stage}` and `{path}` (str.format fields)."""
    return f"{base_url.rstrip('/')}/restapis/{{api_id}}/{{stage}}/{USER_REQUEST}/{{path}}"


def local_invoke_url(base_url: str, api_id: str, stage: str, path: str = "") -> str:
    return url_template(base_url).format(api_id=api_id, stage=stage, path=path.lstrip("/"))
