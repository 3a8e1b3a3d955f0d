"""Lambda for the local API gateway: the functions of the control plane (functions.py), their code
unpacked from the zip (code.py), and warm sandbox processes that run them (sandboxes.py, on the
worker supervisor it shares with the SageMaker runtime, localaws/workers.py).
"""
