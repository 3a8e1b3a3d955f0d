"""The embedded local AWS: moto server + a SageMaker-compatible runtime + an API gateway, on loopback."""

from __future__ import annotations


def ensure_running() -> None:
    """Start the local AWS if it is not running and export its endpoints to this process."""
    raise NotImplementedError("the embedded local AWS is being written")
