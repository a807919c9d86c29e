"""The node agent (`slicebroker agent`): discovers this node's accelerators, registers the node with
the inventory and heartbeats device health. It reports only what it finds: with no accelerators
(or no way to see them) it says so and exits non-zero; it never invents devices."""
