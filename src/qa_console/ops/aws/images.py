"""The Hugging Face PyTorch containers SageMaker runs, chosen offline from sagemaker-core's bundled
image-URI data (huggingface.json, read as a file: sagemaker-core itself is never imported).

Training picks the image whose transformers is closest at or below the installed one (the job
runs this code); deploy picks the newest image of the transformers major version that saved the
model (transformers 5 files do not load in 4.x: measured, the tokenizer fails under 4.51.3),
refusing when there is none. The URI is built exactly as the SageMaker SDK's image_uris.retrieve
builds it (a test checks), with the region's registry and ECR host.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from qa_console.errors import UsageError

IMAGE_DATA = "sagemaker/core/image_uri_config/huggingface.json"
Scope = Literal["training", "inference"]
# "transformers5.5.3" in a Hugging Face image tag: what the container has installed.
TAG_TRANSFORMERS = re.compile(r"transformers(\d+\.\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class ContainerImage:
    """A Hugging Face container image, and why it was chosen (a sentence when not exact)."""

    uri: str
    transformers_version: str
    pytorch_version: str
    py_version: str
    processor: str  # "cpu" or "gpu"
    note: str = ""


def image_uri_data() -> dict[str, Any]:
    """sagemaker-core's bundled huggingface.json, found through package metadata (no import)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(str(distribution("sagemaker-core").locate_file(IMAGE_DATA)))
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (PackageNotFoundError, OSError, json.JSONDecodeError) as error:
        raise UsageError(
            f"cannot read the SageMaker image-URI data ({error})",
            hint="install the aws extra: pip install 'qa-console[aws]'",
        ) from None
    return data


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def transformers_of_image(uri: str) -> str | None:
    """The transformers version a Hugging Face image tag names, or None for other images."""
    match = TAG_TRANSFORMERS.search(uri.rsplit(":", 1)[-1])
    return match.group(1) if match else None


def huggingface_image(
    scope: Scope,
    region: str,
    transformers_version: str,
    *,
    processor: str,
    data: dict[str, Any] | None = None,
) -> ContainerImage:
    """The image for `scope` in `region` matching `transformers_version` (see the module
    docstring for which one each scope picks). Raises UsageError naming the versions there are
    when none fits, or when the image is not published in the region."""
    versions: dict[str, Any] = (data or image_uri_data())[scope]["versions"]
    wanted = version_tuple(transformers_version)
    available = sorted(versions, key=version_tuple)
    same_major = [v for v in available if version_tuple(v)[0] == wanted[0]]
    exact = [v for v in same_major if version_tuple(v)[:2] == wanted[:2]]
    if scope == "training":
        older = [v for v in same_major if version_tuple(v) <= wanted]
        candidates = exact or older or same_major
    else:
        candidates = exact or same_major
    if not candidates:
        saved_by = "installed" if scope == "training" else "the model was saved with"
        raise UsageError(
            f"no Hugging Face {scope} image has transformers {wanted[0]}.x "
            f"({saved_by}: {transformers_version}; images: {', '.join(available)})",
            hint="use a transformers version that has an image, or pass --image-uri",
        )
    chosen = candidates[-1]
    entry = versions[chosen]
    framework = next(key for key in entry if key.startswith("pytorch"))
    spec = entry[framework]
    registry = spec["registries"].get(region)
    if registry is None:
        raise UsageError(
            f"the Hugging Face {scope} image {chosen} is not published in region {region}",
            hint=f"pick a region among: {', '.join(sorted(spec['registries']))}",
        )
    pytorch = framework.removeprefix("pytorch")
    py_version = spec["py_versions"][-1]
    tag = "-".join(
        part
        for part in (
            f"{pytorch}-transformers{chosen}",
            processor,
            py_version,
            spec.get("container_version", {}).get(processor, ""),
        )
        if part
    )
    uri = f"{registry}.dkr.{ecr_host(region)}/{spec['repository']}:{tag}"
    note = ""
    if version_tuple(chosen)[:2] != wanted[:2]:
        whose = "is installed" if scope == "training" else "saved the model"
        note = (
            f"transformers {transformers_version} {whose}; the closest Hugging Face {scope} "
            f"image has transformers {chosen} (PyTorch {pytorch}, {py_version})"
        )
    return ContainerImage(uri, chosen, pytorch, py_version, processor, note)


def ecr_host(region: str) -> str:
    if region.startswith("cn-"):
        return f"ecr.{region}.amazonaws.com.cn"
    if region.startswith("us-isob-"):
        return f"ecr.{region}.sc2s.sgov.gov"
    if region.startswith("us-iso-"):
        return f"ecr.{region}.c2s.ic.gov"
    return f"ecr.{region}.amazonaws.com"
