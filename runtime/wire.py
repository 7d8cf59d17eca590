"""Names on the wire shared by the runtime API and its client (kept import-light:
pyctr's start-up time is part of every command)."""

NAMESPACE_HEADER = "X-Pyengine-Namespace"
LEASE_HEADER = "X-Pyengine-Lease"
DEFAULT_NAMESPACE = "default"
API_PREFIX = "/v1"
# A path's stat on a container archive response: base64 of its JSON, as Docker's X-Docker-Container-Path-Stat.
PATH_STAT_HEADER = "X-Pyengine-Path-Stat"
