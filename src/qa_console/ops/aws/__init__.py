"""AWS plumbing: where calls go (target.py), what their failures mean (errors.py), and S3 (s3.py).

The rest of ops receives boto3 clients built here and never asks whether they talk to AWS or to
the embedded local one.
"""
