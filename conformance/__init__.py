"""Conformance: checks a user's adapter against the model, and the command line."""

__all__: list[str] = []
