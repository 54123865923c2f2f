// Test data of the OCI distribution-spec conformance suite (v1.1.x), ported from
// conformance/setup.go (init) and conformance/image.go.
//
// The Go suite builds its manifests with encoding/json.MarshalIndent(v, "", "\t") from
// structs whose field order and omitempty rules we reproduce here, so that the bytes a
// registry receives have the same shape: descriptors carry `"newUnspecifiedField": null`
// (a nil []byte without omitempty) or a base64 string, the test manifests embed the config
// in `data`, the empty-layer manifest has no `mediaType`, and so on.
import { createHash, randomBytes, randomInt } from 'node:crypto';

export interface TestBlob {
  content: Buffer;
  contentLength: string;
  digest: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  data?: Buffer;
  artifactType?: string;
  newUnspecifiedField?: Buffer;
}

interface Manifest {
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

interface Index {
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_INDEX = 'application/vnd.oci.image.index.v1+json';
const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MEDIA_TYPE_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MEDIA_TYPE_EMPTY = 'application/vnd.oci.empty.v1+json';

export const EMPTY_LAYER_TEST_TAG = 'emptylayer';
export const TEST_TAG_NAME = 'tagtest0';
export const ARTIFACT_TYPE_FILTER = 'artifactType';

// setup.go: base64 of `tar czvf test.tar.gz test.txt`, test.txt holding
// "you bothered to find out what was in here. Congratulations!".
const LAYER_BASE64 =
  'H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0' +
  'WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD' +
  'jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA';

// setup.go's const block continues `1 << iota` after the four workflow bits, so
// numWorkflows is 16, not 4: the suite makes 16 configs and manifests and uses [0]..[4].
const NUM_WORKFLOWS = 1 << 4;

export function sha256Digest(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

function goDescriptor(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.annotations && Object.keys(d.annotations).length > 0) out.annotations = sortedRecord(d.annotations);
  if (d.data && d.data.length > 0) out.data = d.data.toString('base64');
  if (d.artifactType) out.artifactType = d.artifactType;
  out.newUnspecifiedField = d.newUnspecifiedField ? d.newUnspecifiedField.toString('base64') : null;
  return out;
}

function goManifest(m: Manifest): Record<string, unknown> {
  const out: Record<string, unknown> = { schemaVersion: 2 };
  if (m.mediaType) out.mediaType = m.mediaType;
  if (m.artifactType) out.artifactType = m.artifactType;
  out.config = goDescriptor(m.config);
  out.layers = m.layers.map(goDescriptor);
  if (m.subject) out.subject = goDescriptor(m.subject);
  if (m.annotations && Object.keys(m.annotations).length > 0) out.annotations = sortedRecord(m.annotations);
  return out;
}

function goIndex(i: Index): Record<string, unknown> {
  const out: Record<string, unknown> = { schemaVersion: 2 };
  if (i.mediaType) out.mediaType = i.mediaType;
  if (i.artifactType) out.artifactType = i.artifactType;
  out.manifests = i.manifests.map(goDescriptor);
  if (i.subject) out.subject = goDescriptor(i.subject);
  if (i.annotations && Object.keys(i.annotations).length > 0) out.annotations = sortedRecord(i.annotations);
  return out;
}

// Go marshals map keys in sorted order.
function sortedRecord(r: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k];
  return out;
}

// json.MarshalIndent(v, "", "\t"); none of our strings hold the <, >, & that Go would escape.
function marshalIndent(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v, null, '\t'));
}

function testBlob(content: Buffer, digestOverride?: string): TestBlob {
  return { content, contentLength: String(content.length), digest: digestOverride || sha256Digest(content) };
}

// setup.go randomString: crypto/rand over this alphabet.
function randomString(n: number): string {
  const letters = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-';
  let s = '';
  for (let i = 0; i < n; i++) s += letters[randomInt(letters.length)];
  return s;
}

/** setup.go's chunked blob (testBlobB), rebuilt when the registry asks for a larger chunk. */
export class ChunkedBlob {
  blob = Buffer.alloc(0);
  digest = '';
  chunk1 = Buffer.alloc(0);
  chunk1Length = '';
  chunk1Range = '';
  chunk2 = Buffer.alloc(0);
  chunk2Length = '';
  chunk2Range = '';

  constructor(size: number) {
    this.setup(size);
  }

  /** setupChunkedBlob(size): chunk 1 is the first size/2+1 bytes, chunk 2 the rest. */
  setup(size: number): void {
    this.blob = randomBytes(size);
    this.digest = sha256Digest(this.blob);
    const split = Math.floor(size / 2) + 1;
    this.chunk1 = this.blob.subarray(0, split);
    this.chunk1Length = String(this.chunk1.length);
    this.chunk1Range = `0-${this.chunk1.length - 1}`;
    this.chunk2 = this.blob.subarray(split);
    this.chunk2Length = String(this.chunk2.length);
    this.chunk2Range = `${this.chunk1.length}-${this.blob.length - 1}`;
  }
}

export interface Fixtures {
  configs: TestBlob[];
  manifests: TestBlob[];
  layerBlobData: Buffer;
  layerBlobDigest: string;
  layerBlobContentLength: string;
  emptyLayerManifestContent: Buffer;
  emptyLayerManifestDigest: string;
  nonexistentManifest: string;
  invalidManifestContent: Buffer;
  testBlobA: Buffer;
  testBlobALength: string;
  testBlobADigest: string;
  testBlobB: ChunkedBlob;
  emptyJSONBlob: Buffer;
  emptyJSONDescriptor: Descriptor;
  testRefBlobA: Buffer;
  testRefBlobALength: string;
  testRefBlobADigest: string;
  testRefBlobB: Buffer;
  testRefBlobBLength: string;
  testRefBlobBDigest: string;
  testRefArtifactTypeA: string;
  testRefArtifactTypeB: string;
  testRefArtifactTypeIndex: string;
  refsManifestAConfigArtifact: TestBlob;
  refsManifestBConfigArtifact: TestBlob;
  refsManifestALayerArtifact: TestBlob;
  refsManifestBLayerArtifact: TestBlob;
  refsManifestCLayerArtifact: TestBlob;
  refsIndexArtifact: TestBlob;
  testAnnotationKey: string;
  /** digest of each referrer of manifests[4] → the value of its testAnnotationKey annotation */
  testAnnotationValues: Map<string, string>;
  dummyDigest: string;
}

export interface FixtureOverrides {
  /** OCI_BLOB_DIGEST: replaces every config's digest (for a registry populated beforehand). */
  blobDigest?: string;
  /** OCI_MANIFEST_DIGEST: replaces every manifest's digest (content unchanged). */
  manifestDigest?: string;
}

export function makeFixtures(overrides: FixtureOverrides = {}): Fixtures {
  // A unique config per workflow: a random author gives each a distinct digest.
  const configs: TestBlob[] = [];
  for (let i = 0; i < NUM_WORKFLOWS; i++) {
    const image = {
      author: randomString(16),
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] as string[] },
    };
    configs.push(testBlob(marshalIndent(image), overrides.blobDigest));
  }

  const layerBlobData = Buffer.from(LAYER_BASE64, 'base64');
  const layerBlobDigest = sha256Digest(layerBlobData);
  const layers: Descriptor[] = [{ mediaType: MEDIA_TYPE_LAYER, size: layerBlobData.length, digest: layerBlobDigest }];

  const configDescriptor = (c: TestBlob): Descriptor => ({
    mediaType: MEDIA_TYPE_CONFIG,
    digest: c.digest,
    size: c.content.length,
    data: c.content, // must be the config content
    newUnspecifiedField: Buffer.from('hello world'), // content doesn't matter
  });

  const manifests: TestBlob[] = [];
  for (let i = 0; i < NUM_WORKFLOWS; i++) {
    const content = marshalIndent(
      goManifest({ mediaType: MEDIA_TYPE_MANIFEST, config: configDescriptor(configs[i]), layers }),
    );
    manifests.push(testBlob(content, overrides.manifestDigest));
  }

  // Used in the push test: no mediaType, no layers.
  const emptyLayerManifestContent = marshalIndent(goManifest({ config: configDescriptor(configs[1]), layers: [] }));

  const testBlobA = randomBytes(42);
  const emptyJSONBlob = Buffer.from('{}');
  const emptyJSONDescriptor: Descriptor = {
    mediaType: MEDIA_TYPE_EMPTY,
    size: emptyJSONBlob.length,
    digest: sha256Digest(emptyJSONBlob),
  };

  const testRefBlobA = Buffer.from('NHL Peanut Butter on my NHL bagel');
  const testRefArtifactTypeA = 'application/vnd.nhl.peanut.butter.bagel';
  const testRefBlobB = Buffer.from('NBA Strawberry Jam on my NBA croissant');
  const testRefArtifactTypeB = 'application/vnd.nba.strawberry.jam.croissant';
  const testRefArtifactTypeIndex = 'application/vnd.food.stand';
  const testAnnotationKey = 'org.opencontainers.conformance.test';
  const testAnnotationValues = new Map<string, string>();

  const subjectOf = (m: TestBlob): Descriptor => ({
    mediaType: MEDIA_TYPE_MANIFEST,
    size: m.content.length,
    digest: sha256Digest(m.content),
  });
  // Each annotated referrer of manifests[4] is remembered with its annotation value, which
  // the referrers response must echo.
  const remember = (blob: TestBlob, annotations?: Record<string, string>): TestBlob => {
    const value = annotations?.[testAnnotationKey];
    if (value !== undefined) testAnnotationValues.set(blob.digest, value);
    return blob;
  };
  const manifestArtifact = (m: Manifest): TestBlob => remember(testBlob(marshalIndent(goManifest(m))), m.annotations);
  const indexArtifact = (i: Index): TestBlob => remember(testBlob(marshalIndent(goIndex(i))), i.annotations);

  // Artifact with a subject whose config.mediaType is the artifact type.
  const refsManifestAConfigArtifact = manifestArtifact({
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: testRefArtifactTypeA, size: testRefBlobA.length, digest: sha256Digest(testRefBlobA) },
    subject: subjectOf(manifests[4]),
    layers: [emptyJSONDescriptor],
    annotations: { [testAnnotationKey]: 'test config a' },
  });
  const refsManifestBConfigArtifact = manifestArtifact({
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: testRefArtifactTypeB, size: testRefBlobB.length, digest: sha256Digest(testRefBlobB) },
    subject: subjectOf(manifests[4]),
    layers: [emptyJSONDescriptor],
    annotations: { [testAnnotationKey]: 'test config b' },
  });
  // Artifacts with a subject, an artifactType and the empty JSON config.
  const refsManifestALayerArtifact = manifestArtifact({
    mediaType: MEDIA_TYPE_MANIFEST,
    artifactType: testRefArtifactTypeA,
    config: emptyJSONDescriptor,
    subject: subjectOf(manifests[4]),
    layers: [{ mediaType: testRefArtifactTypeA, size: testRefBlobA.length, digest: sha256Digest(testRefBlobA) }],
    annotations: { [testAnnotationKey]: 'test layer a' },
  });
  const refsManifestBLayerArtifact = manifestArtifact({
    mediaType: MEDIA_TYPE_MANIFEST,
    artifactType: testRefArtifactTypeB,
    config: emptyJSONDescriptor,
    subject: subjectOf(manifests[4]),
    layers: [{ mediaType: testRefArtifactTypeB, size: testRefBlobB.length, digest: sha256Digest(testRefBlobB) }],
    annotations: { [testAnnotationKey]: 'test layer b' },
  });
  // Same as B but its subject (manifests[3]) has not been pushed; no annotations.
  const refsManifestCLayerArtifact = manifestArtifact({
    mediaType: MEDIA_TYPE_MANIFEST,
    artifactType: testRefArtifactTypeB,
    config: emptyJSONDescriptor,
    subject: subjectOf(manifests[3]),
    layers: [{ mediaType: testRefArtifactTypeB, size: testRefBlobB.length, digest: sha256Digest(testRefBlobB) }],
  });
  // An index artifact with a subject, listing the two "A" artifacts.
  const refsIndexArtifact = indexArtifact({
    mediaType: MEDIA_TYPE_INDEX,
    artifactType: testRefArtifactTypeIndex,
    manifests: [
      {
        mediaType: MEDIA_TYPE_MANIFEST,
        size: refsManifestAConfigArtifact.content.length,
        digest: refsManifestAConfigArtifact.digest,
      },
      {
        mediaType: MEDIA_TYPE_MANIFEST,
        size: refsManifestALayerArtifact.content.length,
        digest: refsManifestALayerArtifact.digest,
      },
    ],
    subject: subjectOf(manifests[4]),
    annotations: { [testAnnotationKey]: 'test index' },
  });

  return {
    configs,
    manifests,
    layerBlobData,
    layerBlobDigest,
    layerBlobContentLength: String(layerBlobData.length),
    emptyLayerManifestContent,
    emptyLayerManifestDigest: sha256Digest(emptyLayerManifestContent),
    nonexistentManifest: '.INVALID_MANIFEST_NAME',
    invalidManifestContent: Buffer.from('blablabla'),
    testBlobA,
    testBlobALength: String(testBlobA.length),
    testBlobADigest: sha256Digest(testBlobA),
    testBlobB: new ChunkedBlob(42),
    emptyJSONBlob,
    emptyJSONDescriptor,
    testRefBlobA,
    testRefBlobALength: String(testRefBlobA.length),
    testRefBlobADigest: sha256Digest(testRefBlobA),
    testRefBlobB,
    testRefBlobBLength: String(testRefBlobB.length),
    testRefBlobBDigest: sha256Digest(testRefBlobB),
    testRefArtifactTypeA,
    testRefArtifactTypeB,
    testRefArtifactTypeIndex,
    refsManifestAConfigArtifact,
    refsManifestBConfigArtifact,
    refsManifestALayerArtifact,
    refsManifestBLayerArtifact,
    refsManifestCLayerArtifact,
    refsIndexArtifact,
    testAnnotationKey,
    testAnnotationValues,
    dummyDigest: sha256Digest('hello world'),
  };
}
