// A small HTTP client that behaves like the one the Go conformance suite uses
// (bloodorangeio/reggie over resty): paths are templates with <name>, <reference> and
// <digest>; a request to an upload's Location keeps the query the registry put there and
// appends new parameters sorted and escaped as Go's url.Values.Encode does; redirects are
// followed (Go's default http.Client does); a GET carries no body (resty drops it).
import * as http from 'node:http';
import * as https from 'node:https';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  /** repository for this request instead of the default namespace (reggie.WithName) */
  name?: string;
  reference?: string;
  digest?: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  body?: Buffer;
}

export class RegistryResponse {
  constructor(
    readonly method: Method,
    readonly url: string,
    readonly status: number,
    private readonly headerValues: Map<string, string>,
    readonly body: Buffer,
  ) {}

  /** The header's value, or '' when absent (Go's Header.Get). */
  header(name: string): string {
    return this.headerValues.get(name.toLowerCase()) ?? '';
  }

  text(): string {
    return this.body.toString('utf8');
  }

  /** reggie's GetRelativeLocation: path and query of the Location header ('' when absent). */
  relativeLocation(): string {
    const location = this.header('Location');
    if (location === '') return '';
    let u: URL;
    try {
      u = new URL(location, 'http://relative.invalid');
    } catch {
      return '';
    }
    return u.pathname + u.search;
  }

  /** reggie's GetAbsoluteLocation: the Location header as sent. */
  absoluteLocation(): string {
    return this.header('Location');
  }

  /** One line that says what was asked and answered, for assertion messages. */
  describe(): string {
    const snippet = this.method === 'HEAD' ? '' : ` ${truncate(this.text(), 300)}`;
    return `${this.method} ${this.url} -> ${this.status}${snippet}`;
  }
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`;
}

// Go's url.QueryEscape: everything but [A-Za-z0-9-_.~] is escaped, a space becomes '+'.
function goQueryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

export class RegistryClient {
  constructor(
    readonly rootUrl: string,
    readonly defaultName: string,
    private readonly debug = false,
  ) {}

  /** Builds the URL as reggie's NewRequest and resty do. Throws like reggie's validateRequest. */
  url(path: string, opts: RequestOptions = {}): string {
    const name = opts.name || this.defaultName;
    let p = path;
    if (name) p = p.split('<name>').join(name);
    if (opts.reference) p = p.split('<reference>').join(opts.reference);
    if (opts.digest) p = p.split('<digest>').join(opts.digest);
    if (/<name>|<reference>|<digest>|<session_id>/.test(p)) {
      throw new Error(`request is invalid: unfilled placeholder in ${p}`);
    }
    let url = `${this.rootUrl.replace(/\/+$/, '')}/${p.replace(/^\//, '')}`;
    const params = Object.entries(opts.query ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (params.length > 0) {
      const encoded = params.map(([k, v]) => `${goQueryEscape(k)}=${goQueryEscape(v)}`).join('&');
      url += url.includes('?') ? `&${encoded}` : `?${encoded}`;
    }
    return url;
  }

  /**
   * Sends a request with fetch. A Content-Length header given here is not sent as such:
   * fetch computes it from the body, as Go's transport ignores the header map's value.
   */
  async do(method: Method, path: string, opts: RequestOptions = {}): Promise<RegistryResponse> {
    const url = this.url(path, opts);
    const headers = new Headers({ 'User-Agent': 'distribution-spec-conformance-tests' });
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (k.toLowerCase() !== 'content-length') headers.set(k, v);
    }
    const withBody = method !== 'GET' && method !== 'HEAD';
    const res = await fetch(url, {
      method,
      headers,
      body: withBody && opts.body ? opts.body : undefined,
      redirect: 'follow',
    });
    const body = Buffer.from(await res.arrayBuffer());
    const values = new Map<string, string>();
    res.headers.forEach((v, k) => values.set(k.toLowerCase(), v));
    return this.log(new RegistryResponse(method, url, res.status, values, body));
  }

  /**
   * Sends a request with node:http and exactly the headers given (Content-Length and
   * Content-Range included), for the chunked upload PATCHes. Redirects are not followed.
   */
  async doRaw(method: Method, path: string, opts: RequestOptions = {}): Promise<RegistryResponse> {
    const url = this.url(path, opts);
    const body = opts.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = { 'User-Agent': 'distribution-spec-conformance-tests' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k] = v;
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
      headers['Content-Length'] = String(body.length);
    }
    const target = new URL(url);
    const transport = target.protocol === 'https:' ? https : http;
    const response = await new Promise<RegistryResponse>((resolve, reject) => {
      const req = transport.request(target, { method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const values = new Map<string, string>();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) values.set(k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v);
          }
          resolve(new RegistryResponse(method, url, res.statusCode ?? 0, values, Buffer.concat(chunks)));
        });
      });
      req.on('error', reject);
      req.end(body);
    });
    return this.log(response);
  }

  private log(resp: RegistryResponse): RegistryResponse {
    if (this.debug) {
      const headers = ['location', 'range', 'docker-content-digest', 'oci-subject', 'oci-filters-applied', 'link']
        .map((h) => [h, resp.header(h)])
        .filter(([, v]) => v !== '')
        .map(([h, v]) => `${h}: ${v}`)
        .join('; ');
      process.stderr.write(`[conformance] ${resp.describe()}${headers ? ` [${headers}]` : ''}\n`);
    }
    return resp;
  }
}
