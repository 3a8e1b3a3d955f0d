"""CloudWatch Logs for the embedded local AWS: the one shipper (shipper.py) that puts the lines of
the SageMaker runtime's containers and of the gateway's Lambda sandboxes to the local logs
service in batches, within CloudWatch's PutLogEvents limits. Group and stream names belong to
each service (sagemaker/logs.py, awslambda/sandboxes.py).
"""
