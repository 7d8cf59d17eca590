"""The runtime API client: the only part of runtime/ that engine/ and cli/ import."""
from runtime.client.client import DEFAULT_ADDRESS, Client
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
    "DEFAULT_ADDRESS", "Client", "AlreadyExists", "Conflict", "DataLoss", "FailedPrecondition", "Internal",
    "InvalidArgument", "NotFound", "PermissionDenied", "RuntimeError_", "Unauthenticated", "Unavailable",
]
