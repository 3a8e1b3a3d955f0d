"""CloudWatch Logs for the embedded local AWS: shipping the lines of containers and Lambda
sandboxes to the local logs service in batches (shipper.py).
"""
