"""capa-client: a Python client for capa, the distributed GPU scheduler and marketplace broker.

    from capa_client import Client
    capa = Client("127.0.0.1:50051", token=None)
    job = capa.submit(["sh", "-c", "echo hello from GPU $CUDA_VISIBLE_DEVICES"], gpus=1)
    print(capa.wait(job.id).state, "".join(line.text for line in capa.logs(job.id)))

The generated protobuf and gRPC modules are ``capa_client._gen.capa.v1`` (``types_pb2``, ``jobs_pb2``, ...), for
anything the hand-written client does not cover.
"""

from .client import FINAL_STATES, Client, LogLine, state_name, usd
from .errors import (
    AlreadyExists,
    CapaError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "CapaError",
    "Client",
    "FailedPrecondition",
    "FieldViolation",
    "FINAL_STATES",
    "InvalidArgument",
    "LogLine",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "state_name",
    "usd",
]
