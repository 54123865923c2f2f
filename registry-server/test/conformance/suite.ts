// The shared state and switches of the conformance suite (setup.go), and the assertion
// helpers that stand in for gomega's matchers.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { it, type TestContext } from 'node:test';

import { makeFixtures, type Fixtures } from './fixtures';
import { RegistryClient, type RegistryResponse } from './registry-client';

// Workflow bits, as in setup.go.
export const PULL = 1 << 0;
export const PUSH = 1 << 1;
export const CONTENT_DISCOVERY = 1 << 2;
export const CONTENT_MANAGEMENT = 1 << 3;

const WORKFLOW_ENV: Record<string, number> = {
  OCI_TEST_PULL: PULL,
  OCI_TEST_PUSH: PUSH,
  OCI_TEST_CONTENT_DISCOVERY: CONTENT_DISCOVERY,
  OCI_TEST_CONTENT_MANAGEMENT: CONTENT_MANAGEMENT,
};

/** The suite's switches; setup.go reads them from OCI_* environment variables. */
export interface SuiteSettings {
  namespace: string;
  crossmountNamespace: string;
  /** bit set of enabled workflows (OCI_TEST_PULL, ...); the others are not registered */
  testsToRun: number;
  /** OCI_DELETE_MANIFEST_BEFORE_BLOBS (default true): order of the teardown deletes */
  deleteManifestBeforeBlobs: boolean;
  /** OCI_AUTOMATIC_CROSSMOUNT is set at all: the mount-without-from spec runs */
  runAutomaticCrossmountTest: boolean;
  /** OCI_AUTOMATIC_CROSSMOUNT's value: which answer (201 or 202) that spec requires */
  automaticCrossmountEnabled: boolean;
  /**
   * Whether the registry lets blobs be deleted, when the runner knows it before the run (it
   * started the registry itself); undefined for a registry of unknown configuration.
   */
  blobDeleteAllowed: boolean | undefined;
  runPullSetup: boolean;
  runPushSetup: boolean;
  runContentDiscoverySetup: boolean;
  runContentManagementSetup: boolean;
  /** OCI_TAG_NAME, used when the pull setup is skipped */
  tagName: string;
  /** OCI_TAG_LIST, used when the discovery setup is skipped */
  tagList: string;
  debug: boolean;
}

/** Go's strconv.ParseBool: [value, ok]. */
export function parseBool(v: string | undefined): [boolean, boolean] {
  if (v === undefined) return [false, false];
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return [true, true];
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return [false, true];
  return [false, false];
}

/** What the runner knows about the registry before the run, rather than from `env`. */
export type KnownUpFront = Pick<
  SuiteSettings,
  'runAutomaticCrossmountTest' | 'automaticCrossmountEnabled' | 'blobDeleteAllowed'
>;

/**
 * setup.go's init() over `env`, for one cross-mount mode. Where the Go suite needs a
 * variable to enable something (OCI_TEST_*), we enable all four workflows unless at least
 * one OCI_TEST_* is set.
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv, known: KnownUpFront): SuiteSettings {
  let testsToRun = 0;
  const anyWorkflowVar = Object.keys(WORKFLOW_ENV).some((k) => env[k] !== undefined);
  for (const [k, bit] of Object.entries(WORKFLOW_ENV)) {
    if (!anyWorkflowVar || parseBool(env[k])[0]) testsToRun |= bit;
  }
  let deleteManifestBeforeBlobs = true;
  if (env.OCI_DELETE_MANIFEST_BEFORE_BLOBS !== undefined) {
    deleteManifestBeforeBlobs = parseBool(env.OCI_DELETE_MANIFEST_BEFORE_BLOBS)[0];
  }
  return {
    namespace: env.OCI_NAMESPACE || `conformance-${randomUUID().slice(0, 8)}/test`,
    crossmountNamespace: env.OCI_CROSSMOUNT_NAMESPACE || `conformance-${randomUUID()}`,
    testsToRun,
    deleteManifestBeforeBlobs,
    ...known,
    runPullSetup: !(env.OCI_TAG_NAME && env.OCI_MANIFEST_DIGEST && env.OCI_BLOB_DIGEST),
    runPushSetup: true,
    runContentDiscoverySetup: !env.OCI_TAG_LIST,
    runContentManagementSetup: true,
    tagName: env.OCI_TAG_NAME ?? '',
    tagList: env.OCI_TAG_LIST ?? '',
    debug: parseBool(env.OCI_DEBUG)[0],
  };
}

export type SpecBody = (t: TestContext) => Promise<void> | void;
export type Spec = (name: string, body: SpecBody) => void;

/** g.Specify within one workflow: a test whose name starts with the workflow's prefix. */
export function specsOf(prefix: string): Spec {
  return (name, body) => {
    it(`${prefix}: ${name}`, body);
  };
}

export class ConformanceSuite {
  readonly fx: Fixtures;
  private connected: RegistryClient | undefined;

  constructor(readonly settings: SuiteSettings) {
    this.fx = makeFixtures({
      blobDigest: process.env.OCI_BLOB_DIGEST || undefined,
      manifestDigest: process.env.OCI_MANIFEST_DIGEST || undefined,
    });
  }

  /** Points the suite at a registry root URL (called from `before`, once the server runs). */
  connect(rootUrl: string): void {
    this.connected = new RegistryClient(rootUrl, this.settings.namespace, this.settings.debug);
  }

  get client(): RegistryClient {
    if (!this.connected) throw new Error('conformance suite used before connect()');
    return this.connected;
  }

  /**
   * Where the Go suite has SkipIfDisabled(workflow) in each spec, a disabled workflow is not
   * registered at all (as ginkgo with OCI_HIDE_SKIPPED_WORKFLOWS shows it).
   */
  enabled(workflow: number): boolean {
    return (this.settings.testsToRun & workflow) !== 0;
  }

  /**
   * The Go setup specs' upload: POST /v2/<name>/blobs/uploads/ (its answer unchecked), then
   * PUT <Location>?digest=... with the whole blob. Returns the PUT's answer.
   */
  async postThenPutBlob(content: Buffer, digest: string, contentLength = String(content.length)): Promise<RegistryResponse> {
    const post = await this.client.do('POST', '/v2/<name>/blobs/uploads/');
    return this.client.do('PUT', post.relativeLocation(), {
      query: { digest },
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': contentLength },
      body: content,
    });
  }

  /**
   * The setup specs that upload config[i] for each i, then the layer, each with
   * postThenPutBlob and a 2xx answer required.
   */
  setupUploadSpecs(spec: Spec, configIndexes: number[]): void {
    const { configs, layerBlobData, layerBlobDigest, layerBlobContentLength } = this.fx;
    for (const i of configIndexes) {
      spec(`setup uploads config[${i}] with POST then PUT ?digest= (2xx)`, async () => {
        expectSuccess(await this.postThenPutBlob(configs[i].content, configs[i].digest, configs[i].contentLength));
      });
    }
    spec('setup uploads the layer with POST then PUT ?digest= (2xx)', async () => {
      expectSuccess(await this.postThenPutBlob(layerBlobData, layerBlobDigest, layerBlobContentLength));
    });
  }

  async putManifest(reference: string, content: Buffer, mediaType: string): Promise<RegistryResponse> {
    return this.client.do('PUT', '/v2/<name>/manifests/<reference>', {
      reference,
      headers: { 'Content-Type': mediaType },
      body: content,
    });
  }
}

// --- gomega stand-ins -------------------------------------------------------------------------

/** Warn(message): the Go suite prints a warning and lets the spec pass. */
export function warn(t: TestContext, message: string): void {
  t.diagnostic(`WARNING: ${message}`);
  process.stderr.write(`WARNING: ${message} (${t.name})\n`);
}

/** Expect(resp.StatusCode()).To(Equal(a)) or SatisfyAny(Equal(a), Equal(b), ...). */
export function expectStatus(resp: RegistryResponse, ...allowed: number[]): void {
  assert.ok(
    allowed.includes(resp.status),
    `expected status ${allowed.join(' or ')}, got: ${resp.describe()}`,
  );
}

/** SatisfyAll(>=200, <300), optionally SatisfyAny'd with some other statuses. */
export function expectSuccess(resp: RegistryResponse, ...alsoAllowed: number[]): void {
  const ok = (resp.status >= 200 && resp.status < 300) || alsoAllowed.includes(resp.status);
  const expected = ['2xx', ...alsoAllowed.map(String)].join(' or ');
  assert.ok(ok, `expected status ${expected}, got: ${resp.describe()}`);
}

/** `if h := resp.Header().Get(name); h != "" { Expect(h).To(Equal(want)) }` */
export function expectHeaderIfPresent(resp: RegistryResponse, name: string, want: string): void {
  const h = resp.header(name);
  if (h !== '') assert.equal(h, want, `${name} of ${resp.method} ${resp.url}`);
}

export function expectHeaderNotEmpty(resp: RegistryResponse, name: string): void {
  assert.notEqual(resp.header(name), '', `expected a ${name} header: ${resp.describe()}`);
}

/** The value stands in for a Go pointer the suite dereferences; a nil one makes Go panic. */
export function required<T>(v: T | undefined, what: string): T {
  assert.ok(v !== undefined, `${what} is not set: an earlier spec did not get that far`);
  return v;
}
