"""Chat backends, one module each. Installed as `qa_console.backends`.

Importing this package imports no backend: the registry (qa_console/registry.py) names each
kind by a "module:Class" string and imports only the one a run needs.
"""
