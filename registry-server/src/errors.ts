// Every error the API can answer with is declared once here: its OCI code, HTTP status and
// default message (distribution-spec v1.1 "Error Codes", plus RANGE_INVALID for 416). Handlers
// throw RegistryError; one function renders it.

export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: "manifest references a manifest or blob unknown to registry" },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 405, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  RANGE_INVALID: { status: 416, message: "invalid content range" },
  PAGINATION_NUMBER_INVALID: { status: 400, message: "invalid number of results requested" },
  PARAMETER_INVALID: { status: 400, message: "invalid query parameter" },
  NOT_FOUND: { status: 404, message: "no such endpoint" },
  UNAVAILABLE: { status: 503, message: "service unavailable" },
  INTERNAL: { status: 500, message: "internal server error" },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RegistryErrorOptions {
  /** Overrides the code's status (e.g. 413 for a manifest that is too large). */
  status?: number;
  /** Extra response headers (e.g. the current Range on a 416). */
  headers?: Record<string, string>;
}

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, detail?: unknown, options: RegistryErrorOptions = {}) {
    super(message ?? ERROR_CODES[code].message);
    this.name = "RegistryError";
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.detail = detail;
    this.headers = options.headers ?? {};
  }
}

/**
 * A push refused because the volume is (nearly) full: 507 Insufficient Storage with the spec's
 * DENIED code, since clients know only the spec's codes and a 5xx tells them to retry later.
 */
export function volumeFullError(message = "the registry's volume is full; nothing was stored", detail?: unknown): RegistryError {
  return new RegistryError("DENIED", message, detail, { status: 507 });
}

/** The `{errors:[…]}` envelope of the distribution spec. */
export function errorBody(err: RegistryError): string {
  const entry: { code: string; message: string; detail?: unknown } = { code: err.code, message: err.message };
  if (err.detail !== undefined) entry.detail = err.detail;
  return JSON.stringify({ errors: [entry] });
}
