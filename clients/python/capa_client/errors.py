"""Errors of the capa client: one exception class per kind of failure, each carrying the gRPC status.

A call the scheduler refused raises a subclass of :class:`CapaError`; INVALID_ARGUMENT raises
:class:`InvalidArgument` whose ``violations`` are the ``google.rpc.BadRequest`` field violations the scheduler sent
in the ``grpc-status-details-bin`` trailer (the field path as named on the wire, and why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import grpc

from ._rpc_status import decode_bad_request


@dataclass(frozen=True)
class FieldViolation:
    """One refused field: ``field`` is its wire path (``spec.gpus_per_replica``), ``description`` says why."""

    field: str
    description: str


class CapaError(Exception):
    """A call failed. ``code`` is the gRPC status code, ``message`` the scheduler's readable message."""

    def __init__(self, code: grpc.StatusCode, message: str, violations: Tuple[FieldViolation, ...] = ()):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.violations = violations


class InvalidArgument(CapaError):
    """The request was refused; ``violations`` lists each field at fault."""


class NotFound(CapaError):
    """The job, agent or receipt does not exist."""


class AlreadyExists(CapaError):
    """A request id was reused for a different job spec."""


class FailedPrecondition(CapaError):
    """The request cannot be served in the current state (e.g. over the tenant's budget)."""


class ResourceExhausted(CapaError):
    """A limit was reached."""


class Unauthenticated(CapaError):
    """No valid credential (token) was sent."""


class PermissionDenied(CapaError):
    """The credential may not do this."""


class Unavailable(CapaError):
    """The scheduler (or its store) cannot be reached right now: retry."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


def from_rpc_error(err: grpc.RpcError) -> CapaError:
    """The exception for a failed call, with the field violations of its status details, if any."""
    code: grpc.StatusCode = err.code()  # type: ignore[attr-defined]
    message: str = err.details() or ""  # type: ignore[attr-defined]
    trailers = err.trailing_metadata() or ()  # type: ignore[attr-defined]
    raw: Optional[bytes] = None
    for key, value in trailers:
        if key == "grpc-status-details-bin":
            raw = value
    violations: List[FieldViolation] = []
    if raw:
        violations = [FieldViolation(f, d) for f, d in decode_bad_request(raw)]
    return _BY_CODE.get(code, CapaError)(code, message, tuple(violations))
