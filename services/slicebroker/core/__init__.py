"""Pure building blocks shared by every service's domain layer: errors, reasons, ids, validation.

Nothing here imports grpc or redis, so domain code may depend on it freely.
"""
