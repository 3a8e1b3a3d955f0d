"""Screens: layouts of widgets that forward what the user does to the app as messages."""
