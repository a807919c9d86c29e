"""Accounting's Redis adapter: the `UsageStore` port over one Lua ingest script and plain reads."""
