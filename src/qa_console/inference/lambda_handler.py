"""The Lambda function behind the public API: API Gateway (REST, Lambda proxy) -> SageMaker.

Runs in AWS Lambda's Python runtime, so it uses only the standard library and boto3 (which the
runtime has) and imports nothing from qa_console. Configured by its environment:

    ENDPOINT_NAME   the SageMaker endpoint to ask (required)
    CORS_ORIGIN     the Access-Control-Allow-Origin of every response (default "*")
    MODEL_TIMEOUT_S how long to wait for the model (default 25: under API Gateway's 29 s)

Contract (the http backend speaks it):
    POST {"question": "...", "parameters": {...}}  ->  200 {"answer": "...", "latency_ms": ...}
    400 {"message": ...}  a body that is not that JSON object (what is wrong, in words)
    413 {"message": ...}  a body over MAX_BODY_BYTES
    502 {"message": ...}  the model failed (SageMaker's ModelError) or answered nonsense
    503 {"message": ...}  the endpoint is missing, not InService yet, or throttling
    504 {"message": ...}  the model did not answer in time
Every response, errors and the OPTIONS preflight included, carries the CORS headers.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

MAX_BODY_BYTES = 16 * 1024
MAX_QUESTION_CHARS = 2000
ALLOWED_METHODS = "POST,OPTIONS"
ALLOWED_HEADERS = "Content-Type,X-Api-Key"
MODEL_TIMEOUT_TEXT = "timed out while waiting for a response"

_runtime: Any = None  # one client per sandbox: kept warm between invocations


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def cors_headers() -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": os.environ.get("CORS_ORIGIN", "*"),
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Vary": "Origin",
    }


def respond(status: int, body: dict[str, Any] | None) -> dict[str, Any]:
    headers = {**cors_headers(), "Content-Type": "application/json"}
    return {
        "statusCode": status,
        "headers": headers,
        "body": "" if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def parse_body(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(question, parameters) from the proxy event. Raises BadRequest saying what is wrong."""
    raw = event.get("body") or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    if len(data) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        request = json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(400, f"the body is not JSON ({error})") from None
    if not isinstance(request, dict):
        raise BadRequest(400, 'send a JSON object: {"question": "..."}')
    unknown = sorted(set(request) - {"question", "parameters"})
    if unknown:
        raise BadRequest(400, f"unknown field {unknown[0]!r}: send question and parameters")
    question = request.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadRequest(400, '"question" must be a non-empty string')
    if len(question) > MAX_QUESTION_CHARS:
        raise BadRequest(
            413, f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest(400, '"parameters" must be a JSON object')
    return question.strip(), parameters


def runtime_client() -> Any:
    global _runtime
    if _runtime is None:
        import boto3
        from botocore.config import Config

        timeout = float(os.environ.get("MODEL_TIMEOUT_S", "25"))
        _runtime = boto3.client(
            "sagemaker-runtime",
            config=Config(
                read_timeout=timeout,
                connect_timeout=5,
                retries={"mode": "standard", "max_attempts": 2},
            ),
        )
    return _runtime


def generated_text(payload: bytes) -> str:
    data: Any = json.loads(payload)
    while isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("generated_text"), str):
        return str(data["generated_text"])
    if isinstance(data, str):
        return data
    raise ValueError("no generated_text in the reply")


def ask_endpoint(question: str, parameters: dict[str, Any]) -> dict[str, Any]:
    from botocore.exceptions import ClientError, ReadTimeoutError

    endpoint = os.environ["ENDPOINT_NAME"]
    body = json.dumps({"inputs": question, "parameters": parameters}).encode()
    started = time.perf_counter()
    try:
        reply = runtime_client().invoke_endpoint(
            EndpointName=endpoint,
            Body=body,
            ContentType="application/json",
            Accept="application/json",
        )
        payload = reply["Body"].read()
    except ReadTimeoutError:
        raise BadRequest(504, "the model did not answer in time") from None
    except ClientError as error:
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "")), str(details.get("Message", ""))
        original = str(error.response.get("OriginalMessage") or message)
        if code == "ModelError" and MODEL_TIMEOUT_TEXT in original:
            raise BadRequest(504, "the model did not answer in time") from None
        if code == "ModelError":
            raise BadRequest(502, f"the model failed: {original}") from None
        if code in ("ThrottlingException", "ServiceUnavailable", "ModelNotReadyException") or (
            "not found" in message or "not in service" in message.lower()
        ):
            raise BadRequest(503, f"the model is not available right now ({code})") from None
        if code == "ValidationError":
            raise BadRequest(400, f"the model refused the request: {message}") from None
        raise BadRequest(502, f"the endpoint failed ({code})") from None
    try:
        answer = generated_text(payload)
    except ValueError:
        raise BadRequest(502, "the model's reply had no answer in it") from None
    return {"answer": answer, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """API Gateway REST proxy event in, proxy response out."""
    method = str(event.get("httpMethod") or "POST").upper()
    if method == "OPTIONS":
        return respond(204, None)
    if method != "POST":
        return respond(405, {"message": f"{method} is not allowed: POST a question"})
    try:
        question, parameters = parse_body(event)
        return respond(200, ask_endpoint(question, parameters))
    except BadRequest as refusal:
        print(f"refused ({refusal.status}): {refusal.message}")
        return respond(refusal.status, {"message": refusal.message})
