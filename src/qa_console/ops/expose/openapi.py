"""The OpenAPI 3 document of an exposed API: POST /ask with an API key, and its CORS preflight.

Written beside the API so a user can hand it to a client generator, and so the tests can throw
schema-driven requests at the API (no 5xx, every response as documented).
"""

from __future__ import annotations

from typing import Any

from qa_console.inference.lambda_handler import MAX_QUESTION_CHARS


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Access-Control-Allow-Origin": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document(url: str, endpoint: str, stage: str) -> dict[str, Any]:
    """The API at `url` (its /ask), answering from SageMaker endpoint `endpoint`."""
    base = url.removesuffix("/ask").removesuffix("/")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{endpoint} question answering API",
            "version": "1.0.0",
            "description": f"Answers questions with the SageMaker endpoint {endpoint} "
            f"(stage {stage}), through API Gateway and Lambda. Created by qa-console expose.",
        },
        "servers": [{"url": base}],
        "security": [{"apiKey": []}],
        "paths": {
            "/ask": {
                "post": {
                    "operationId": "ask",
                    "summary": "Answer one question",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Question"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The answer",
                            "headers": {
                                "Access-Control-Allow-Origin": {"schema": {"type": "string"}}
                            },
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Answer"}
                                }
                            },
                        },
                        "400": _error("The body is not a question"),
                        "403": _error("No API key, or not this API's"),
                        "413": _error("The body or the question is too long"),
                        "429": _error("Over the usage plan's rate, burst or quota"),
                        "502": _error("The model failed"),
                        "503": _error("The model is not available right now"),
                        "504": _error("The model did not answer in time"),
                    },
                },
                "options": {
                    "operationId": "preflight",
                    "summary": "CORS preflight",
                    "security": [],
                    "responses": {
                        "204": {
                            "description": "CORS headers",
                            "headers": {
                                "Access-Control-Allow-Origin": {"schema": {"type": "string"}},
                                "Access-Control-Allow-Methods": {"schema": {"type": "string"}},
                                "Access-Control-Allow-Headers": {"schema": {"type": "string"}},
                            },
                        }
                    },
                },
            }
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": {
                "Question": {
                    "type": "object",
                    "required": ["question"],
                    "additionalProperties": False,
                    "properties": {
                        "question": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_QUESTION_CHARS,
                        },
                        "parameters": {"type": "object"},
                    },
                },
                "Answer": {
                    "type": "object",
                    "required": ["answer", "latency_ms"],
                    "properties": {
                        "answer": {"type": "string"},
                        "latency_ms": {"type": "number"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}},
                },
            },
        },
    }
