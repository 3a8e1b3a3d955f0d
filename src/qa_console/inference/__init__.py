"""Code that runs in another interpreter and so imports nothing from qa_console:

    model_handler.py     the model handler, shipped as code/inference.py in model.tar.gz
    handler_contract.py  the Hugging Face inference toolkit's call sequence (used by the two below)
    sagemaker_worker.py  the local runtime's model-container process
    lambda_worker.py     the local API gateway's Lambda sandbox process
    worker_protocol.py   the messages between those two and the local AWS (localaws/workers.py)
    train_entry.py       the SageMaker training job's entry point

Each is standard library only at import time (torch and transformers inside functions).
"""
