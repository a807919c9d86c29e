"""The broker: the front door. Turns requests into grants — leases on concrete slices — by placing
them on a snapshot of inventory, reserving quota and claiming devices, and ends them on release or
expiry. Grant events leave through an outbox that a relay delivers to accounting."""
