"""Docker's log drivers: a container's output, captured by its monitor, kept in the format its driver names.

conmon holds the container's stdio and writes it, timestamped, to a bounded capture
file that survives the engine being down. The engine ships that capture into the
driver's own files (json-file's `<id>-json.log`, local's `local-logs/container.log`)
with their rotation, and serves `docker logs` from them.
"""
