"""Runs the whole mesh on one machine: a Redis server and the four services as separate processes.

Used by `make run`, by the fault tests (which kill and restart single services) and by the
benchmarks.
"""
