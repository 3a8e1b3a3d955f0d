"""`qa-console expose NAME`: a SageMaker endpoint behind a public HTTPS API, with a key.

What it makes (each recorded for teardown the moment AWS confirms it):
  - an IAM role for the Lambda function that allows exactly sagemaker:InvokeEndpoint on this
    endpoint and writing its own log group;
  - the Lambda function qa-console-NAME-api running inference/lambda_handler.py (a deterministic
    zip: same code, same bytes, same CodeSha256), its timeout above the model's answer time;
  - a REGIONAL REST API with POST /ask (API key required) and OPTIONS /ask (the CORS preflight),
    both Lambda proxy integrations, the invoke permission scoped to them, gateway responses that
    put the CORS headers on API Gateway's own 4xx/5xx too, a deployment and a stage;
  - an API key and a usage plan with the throttle (rate, burst) and the daily quota.
Exposing NAME again updates what is there: the function's code and settings, the plan's limits,
a new deployment; the key stays. The same boto3 calls work on a real account.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from qa_console.errors import UsageError
from qa_console.events import ProgressCallback, ProgressEvent, ignore_progress
from qa_console.ops.aws.errors import aws_errors, error_code
from qa_console.ops.iam.fix import trust_policy

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

HANDLER_FILE = "lambda_handler.py"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
LAMBDA_RUNTIME = "python3.12"
FUNCTION_TIMEOUT_S = 30  # API Gateway gives an integration 29 s; the function stops just after
MODEL_TIMEOUT_S = 25  # the function's own wait for the model, inside that
ROLE_POLICY_NAME = "invoke-endpoint-and-log"
CORS_RESPONSE_TYPES = ("DEFAULT_4XX", "DEFAULT_5XX")
GATEWAY_HEADER = "gatewayresponse.header."


@dataclass(frozen=True)
class ExposeRequest:
    endpoint: str
    stage: str = "prod"
    rate: float = 10.0  # requests per second, steady
    burst: int = 20
    quota_per_day: int | None = 10_000
    cors_origin: str = "*"

    @property
    def api_name(self) -> str:
        return f"qa-console-{self.endpoint}"

    @property
    def function_name(self) -> str:
        return f"qa-console-{self.endpoint}-api"

    @property
    def role_name(self) -> str:
        return f"qa-console-{self.endpoint}-api-lambda"[:64]


@dataclass
class ExposeResult:
    endpoint: str
    url: str
    api_id: str
    stage: str
    function_name: str
    key_id: str
    key_value: str = field(repr=False)
    usage_plan_id: str = ""
    updated: bool = False
    created: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, show_key: bool = False) -> dict[str, Any]:
        data = {
            "endpoint": self.endpoint,
            "url": self.url,
            "api_id": self.api_id,
            "stage": self.stage,
            "function": self.function_name,
            "api_key_id": self.key_id,
            "usage_plan_id": self.usage_plan_id,
            "updated": self.updated,
            "created": self.created,
        }
        if show_key:
            data["api_key"] = self.key_value
        return data


def function_zip() -> bytes:
    """The Lambda code: lambda_handler.py alone, fixed time and mode, so the same code gives the
    same bytes (and Lambda's CodeSha256 says whether an update changes anything)."""
    source = resources.files("qa_console.inference").joinpath(HANDLER_FILE).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(HANDLER_FILE, date_time=ZIP_TIME)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, source)
    return buffer.getvalue()


def check_request(request: ExposeRequest) -> None:
    if request.rate <= 0 or request.burst < 1:
        raise UsageError("--rate must be positive and --burst at least 1")
    if request.quota_per_day is not None and request.quota_per_day < 1:
        raise UsageError("--quota must be at least 1 request per day")
    if not request.stage.replace("_", "").isalnum():
        raise UsageError(f"stage {request.stage!r}: letters, digits and '_' only")


def expose(
    target: Target,
    request: ExposeRequest,
    recorder: Any,
    *,
    progress: ProgressCallback = ignore_progress,
) -> ExposeResult:
    """Create or update the API of `request.endpoint` (see the module docstring). `recorder`
    is the deploy's Recorder (ops/deploy/rollout.py): what it creates is recorded with it."""
    check_request(request)
    endpoint_arn = _endpoint_arn(target, request.endpoint)
    existing = {(item.kind, item.name): item for item in recorder.recorded()}

    def step(message: str, done: bool = False) -> None:
        progress(ProgressEvent("expose", message, done=done))

    step(f"role {request.role_name}")
    role_arn = _ensure_role(target, request, endpoint_arn, recorder, existing)
    step(f"function {request.function_name}")
    function_arn, updated = _ensure_function(target, request, role_arn, recorder, existing)
    step(f"REST API {request.api_name}")
    api_id = _ensure_api(target, request, function_arn, recorder, existing)
    step(f"deploying stage {request.stage}")
    with aws_errors(f"deploy the API {api_id}", target=target, resource=f"REST API {api_id}"):
        target.client("apigateway").create_deployment(
            restApiId=api_id,
            stageName=request.stage,
            description=f"qa-console expose {request.endpoint}",
        )
    step("API key and usage plan")
    key_id, key_value, plan_id = _ensure_key_and_plan(target, request, api_id, recorder, existing)
    step("exposed", done=True)
    return ExposeResult(
        endpoint=request.endpoint,
        url=target.api_url(api_id, request.stage, "ask"),
        api_id=api_id,
        stage=request.stage,
        function_name=request.function_name,
        key_id=key_id,
        key_value=key_value,
        usage_plan_id=plan_id,
        updated=updated,
        created=recorder.created,
    )


def _endpoint_arn(target: Target, endpoint: str) -> str:
    from qa_console.ops.deploy.rollout import current_endpoint

    described = current_endpoint(target, endpoint)
    if described is None:
        raise UsageError(
            f"endpoint {endpoint} does not exist in {target.describe()}",
            hint=f"deploy it first: qa-console deploy artifacts/model --name {endpoint}",
        )
    return str(described["EndpointArn"])


def _ensure_role(
    target: Target,
    request: ExposeRequest,
    endpoint_arn: str,
    recorder: Any,
    existing: dict[tuple[str, str], Any],
) -> str:
    """The function's role, allowed exactly this endpoint's invocation and its own logs."""
    iam = target.client("iam")
    account = endpoint_arn.split(":")[4]
    partition = endpoint_arn.split(":")[1]
    log_group = (
        f"arn:{partition}:logs:{target.region}:{account}:log-group:/aws/lambda/"
        f"{request.function_name}"
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": endpoint_arn},
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group, f"{log_group}:*"],
            },
        ],
    }
    with aws_errors(f"create role {request.role_name}", target=target,
                    resource=f"role {request.role_name}"):  # fmt: skip
        try:
            role = iam.create_role(
                RoleName=request.role_name,
                AssumeRolePolicyDocument=json.dumps(trust_policy("lambda.amazonaws.com")),
                Description=f"qa-console expose {request.endpoint}: invoke the endpoint, log",
                Tags=[{"Key": "qa-console:endpoint", "Value": request.endpoint}],
            )["Role"]
        except iam.exceptions.EntityAlreadyExistsException:
            if ("iam-role", request.role_name) not in existing:
                raise UsageError(
                    f"a role named {request.role_name} exists and qa-console did not create it",
                    hint="delete or rename it, then expose again",
                ) from None
            role = iam.get_role(RoleName=request.role_name)["Role"]
        else:
            recorder.add(
                "iam-role", request.role_name, role["Arn"], policy_names=[ROLE_POLICY_NAME]
            )
        iam.put_role_policy(
            RoleName=request.role_name,
            PolicyName=ROLE_POLICY_NAME,
            PolicyDocument=json.dumps(policy),
        )
    return str(role["Arn"])


def _ensure_function(
    target: Target,
    request: ExposeRequest,
    role_arn: str,
    recorder: Any,
    existing: dict[tuple[str, str], Any],
) -> tuple[str, bool]:
    """(function ARN, whether it already existed and was updated)."""
    lam = target.client("lambda")
    settings = {
        "Role": role_arn,
        "Handler": "lambda_handler.handler",
        "Runtime": LAMBDA_RUNTIME,
        "Timeout": FUNCTION_TIMEOUT_S,
        "MemorySize": 256,
        "Environment": {
            "Variables": {
                "ENDPOINT_NAME": request.endpoint,
                "CORS_ORIGIN": request.cors_origin,
                "MODEL_TIMEOUT_S": str(MODEL_TIMEOUT_S),
            }
        },
    }
    code = function_zip()
    name = request.function_name
    with aws_errors(f"create function {name}", target=target, resource=f"function {name}"):
        try:
            made = _retrying_new_role(
                lambda: lam.create_function(
                    FunctionName=name,
                    Code={"ZipFile": code},
                    Tags={"qa-console:endpoint": request.endpoint},
                    **settings,
                )
            )
        except lam.exceptions.ResourceConflictException:
            if ("lambda-function", name) not in existing:
                raise UsageError(
                    f"a Lambda function named {name} exists and qa-console did not create it",
                    hint="delete or rename it, then expose again",
                ) from None
            lam.update_function_code(FunctionName=name, ZipFile=code)
            _wait_function_updated(lam, name)
            made = lam.update_function_configuration(FunctionName=name, **settings)
            _wait_function_updated(lam, name)
            return str(made["FunctionArn"]), True
    recorder.add("lambda-function", name, made["FunctionArn"])
    return str(made["FunctionArn"]), False


def _retrying_new_role(create: Any) -> Any:
    """A role made seconds ago may not be assumable by Lambda yet (IAM is eventually
    consistent): create_function then says so; try again for a little while."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + 30
    while True:
        try:
            return create()
        except ClientError as error:
            message = str(error.response.get("Error", {}).get("Message", ""))
            retry = error_code(error) == "InvalidParameterValueException" and "assume" in message
            if not retry or time.monotonic() > deadline:
                raise
            time.sleep(2)


def _wait_function_updated(lam: Any, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = lam.get_function_configuration(FunctionName=name)
        if state.get("LastUpdateStatus", "Successful") != "InProgress":
            return
        time.sleep(1)


def _ensure_api(
    target: Target,
    request: ExposeRequest,
    function_arn: str,
    recorder: Any,
    existing: dict[tuple[str, str], Any],
) -> str:
    """The REST API with POST and OPTIONS /ask, made once (re-exposing reuses it)."""
    apigw = target.client("apigateway")
    recorded = [item for (kind, _), item in existing.items() if kind == "apigateway-rest-api"]
    if recorded:
        api_id = recorded[0].name
        with aws_errors(f"read REST API {api_id}", target=target, resource=f"REST API {api_id}"):
            apigw.get_rest_api(restApiId=api_id)
        _allow_invoke(target, request, function_arn, api_id)
        return api_id
    with aws_errors(f"create REST API {request.api_name}", target=target):
        api = apigw.create_rest_api(
            name=request.api_name,
            description=f"qa-console: questions to SageMaker endpoint {request.endpoint}",
            endpointConfiguration={"types": ["REGIONAL"]},
            apiKeySource="HEADER",
            tags={"qa-console:endpoint": request.endpoint},
        )
        api_id = str(api["id"])
        recorder.add("apigateway-rest-api", api_id, request.api_name)
        root = next(
            item["id"]
            for item in apigw.get_resources(restApiId=api_id)["items"]
            if item["path"] == "/"
        )
        resource = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="ask")["id"]
        uri = (
            f"arn:aws:apigateway:{target.region}:lambda:path/2015-03-31/functions/"
            f"{function_arn}/invocations"
        )
        for method, key_required in (("POST", True), ("OPTIONS", False)):
            apigw.put_method(
                restApiId=api_id,
                resourceId=resource,
                httpMethod=method,
                authorizationType="NONE",
                apiKeyRequired=key_required,
            )
            apigw.put_integration(
                restApiId=api_id,
                resourceId=resource,
                httpMethod=method,
                type="AWS_PROXY",
                integrationHttpMethod="POST",
                uri=uri,
            )
        for response_type in CORS_RESPONSE_TYPES:  # API Gateway's own 403/429/5xx too
            apigw.put_gateway_response(
                restApiId=api_id,
                responseType=response_type,
                responseParameters={
                    f"{GATEWAY_HEADER}Access-Control-Allow-Origin": f"'{request.cors_origin}'",
                    f"{GATEWAY_HEADER}Access-Control-Allow-Headers": "'Content-Type,X-Api-Key'",
                },
            )
    _allow_invoke(target, request, function_arn, api_id)
    return api_id


def _allow_invoke(target: Target, request: ExposeRequest, function_arn: str, api_id: str) -> None:
    """Let this API (its /ask methods, any stage) invoke the function; idempotent."""
    account = function_arn.split(":")[4]
    partition = function_arn.split(":")[1]
    source = f"arn:{partition}:execute-api:{target.region}:{account}:{api_id}/*/*/ask"
    lam = target.client("lambda")
    with aws_errors(f"allow API {api_id} to call {request.function_name}", target=target):
        try:
            lam.add_permission(
                FunctionName=request.function_name,
                StatementId=f"apigateway-{api_id}",
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=source,
            )
        except lam.exceptions.ResourceConflictException:
            return  # granted by an earlier expose


def _ensure_key_and_plan(
    target: Target,
    request: ExposeRequest,
    api_id: str,
    recorder: Any,
    existing: dict[tuple[str, str], Any],
) -> tuple[str, str, str]:
    """(key id, key value, usage plan id): made once, the plan's limits updated every time."""
    apigw = target.client("apigateway")
    throttle = {"rateLimit": float(request.rate), "burstLimit": int(request.burst)}
    quota = (
        {"limit": int(request.quota_per_day), "period": "DAY"}
        if request.quota_per_day is not None
        else None
    )
    keys = [item for (kind, _), item in existing.items() if kind == "apigateway-api-key"]
    plans = [item for (kind, _), item in existing.items() if kind == "apigateway-usage-plan"]
    with aws_errors(f"set up the API key of {request.endpoint}", target=target):
        if keys and plans:
            key_id, plan_id = keys[0].name, plans[0].name
            key = apigw.get_api_key(apiKey=key_id, includeValue=True)
            operations = [
                {"op": "replace", "path": "/throttle/rateLimit", "value": str(request.rate)},
                {"op": "replace", "path": "/throttle/burstLimit", "value": str(request.burst)},
            ]
            if quota is not None:
                operations.append(
                    {"op": "replace", "path": "/quota/limit", "value": str(quota["limit"])}
                )
            apigw.update_usage_plan(usagePlanId=plan_id, patchOperations=operations)
            return key_id, str(key["value"]), plan_id
        key = apigw.create_api_key(
            name=f"{request.api_name}-key",
            enabled=True,
            tags={"qa-console:endpoint": request.endpoint},
        )
        recorder.add("apigateway-api-key", key["id"])
        arguments: dict[str, Any] = {
            "name": f"{request.api_name}-plan",
            "apiStages": [{"apiId": api_id, "stage": request.stage}],
            "throttle": throttle,
        }
        if quota is not None:
            arguments["quota"] = quota
        plan = apigw.create_usage_plan(**arguments)
        recorder.add("apigateway-usage-plan", plan["id"], api_id=api_id, stage=request.stage)
        apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        recorder.add("apigateway-usage-plan-key", key["id"], usage_plan_id=plan["id"])
    return str(key["id"]), str(key["value"]), str(plan["id"])
