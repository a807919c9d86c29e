"""The inventory's gRPC face: a thin servicer and the proto <-> domain converters."""
