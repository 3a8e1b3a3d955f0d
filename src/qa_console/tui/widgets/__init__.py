"""Widgets of the TUI, one per file: they show state and hold no business logic."""
