"""The quota service's Redis adapter: key layout, the reservation record format and the Lua scripts
that make every write atomic."""
