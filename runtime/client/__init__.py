"""The runtime API client: the only part of runtime/ that engine/ and cli/ import."""
from runtime.client.client import DEFAULT_ADDRESS, Client
from runtime.client.protocol import RuntimeAPI
from runtime.errors import (
                            AlreadyExists,
                            Conflict,
                            DataLoss,
                            FailedPrecondition,
                            Internal,
                            InvalidArgument,
                            NotFound,
                            PermissionDenied,
                            RuntimeError_,
                            Unauthenticated,
                            Unavailable,
)

__all__ = [
    "DEFAULT_ADDRESS", "Client", "RuntimeAPI", "AlreadyExists", "Conflict", "DataLoss", "FailedPrecondition", "Internal",
    "InvalidArgument", "NotFound", "PermissionDenied", "RuntimeError_", "Unauthenticated", "Unavailable",
]
