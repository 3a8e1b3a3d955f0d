"""The pipeline as a library, one sub-package per feature. Installed as `qa_console.ops`.

    training/    the data, the tiny offline model, local training, SageMaker training, evaluation
    packaging/   model.tar.gz: build, layout, check, smoke test, safe extraction, parallel gzip
    aws/         AWS plumbing: targets (sessions and clients), the one error translator, S3
    model_files  model folders: checks, cached extraction of archives, torch threads

Nothing here imports textual, the CLI or the embedded local AWS (qa_console.localaws): every AWS
call is a plain boto3 call on a client the target built. Long operations take their inputs and a
`ProgressCallback` (qa_console/events.py), return a typed result, and raise `QAConsoleError`
subclasses (qa_console/errors.py) for anything a user can cause.
"""
