/** One error class per failure mode; the gRPC edge maps their codes (UNAUTHENTICATED, PERMISSION_DENIED). */
import { CapaError, PermissionDeniedError } from "@capa/domain";

/** No credential, or one that is malformed, unknown or revoked. The message never echoes the secret. */
export class UnauthenticatedError extends CapaError {
  readonly code = "UNAUTHENTICATED";
}

/** A token that is not `capa_<keyId>_<secret>`. */
export class MalformedTokenError extends UnauthenticatedError {}

/** The credential is valid but its role may not call the method (or act for that tenant). */
export class ForbiddenError extends PermissionDeniedError {}
