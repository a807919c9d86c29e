"""The broker's pure logic: grants, validation, placement on a snapshot, the grant path and its
repair loops, written against ports (inventory, quota, accounting, the grant store)."""
