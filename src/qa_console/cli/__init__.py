"""The Typer CLI: one module per command group, all thin faces over `ops` and `backends`.

Command modules import heavy libraries inside their functions, never at module level:
`qa-console --help` and `qa-console ask` must start fast.
"""
