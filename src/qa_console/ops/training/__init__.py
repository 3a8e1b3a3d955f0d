"""Training: the question/answer data (data.py), the offline tiny T5 (tiny_model.py), a local
Seq2SeqTrainer run with its record (train.py), the same run as a SageMaker training job
(sagemaker.py), scoring (evaluate.py) and the Hugging Face hub probe (hub.py).

These modules (with qa_console/errors.py, events.py and inference/model_handler.py) are also
shipped as the source of a SageMaker training job, so they import nothing else from the app.
"""
