"""Verdicts: pure functions from a Result to passed / failed / invalid with reasons; no I/O."""
