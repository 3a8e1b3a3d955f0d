"""qa-console: from a biography Q&A dataset to a live HTTP API on SageMaker, and a chat throughout.

This module stays import-light on purpose: `qa-console ask` must start fast, so nothing heavy
(torch, transformers, textual, boto3) is imported at package import time.
"""

__version__ = "0.1.0"
