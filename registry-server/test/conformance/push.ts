// Port of conformance/02_push_test.go (distribution-spec v1.1.x): the Push workflow.
// Each spec's Go name is in the comment above it.
import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { EMPTY_LAYER_TEST_TAG, MEDIA_TYPE_MANIFEST } from './fixtures';
import type { RegistryResponse } from './registry-client';
import {
  PUSH,
  expectHeaderNotEmpty,
  expectStatus,
  expectSuccess,
  required,
  specsOf,
  warn,
  type ConformanceSuite,
} from './suite';

export function registerPushWorkflow(suite: ConformanceSuite): void {
  if (!suite.enabled(PUSH)) return;
  const { fx, settings } = suite;
  const spec = specsOf('push');
  const octetStream = { 'Content-Type': 'application/octet-stream' };
  const chunk = fx.testBlobB;

  // As in the Go suite, one lastResponse is shared by all the push specs: each spec sets it
  // only once its assertions passed, and a later spec works from whatever it holds.
  let lastResponse: RegistryResponse | undefined;
  let prevResponse: RegistryResponse | undefined;
  let emptyLayerManifestRef = '';

  const patchChunk = (location: string, body: Buffer, length: string, range: string): Promise<RegistryResponse> =>
    suite.client.doRaw('PATCH', location, {
      headers: { ...octetStream, 'Content-Length': length, 'Content-Range': range },
      body,
    });

  describe('Push', () => {
    describe('Setup', () => {
      // No setup required at this time for push tests (as in the Go suite).
    });

    describe('Blob Upload Streamed', () => {
      // Go: "PATCH request with blob in body should yield 202 response"
      spec('PATCH of a whole blob without Content-Range to a new session answers 202', async () => {
        const post = await suite.client.do('POST', '/v2/<name>/blobs/uploads/');
        expectHeaderNotEmpty(post, 'Location');
        const resp = await suite.client.do('PATCH', post.relativeLocation(), { headers: octetStream, body: fx.testBlobA });
        expectStatus(resp, 202);
        lastResponse = resp;
      });

      // Go: "PUT request to session URL with digest should yield 201 response"
      spec('PUT ?digest= without a body closes the streamed session with 201 and a Location', async () => {
        const last = required(lastResponse, 'lastResponse');
        const resp = await suite.client.do('PUT', last.relativeLocation(), {
          query: { digest: fx.testBlobADigest },
          headers: { ...octetStream, 'Content-Length': fx.testBlobALength },
        });
        expectStatus(resp, 201);
        expectHeaderNotEmpty(resp, 'Location');
      });
    });

    describe('Blob Upload Monolithic', () => {
      // Go: "GET nonexistent blob should result in 404 response"
      spec('GET on a nonexistent blob answers 404', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/blobs/<digest>', { digest: fx.dummyDigest });
        expectStatus(resp, 404);
      });

      // Go: "POST request with digest and blob should yield a 201 or 202"
      spec('POST ?digest= with the blob as body answers 201 or 202, with a Location', async () => {
        const resp = await suite.client.do('POST', '/v2/<name>/blobs/uploads/', {
          query: { digest: fx.configs[1].digest },
          headers: { ...octetStream, 'Content-Length': fx.configs[1].contentLength },
          body: fx.configs[1].content,
        });
        expectHeaderNotEmpty(resp, 'Location');
        expectStatus(resp, 201, 202);
        lastResponse = resp;
      });

      // Go: "GET request to blob URL from prior request should yield 200 or 404 based on response code"
      spec('GET of that blob answers 200 after a 201, 404 after a 202', async () => {
        const last = required(lastResponse, 'lastResponse');
        const resp = await suite.client.do('GET', '/v2/<name>/blobs/<digest>', { digest: fx.configs[1].digest });
        expectStatus(resp, last.status === 202 ? 404 : 200);
      });

      // Go: "POST request should yield a session ID"
      spec('POST without a digest opens a session: 202', async () => {
        const resp = await suite.client.do('POST', '/v2/<name>/blobs/uploads/');
        expectStatus(resp, 202);
        lastResponse = resp;
      });

      // Go: "PUT upload of a blob should yield a 201 Response"
      spec('PUT ?digest= with the whole blob to the session answers 201 with a Location', async () => {
        const last = required(lastResponse, 'lastResponse');
        const resp = await suite.client.do('PUT', last.relativeLocation(), {
          query: { digest: fx.configs[1].digest },
          headers: { ...octetStream, 'Content-Length': fx.configs[1].contentLength },
          body: fx.configs[1].content,
        });
        expectHeaderNotEmpty(resp, 'Location');
        expectStatus(resp, 201);
      });

      // Go: "GET request to existing blob should yield 200 response"
      spec('GET of the uploaded config blob answers 200', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/blobs/<digest>', { digest: fx.configs[1].digest });
        expectStatus(resp, 200);
      });

      // Go: "PUT upload of a layer blob should yield a 201 Response"
      spec('POST then PUT ?digest= of the layer answers 201 with a Location', async () => {
        const post = await suite.client.do('POST', '/v2/<name>/blobs/uploads/');
        const resp = await suite.client.do('PUT', post.relativeLocation(), {
          query: { digest: fx.layerBlobDigest },
          headers: { ...octetStream, 'Content-Length': fx.layerBlobContentLength },
          body: fx.layerBlobData,
        });
        expectHeaderNotEmpty(resp, 'Location');
        expectStatus(resp, 201);
      });

      // Go: "GET request to existing layer should yield 200 response"
      spec('GET of the uploaded layer answers 200', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/blobs/<digest>', { digest: fx.layerBlobDigest });
        expectStatus(resp, 200);
      });
    });

    describe('Blob Upload Chunked', () => {
      // Go: "Out-of-order blob upload should return 416"
      spec('PATCH of the second chunk first (out-of-order Content-Range) answers 416', async () => {
        const post = await suite.client.do('POST', '/v2/<name>/blobs/uploads/', { headers: { 'Content-Length': '0' } });
        expectHeaderNotEmpty(post, 'Location');
        // Rebuild the chunked blob if the registry's minimum chunk is above our chunk size.
        const minSizeStr = post.header('OCI-Chunk-Min-Length');
        if (minSizeStr !== '') {
          assert.match(minSizeStr, /^[+-]?\d+$/, `OCI-Chunk-Min-Length is not an integer: ${minSizeStr}`);
          const minSize = Number.parseInt(minSizeStr, 10);
          if (minSize > chunk.chunk1.length) chunk.setup(minSize * 2 - 2);
        }
        const resp = await patchChunk(post.relativeLocation(), chunk.chunk2, chunk.chunk2Length, chunk.chunk2Range);
        expectStatus(resp, 416);
      });

      // Go: "PATCH request with first chunk should return 202"
      spec('PATCH of the first chunk answers 202 with Range 0-<last byte>', async () => {
        const post = await suite.client.do('POST', '/v2/<name>/blobs/uploads/', { headers: { 'Content-Length': '0' } });
        expectHeaderNotEmpty(post, 'Location');
        prevResponse = post;
        const resp = await patchChunk(post.relativeLocation(), chunk.chunk1, chunk.chunk1Length, chunk.chunk1Range);
        expectStatus(resp, 202);
        assert.equal(resp.header('Range'), chunk.chunk1Range, `Range of ${resp.describe()}`);
        lastResponse = resp;
      });

      // Go: "Retry previous blob chunk should return 416"
      spec('PATCH of the first chunk again, at the POST\'s Location, answers 416', async () => {
        const prev = required(prevResponse, 'prevResponse');
        const resp = await patchChunk(prev.relativeLocation(), chunk.chunk1, chunk.chunk1Length, chunk.chunk1Range);
        expectStatus(resp, 416);
      });

      // Go: "Get on stale blob upload should return 204 with a range and location"
      spec('GET of the upload at the POST\'s Location answers 204 with a Location and Range 0-<last byte>', async () => {
        const prev = required(prevResponse, 'prevResponse');
        const resp = await suite.client.do('GET', prev.relativeLocation());
        expectStatus(resp, 204);
        expectHeaderNotEmpty(resp, 'Location');
        assert.equal(resp.header('Range'), chunk.chunk1Range, `Range of ${resp.describe()}`);
        lastResponse = resp;
      });

      // Go: "PATCH request with second chunk should return 202"
      spec('PATCH of the second chunk at that Location answers 202 with a Location', async () => {
        const last = required(lastResponse, 'lastResponse');
        const resp = await patchChunk(last.relativeLocation(), chunk.chunk2, chunk.chunk2Length, chunk.chunk2Range);
        expectStatus(resp, 202);
        expectHeaderNotEmpty(resp, 'Location');
        lastResponse = resp;
      });

      // Go: "PUT request with digest should return 201"
      spec('PUT ?digest= with an empty body completes the chunked upload: 201 with a Location', async () => {
        const last = required(lastResponse, 'lastResponse');
        const resp = await suite.client.do('PUT', last.relativeLocation(), {
          query: { digest: chunk.digest },
          headers: { ...octetStream, 'Content-Length': '0' },
        });
        expectStatus(resp, 201);
        expectHeaderNotEmpty(resp, 'Location');
      });
    });

    describe('Cross-Repository Blob Mount', () => {
      const crossmount = settings.crossmountNamespace;

      // Go: "Cross-mounting of a blob without the from argument should yield session id"
      spec('POST ?mount=<unknown digest> without from answers 202 with a Location', async () => {
        const resp = await suite.client.do('POST', '/v2/<name>/blobs/uploads/', {
          name: crossmount,
          query: { mount: fx.dummyDigest },
        });
        expectStatus(resp, 202);
        assert.notEqual(resp.absoluteLocation(), '', `expected a Location: ${resp.describe()}`);
      });

      // Go: "POST request to mount another repository's blob should return 201 or 202"
      spec('POST ?mount=<digest>&from=<repository holding it> answers 201 or 202', async () => {
        const resp = await suite.client.do('POST', '/v2/<name>/blobs/uploads/', {
          name: crossmount,
          query: { mount: fx.testBlobADigest, from: suite.client.defaultName },
        });
        expectStatus(resp, 201, 202);
        lastResponse = resp;
      });

      // Go: "GET request to test digest within cross-mount namespace should return 200", which
      // runs only if (RunOnlyIf) the mount above answered 201, and "Cross-mounting of
      // nonexistent blob should yield session id", which runs only if it answered 202: one
      // test that makes the assertions of the branch the answer took. The mount spec sets
      // lastResponse only once it answered 201 or 202, so any other status here is the answer
      // of an earlier spec, left there because the mount spec failed.
      const mountBranches =
        'after the mount with from, a 201 Location is the blob and GET on it answers 200, a 202 Location is an upload session of the target';
      spec(mountBranches, async () => {
        const last = required(lastResponse, 'lastResponse');
        expectStatus(last, 201, 202);
        if (last.status === 201) {
          assert.equal(last.relativeLocation(), `/v2/${crossmount}/blobs/${fx.testBlobADigest}`);
          const resp = await suite.client.do('GET', last.relativeLocation());
          expectStatus(resp, 200);
        } else {
          const prefix = `/v2/${crossmount}/blobs/uploads/`;
          assert.ok(last.relativeLocation().startsWith(prefix), `${last.relativeLocation()} does not start with ${prefix}`);
        }
      });

      // Go: "Cross-mounting without from, and automatic content discovery enabled should return a 201"
      // Go: "Cross-mounting without from, and automatic content discovery disabled should return a 202"
      // Each runs only if (RunOnlyIf) OCI_AUTOMATIC_CROSSMOUNT is set, the mount with from
      // answered 201, and OCI_AUTOMATIC_CROSSMOUNT is true, respectively false. The switch is
      // known before the run, so only the spec of this mode is registered; the 201 is asserted
      // as the spec's precondition (the Go suite would skip the spec on a 202).
      if (settings.runAutomaticCrossmountTest) {
        const enabled = settings.automaticCrossmountEnabled;
        const [mode, want] = enabled ? (['with', 201] as const) : (['without', 202] as const);
        spec(`${mode} automatic cross-mount: after a 201 mount, POST ?mount=<digest> without from answers ${want}`, async () => {
          const last = required(lastResponse, 'lastResponse');
          assert.equal(last.status, 201, `precondition: the mount with from answered 201; got: ${last.describe()}`);
          const resp = await suite.client.do('POST', '/v2/<name>/blobs/uploads/', {
            name: crossmount,
            query: { mount: fx.testBlobADigest },
          });
          expectStatus(resp, want);
        });
      }
    });

    describe('Manifest Upload', () => {
      // Go: "GET nonexistent manifest should return 404"
      spec('GET on a nonexistent manifest answers 404', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<reference>', {
          reference: fx.nonexistentManifest,
        });
        expectStatus(resp, 404);
      });

      // Go: "PUT should accept a manifest upload"
      spec('PUT of manifest[1] under tags test0..test3 answers 201 with a Location each time', async () => {
        for (let i = 0; i < 4; i++) {
          const resp = await suite.putManifest(`test${i}`, fx.manifests[1].content, MEDIA_TYPE_MANIFEST);
          expectHeaderNotEmpty(resp, 'Location');
          expectStatus(resp, 201);
        }
      });

      // Go: "Registry should accept a manifest upload with no layers"
      const noLayerSpec =
        `PUT of a manifest with no layers under tag ${EMPTY_LAYER_TEST_TAG}: 201 with a Location (else a warning)`;
      spec(noLayerSpec, async (t) => {
        const resp = await suite.putManifest(EMPTY_LAYER_TEST_TAG, fx.emptyLayerManifestContent, MEDIA_TYPE_MANIFEST);
        if (resp.status === 201) {
          emptyLayerManifestRef = resp.header('Location');
          expectHeaderNotEmpty(resp, 'Location');
        } else {
          warn(t, `image manifest with no layers is not supported (${resp.describe()})`);
        }
      });

      // Go: "GET request to manifest URL (digest) should yield 200 response"
      spec('GET on manifest[1] by digest answers 200', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<digest>', {
          digest: fx.manifests[1].digest,
          headers: { Accept: MEDIA_TYPE_MANIFEST },
        });
        expectStatus(resp, 200);
      });
    });

    describe('Teardown', () => {
      // The Go teardown specs run only if (RunOnlyIf) runPushSetup, which is always true.
      if (!settings.runPushSetup) return;

      const deleteManifests = (): void => {
        // Go: "Delete manifest created in tests"
        spec('teardown DELETEs manifest[1] and the no-layer manifest by digest (2xx or 405)', async () => {
          let resp = await suite.client.do('DELETE', '/v2/<name>/manifests/<digest>', { digest: fx.manifests[1].digest });
          expectSuccess(resp, 405);
          if (emptyLayerManifestRef !== '') {
            resp = await suite.client.do('DELETE', '/v2/<name>/manifests/<reference>', {
              reference: fx.emptyLayerManifestDigest,
            });
            expectSuccess(resp, 405);
          }
        });
      };

      if (settings.deleteManifestBeforeBlobs) deleteManifests();

      // Go: "Delete config blob created in tests"
      spec('teardown DELETEs config[1] blob (2xx, 404 or 405)', async () => {
        const resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.configs[1].digest });
        expectSuccess(resp, 404, 405);
      });

      // Go: "Delete layer blob created in setup"
      spec('teardown DELETEs the layer blob (2xx, 404 or 405)', async () => {
        const resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.layerBlobDigest });
        expectSuccess(resp, 404, 405);
      });

      if (!settings.deleteManifestBeforeBlobs) deleteManifests();
    });
  });
}
