// Decoding response bodies the way the Go suite does with encoding/json.Unmarshal into its
// structs, so that a body passes or fails for the same reasons: keys match struct fields
// case-insensitively, unknown keys are ignored, null gives the zero value, and a value of the
// wrong type is an error (the suite then fails on `Expect(err).To(BeNil())`).

type Schema =
  | 'string'
  | 'int'
  | 'bytes'
  | 'any'
  | { array: Schema }
  | { map: Schema }
  | { struct: Record<string, Schema> };

function decode(value: unknown, schema: Schema, path: string, errors: string[]): unknown {
  if (schema === 'any') return value;
  if (value === null || value === undefined) return zero(schema);
  const fail = (): unknown => {
    errors.push(`${path}: cannot unmarshal ${JSON.stringify(value)?.slice(0, 60)} into ${describeSchema(schema)}`);
    return zero(schema);
  };
  if (schema === 'string') return typeof value === 'string' ? value : fail();
  if (schema === 'int') return typeof value === 'number' && Number.isInteger(value) ? value : fail();
  if (schema === 'bytes') {
    // []byte is base64 (std encoding, padded) in Go's JSON.
    if (typeof value !== 'string') return fail();
    const s = value.replace(/[\r\n]/g, '');
    return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s) ? Buffer.from(s, 'base64') : fail();
  }
  if ('array' in schema) {
    if (!Array.isArray(value)) return fail();
    return value.map((v, i) => decode(v, schema.array, `${path}[${i}]`, errors));
  }
  if (typeof value !== 'object' || Array.isArray(value)) return fail();
  const obj = value as Record<string, unknown>;
  if ('map' in schema) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = decode(v, schema.map, `${path}.${k}`, errors);
    return out;
  }
  const out = zero(schema) as Record<string, unknown>;
  for (const [field, fieldSchema] of Object.entries(schema.struct)) {
    for (const [k, v] of Object.entries(obj)) {
      if (k.toLowerCase() === field.toLowerCase()) out[field] = decode(v, fieldSchema, `${path}.${k}`, errors);
    }
  }
  return out;
}

function zero(schema: Schema): unknown {
  if (schema === 'string') return '';
  if (schema === 'int') return 0;
  if (schema === 'bytes' || schema === 'any') return null;
  if ('array' in schema || 'map' in schema) return null;
  const out: Record<string, unknown> = {};
  for (const [field, fieldSchema] of Object.entries(schema.struct)) out[field] = zero(fieldSchema);
  return out;
}

function describeSchema(schema: Schema): string {
  if (typeof schema === 'string') return schema;
  if ('array' in schema) return `[]${describeSchema(schema.array)}`;
  if ('map' in schema) return `map[string]${describeSchema(schema.map)}`;
  return 'struct';
}

function unmarshal(body: Buffer | string, schema: Schema): { value: unknown; error?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString());
  } catch (e) {
    return { value: zero(schema), error: `invalid JSON: ${(e as Error).message}` };
  }
  const errors: string[] = [];
  const value = decode(parsed, schema, '$', errors);
  return errors.length > 0 ? { value, error: errors[0] } : { value };
}

// --- reggie's Response.Errors() --------------------------------------------------------------

export interface ErrorInfo {
  code: string;
  message: string;
  detail: unknown;
}

const errorResponseSchema: Schema = {
  struct: { errors: { array: { struct: { code: 'string', message: 'string', detail: 'any' } } } },
};

/**
 * reggie's Response.Errors(): the body must unmarshal into {errors: [{code, message, detail}]}
 * and hold at least one error; otherwise an error is returned.
 */
export function responseErrors(body: Buffer): { errors: ErrorInfo[]; error?: string } {
  const { value, error } = unmarshal(body, errorResponseSchema);
  if (error) return { errors: [], error };
  const errors = ((value as { errors: ErrorInfo[] | null }).errors ?? []) as ErrorInfo[];
  if (errors.length === 0) return { errors, error: 'body was valid json but could not be parsed' };
  return { errors };
}

// --- setup.go's TagList ----------------------------------------------------------------------

const tagListSchema: Schema = { struct: { name: 'string', tags: { array: 'string' } } };

export function unmarshalTagList(body: Buffer | string): { name: string; tags: string[]; error?: string } {
  const { value, error } = unmarshal(body, tagListSchema);
  const v = value as { name: string; tags: string[] | null };
  return { name: v.name, tags: v.tags ?? [], error };
}

/** setup.go getTagList: the tags, or [] when the body does not unmarshal. */
export function getTagList(body: Buffer): string[] {
  const { tags, error } = unmarshalTagList(body);
  return error ? [] : tags;
}

// --- image.go's index and descriptor ---------------------------------------------------------

export interface DecodedDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string> | null;
  artifactType: string;
}

export interface DecodedIndex {
  schemaVersion: number;
  mediaType: string;
  artifactType: string;
  manifests: DecodedDescriptor[] | null;
  annotations: Record<string, string> | null;
}

const platformSchema: Schema = {
  struct: {
    architecture: 'string',
    os: 'string',
    'os.version': 'string',
    'os.features': { array: 'string' },
    variant: 'string',
  },
};

const descriptorSchema: Schema = {
  struct: {
    mediaType: 'string',
    digest: 'string',
    size: 'int',
    urls: { array: 'string' },
    annotations: { map: 'string' },
    data: 'bytes',
    platform: platformSchema,
    artifactType: 'string',
    newUnspecifiedField: 'bytes',
  },
};

const indexSchema: Schema = {
  struct: {
    schemaVersion: 'int',
    mediaType: 'string',
    artifactType: 'string',
    manifests: { array: descriptorSchema },
    subject: descriptorSchema,
    annotations: { map: 'string' },
  },
};

export function unmarshalIndex(body: Buffer): { index: DecodedIndex; error?: string } {
  const { value, error } = unmarshal(body, indexSchema);
  return { index: value as DecodedIndex, error };
}
