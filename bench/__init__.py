"""slicebroker benchmarks: `make bench` (or `python -m bench [names…]`)."""
