"""What the local control plane says about an endpoint, read with plain boto3 calls.

describe_endpoint -> describe_endpoint_config -> describe_model (+ head_object of the model data),
flattened into an `EndpointSpec`. A variant's `deployment_key` changes whenever anything that
decides what is served changes (update_endpoint to a new config, a new model, a re-uploaded
tarball), which is how the runtime knows to fetch and load again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

SERVING_STATUSES = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
PREPARING_STATUSES = frozenset({"Creating"}) | SERVING_STATUSES


@dataclass(frozen=True)
class VariantSpec:
    name: str
    model_name: str
    model_data_url: str | None
    model_etag: str | None
    environment: tuple[tuple[str, str], ...]
    instance_count: int
    instance_type: str | None
    weight: float
    serverless_max_concurrency: int | None = None
    serverless_memory_mb: int | None = None
    image: str | None = None  # the container image the model names
    problem: str | None = None  # why this variant cannot be served (no model, no model data)

    @property
    def serverless(self) -> bool:
        return self.serverless_max_concurrency is not None

    def deployment_key(self, endpoint: str, config_name: str) -> str:
        fields = [
            endpoint,
            config_name,
            self.name,
            self.model_name,
            self.model_data_url,
            self.model_etag,
            self.environment,
            self.instance_count,
            self.instance_type,
            self.serverless_max_concurrency,
        ]
        return hashlib.sha256(json.dumps(fields, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    arn: str
    account: str
    status: str
    config_name: str
    variants: tuple[VariantSpec, ...]
    async_output_path: str | None = None
    async_failure_path: str | None = None
    fetched_at: float = field(default=0.0, compare=False)

    @property
    def serving(self) -> bool:
        return self.status in SERVING_STATUSES

    def variant(self, name: str | None) -> VariantSpec | None:
        if name is None:
            return self.variants[0] if self.variants else None
        return next((variant for variant in self.variants if variant.name == name), None)


def _account_from_arn(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else "123456789012"


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class ControlPlane:
    """Reads endpoints from the local control plane, with a short cache per endpoint."""

    def __init__(self, sagemaker: Any, s3: Any, sts: Any, cache_s: float = 1.0) -> None:
        self.sagemaker = sagemaker
        self.s3 = s3
        self.sts = sts
        self.cache_s = cache_s
        self._cache: dict[str, EndpointSpec | None] = {}
        self._cached_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._account: str | None = None
        self._etags: dict[str, str] = {}

    def account(self) -> str:
        if self._account is None:
            try:
                self._account = str(self.sts.get_caller_identity()["Account"])
            except Exception:
                self._account = "123456789012"
        return self._account

    def cached(self, name: str) -> EndpointSpec | None:
        """The cached spec if it is fresh enough, else None (no I/O: safe on the event loop)."""
        with self._lock:
            spec = self._cache.get(name)
            if spec is not None and time.monotonic() - self._cached_at[name] < self.cache_s:
                return spec
        return None

    def endpoint(self, name: str, *, fresh: bool = False) -> EndpointSpec | None:
        """The endpoint's current spec, or None when it does not exist."""
        now = time.monotonic()
        with self._lock:
            if not fresh and name in self._cache and now - self._cached_at[name] < self.cache_s:
                return self._cache[name]
        spec = self._describe(name)
        with self._lock:
            self._cache[name] = spec
            self._cached_at[name] = time.monotonic()
        return spec

    def endpoint_names(self) -> dict[str, str]:
        """Every endpoint of the control plane, name -> status."""
        names: dict[str, str] = {}
        for page in self.sagemaker.get_paginator("list_endpoints").paginate():
            for endpoint in page.get("Endpoints", []):
                names[endpoint["EndpointName"]] = endpoint["EndpointStatus"]
        return names

    def _describe(self, name: str) -> EndpointSpec | None:
        try:
            endpoint = self.sagemaker.describe_endpoint(EndpointName=name)
        except Exception as error:
            if _error_code(error) in ("ValidationException", "ValidationError", "ResourceNotFound"):
                return None
            raise
        # While an update is under way the new config is the one to load (SageMaker starts its
        # fleet while the old one serves); the pool swaps it in once it has loaded.
        pending = endpoint.get("PendingDeploymentSummary") or {}
        config_name = pending.get("EndpointConfigName") or endpoint["EndpointConfigName"]
        try:
            config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        except Exception as error:
            if _error_code(error) not in ("ValidationException", "ValidationError"):
                raise
            config = {"ProductionVariants": []}
        variants = tuple(self._variant(raw) for raw in config.get("ProductionVariants", []))
        output = (config.get("AsyncInferenceConfig") or {}).get("OutputConfig") or {}
        return EndpointSpec(
            name=name,
            arn=endpoint["EndpointArn"],
            account=_account_from_arn(endpoint["EndpointArn"]),
            status=endpoint["EndpointStatus"],
            config_name=config_name,
            variants=variants,
            async_output_path=output.get("S3OutputPath"),
            async_failure_path=output.get("S3FailurePath"),
            fetched_at=time.time(),
        )

    def _variant(self, raw: dict[str, Any]) -> VariantSpec:
        serverless = raw.get("ServerlessConfig") or {}
        model_name = raw.get("ModelName", "")
        base: dict[str, Any] = {
            "name": raw.get("VariantName", "AllTraffic"),
            "model_name": model_name,
            "instance_count": int(raw.get("InitialInstanceCount") or 1),
            "instance_type": raw.get("InstanceType"),
            "weight": float(raw.get("InitialVariantWeight") or 1.0),
            "serverless_max_concurrency": serverless.get("MaxConcurrency") if serverless else None,
            "serverless_memory_mb": serverless.get("MemorySizeInMB") if serverless else None,
        }
        try:
            model = self.sagemaker.describe_model(ModelName=model_name)
        except Exception as error:
            if _error_code(error) not in ("ValidationException", "ValidationError"):
                raise
            return VariantSpec(
                **base,
                model_data_url=None,
                model_etag=None,
                environment=(),
                problem=f"model {model_name!r} does not exist",
            )
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        base["image"] = container.get("Image")
        url = container.get("ModelDataUrl")
        environment = tuple(sorted((container.get("Environment") or {}).items()))
        if not url:
            return VariantSpec(
                **base,
                model_data_url=None,
                model_etag=None,
                environment=environment,
                problem=f"model {model_name!r} has no ModelDataUrl",
            )
        return VariantSpec(
            **base, model_data_url=url, model_etag=self._etag(url), environment=environment
        )

    def _etag(self, url: str) -> str | None:
        """The model data's ETag: a re-uploaded tarball is a new deployment. A failed look-up
        keeps the last known value, so a hiccup does not look like a new model."""
        try:
            bucket, key = split_s3_url(url)
            etag = str(self.s3.head_object(Bucket=bucket, Key=key).get("ETag", "")).strip('"')
        except Exception as error:
            if _error_code(error) in ("404", "NoSuchKey", "NoSuchBucket"):
                self._etags.pop(url, None)
                return None  # fetching will say what is wrong
            return self._etags.get(url)
        self._etags[url] = etag
        return etag


def split_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key). Raises ValueError for anything else."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url}")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url}")
    return bucket, key
