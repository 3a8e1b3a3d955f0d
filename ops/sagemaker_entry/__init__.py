"""The SageMaker training job's entry point (train_entry.py), shipped in sourcedir.tar.gz."""
