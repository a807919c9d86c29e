"""The inventory's Redis adapter: key layout, Lua scripts and the store the domain service uses."""
