"""google.rpc.Status → BadRequest field violations, with the generated google.rpc messages.

googleapis-common-protos, when installed, owns the ``google.rpc`` modules (registering a second copy of
``google/rpc/status.proto`` would clash in protobuf's default pool), so it is preferred; otherwise the copies
generated here from capa's proto/google/rpc are used.
"""

from __future__ import annotations

from typing import List, Tuple

try:  # pragma: no cover - depends on what else is installed
    from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    from ._gen.google.rpc import error_details_pb2, status_pb2

BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest"


def decode_bad_request(raw: bytes) -> List[Tuple[str, str]]:
    """(field, description) of every BadRequest field violation in an encoded google.rpc.Status."""
    status = status_pb2.Status.FromString(raw)
    out: List[Tuple[str, str]] = []
    for detail in status.details:
        if detail.type_url == BAD_REQUEST_TYPE_URL:
            bad = error_details_pb2.BadRequest.FromString(detail.value)
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out
