"""The shared runtime every slicebroker service is built on: server bootstrap, interceptors, the error
table, settings, Redis access and Lua script loading, leader locks, logging and metrics."""
