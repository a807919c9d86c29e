"""The quota service's gRPC face: a thin servicer and the proto ↔ domain converters."""
