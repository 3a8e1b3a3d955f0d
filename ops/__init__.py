"""The pipeline as a library: train, package, s3, iam, deploy, logs, expose, teardown, pricing,
and the embedded local AWS. Installed as `qa_console.ops`.

Nothing here imports textual or the CLI. Long operations take their inputs and a
`ProgressCallback` (see `events.py`), return a typed result, and raise `QAConsoleError`
subclasses (see `errors.py`) for anything a user can cause.
"""
