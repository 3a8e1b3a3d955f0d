"""model.tar.gz for SageMaker: build it (build.py), the layout rules (layout.py), check one
(check.py), run its handler as the container would (smoke.py), extract one safely (safe_tar.py),
and compress on every core (gzip_parallel.py).
"""
