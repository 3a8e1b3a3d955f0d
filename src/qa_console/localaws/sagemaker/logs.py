"""Where an endpoint's log lines go, named as SageMaker names them.

SageMaker writes an endpoint's container output to the group `/aws/sagemaker/Endpoints/<name>`,
one stream per instance, `<variant>/<instance-id>`; the runtime writes its containers' lines and
its own (loading, restarts, access log) there too, through the local AWS's one log shipper
(cloudwatch/shipper.py), so `qa-console logs` and live tail show what they would on AWS.
"""

from __future__ import annotations


def group_name(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def stream_name(variant: str, instance_id: str) -> str:
    return f"{variant}/{instance_id}"
