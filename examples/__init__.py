"""Runnable examples on embedded defaults (see the README, section Examples). Modules whose
names start with an underscore are shared by the examples; each example is a package run with
``python -m examples.<name>``."""
