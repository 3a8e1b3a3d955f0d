"""Exposing an endpoint as an HTTP API:

    flow.py     expose_endpoint: the AWS side, then the key kept for the user, an http backend
                NAME-api in their plugins.toml, and the OpenAPI document
    api.py      the Lambda function, its role, the REST API, the API key and the usage plan
    openapi.py  the OpenAPI 3 document of the API

The function's code is inference/lambda_handler.py. Teardown (ops/teardown.py) removes it all.
"""
