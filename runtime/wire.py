"""Names on the wire shared by the runtime API and its client (kept import-light:
pyctr's start-up time is part of every command)."""

NAMESPACE_HEADER = "X-Pyengine-Namespace"
LEASE_HEADER = "X-Pyengine-Lease"
DEFAULT_NAMESPACE = "default"
API_PREFIX = "/v1"
