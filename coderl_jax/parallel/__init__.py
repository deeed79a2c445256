"""Parallelism: the device mesh and its sharding rules (`mesh`), multi-host helpers
(`multihost`)."""
