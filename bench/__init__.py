"""The benchmark harness behind `make bench` (see bench/__main__.py and the README).

It drives the app only from outside: through its HTTP and WebSocket API and its management
commands, so it keeps measuring the same thing while the app's internals change.
"""
