"""The inventory service: the facility as it is.

It knows the SKU catalogue, the nodes of the facility with their devices, and which grant holds each
device. Every node carries a generation that every write increments, so the broker can decide on a
snapshot and then claim devices atomically against the generations it read (`Claim` / `Release`,
one Lua script per batch).
"""
