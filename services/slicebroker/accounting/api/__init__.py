"""Accounting's gRPC surface: the thin servicer and its proto <-> domain converters."""
