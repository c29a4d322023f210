"""Starlette adapter for featbit-experiments."""
