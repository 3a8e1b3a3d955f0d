"""Lambda for the local API gateway: the functions of the control plane (functions.py), their code
unpacked from the zip (code.py), and warm sandbox processes that run them (sandboxes.py).
"""
