"""The Textual terminal UI. Only this package and the `tui` command's function import textual, so
every other command starts without it (tests/test_foundation_import_hygiene.py)."""
