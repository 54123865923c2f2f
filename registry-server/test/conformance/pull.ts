// Port of conformance/01_pull_test.go (distribution-spec v1.1.x): the Pull workflow.
// Each spec's Go name is in the comment above it.
import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { MEDIA_TYPE_MANIFEST, TEST_TAG_NAME } from './fixtures';
import { responseErrors } from './go-json';
import {
  PULL,
  expectHeaderIfPresent,
  expectStatus,
  expectSuccess,
  specsOf,
  type ConformanceSuite,
} from './suite';

// setup.go's errorCodes is a slice indexed by constants that start at 5 (they continue the
// const block's iota), so its first five entries are "": an error whose code is empty or
// missing is "contained" in it. We keep that, since we port what the suite accepts.
export const KNOWN_ERROR_CODES = [
  '', '', '', '', '',
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_UNVERIFIED',
  'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'TAG_INVALID', 'UNAUTHORIZED', 'DENIED',
  'UNSUPPORTED',
];

export function registerPullWorkflow(suite: ConformanceSuite): void {
  if (!suite.enabled(PULL)) return;
  const { fx, settings } = suite;
  const spec = specsOf('pull');
  const accept = { Accept: MEDIA_TYPE_MANIFEST };
  let tag = '';

  describe('Pull', () => {
    describe('Setup', () => {
      // The Go specs below run only if (RunOnlyIf) the pull setup runs, that is unless
      // OCI_TAG_NAME, OCI_MANIFEST_DIGEST and OCI_BLOB_DIGEST name content pushed beforehand;
      // that is known before the run, so only the specs that apply are registered.
      if (settings.runPullSetup) {
        // Go: "Populate registry with test blob" (configs[0], then configs[1]) and "Populate
        // registry with test layer"
        suite.setupUploadSpecs(spec, [0, 1]);

        // Go: "Populate registry with test manifest" (by tag)
        spec(`setup PUTs manifest[0] under tag ${TEST_TAG_NAME} (2xx)`, async () => {
          tag = TEST_TAG_NAME;
          expectSuccess(await suite.putManifest(tag, fx.manifests[0].content, MEDIA_TYPE_MANIFEST));
        });

        // Go: "Populate registry with test manifest" (by digest)
        spec('setup PUTs manifest[1] by digest (2xx)', async () => {
          expectSuccess(await suite.putManifest(fx.manifests[1].digest, fx.manifests[1].content, MEDIA_TYPE_MANIFEST));
        });
      } else {
        // Go: "Get tag name from environment"
        spec('setup takes the tag name from OCI_TAG_NAME when the registry was populated beforehand', () => {
          if (settings.tagName !== '') tag = settings.tagName;
        });
      }
    });

    describe('Pull blobs', () => {
      // Go: "HEAD request to nonexistent blob should result in 404 response"
      spec('HEAD on a nonexistent blob answers 404', async () => {
        const resp = await suite.client.do('HEAD', '/v2/<name>/blobs/<digest>', { digest: fx.dummyDigest });
        expectStatus(resp, 404);
      });

      // Go: "HEAD request to existing blob should yield 200"
      spec('HEAD on an existing blob answers 200 (and its Docker-Content-Digest, if any, is the digest)', async () => {
        const resp = await suite.client.do('HEAD', '/v2/<name>/blobs/<digest>', { digest: fx.configs[0].digest });
        expectStatus(resp, 200);
        expectHeaderIfPresent(resp, 'Docker-Content-Digest', fx.configs[0].digest);
      });

      // Go: "GET nonexistent blob should result in 404 response"
      spec('GET on a nonexistent blob answers 404', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/blobs/<digest>', { digest: fx.dummyDigest });
        expectStatus(resp, 404);
      });

      // Go: "GET request to existing blob URL should yield 200"
      spec('GET on an existing blob answers 200', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/blobs/<digest>', { digest: fx.configs[0].digest });
        expectStatus(resp, 200);
      });
    });

    describe('Pull manifests', () => {
      // Go: "HEAD request to nonexistent manifest should return 404"
      spec(`HEAD on a nonexistent manifest (${fx.nonexistentManifest}) answers 404`, async () => {
        const resp = await suite.client.do('HEAD', '/v2/<name>/manifests/<reference>', {
          reference: fx.nonexistentManifest,
        });
        expectStatus(resp, 404);
      });

      // Go: "HEAD request to manifest[0] path (digest) should yield 200 response"
      spec('HEAD on manifest[0] by digest answers 200 (Docker-Content-Digest, if any, matches)', async () => {
        const resp = await suite.client.do('HEAD', '/v2/<name>/manifests/<digest>', {
          digest: fx.manifests[0].digest,
          headers: accept,
        });
        expectStatus(resp, 200);
        expectHeaderIfPresent(resp, 'Docker-Content-Digest', fx.manifests[0].digest);
      });

      // Go: "HEAD request to manifest[1] path (digest) should yield 200 response"
      spec('HEAD on manifest[1] by digest answers 200 (Docker-Content-Digest, if any, matches)', async () => {
        const resp = await suite.client.do('HEAD', '/v2/<name>/manifests/<digest>', {
          digest: fx.manifests[1].digest,
          headers: accept,
        });
        expectStatus(resp, 200);
        expectHeaderIfPresent(resp, 'Docker-Content-Digest', fx.manifests[1].digest);
      });

      // Go: "HEAD request to manifest path (tag) should yield 200 response"
      spec('HEAD on a manifest by tag answers 200 (Docker-Content-Digest, if any, is manifest[0]\'s)', async () => {
        assert.notEqual(tag, '', 'no tag: the setup did not tag a manifest');
        const resp = await suite.client.do('HEAD', '/v2/<name>/manifests/<reference>', {
          reference: tag,
          headers: accept,
        });
        expectStatus(resp, 200);
        expectHeaderIfPresent(resp, 'Docker-Content-Digest', fx.manifests[0].digest);
      });

      // Go: "GET nonexistent manifest should return 404"
      spec('GET on a nonexistent manifest answers 404', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<reference>', {
          reference: fx.nonexistentManifest,
        });
        expectStatus(resp, 404);
      });

      // Go: "GET request to manifest[0] path (digest) should yield 200 response"
      spec('GET on manifest[0] by digest answers 200', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<digest>', {
          digest: fx.manifests[0].digest,
          headers: accept,
        });
        expectStatus(resp, 200);
      });

      // Go: "GET request to manifest[1] path (digest) should yield 200 response"
      spec('GET on manifest[1] by digest answers 200', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<digest>', {
          digest: fx.manifests[1].digest,
          headers: accept,
        });
        expectStatus(resp, 200);
      });

      // Go: "GET request to manifest path (tag) should yield 200 response"
      spec('GET on a manifest by tag answers 200', async () => {
        assert.notEqual(tag, '', 'no tag: the setup did not tag a manifest');
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<reference>', {
          reference: tag,
          headers: accept,
        });
        expectStatus(resp, 200);
      });
    });

    describe('Error codes', () => {
      // Go: "400 response body should contain OCI-conforming JSON message"
      // The Go spec builds a GET with a Content-Type and a body; resty does not send a body
      // on GET, so the request is a bare GET of manifests/sha256:totallywrong.
      spec('GET of manifest sha256:totallywrong answers 400 or 404, and a 400 carries an OCI error code', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<reference>', {
          reference: 'sha256:totallywrong',
          headers: { 'Content-Type': MEDIA_TYPE_MANIFEST },
          body: fx.invalidManifestContent,
        });
        expectStatus(resp, 400, 404);
        if (resp.status === 400) {
          const { errors, error } = responseErrors(resp.body);
          assert.equal(error, undefined, `error body does not parse: ${resp.describe()}`);
          assert.ok(errors.length > 0);
          assert.ok(
            KNOWN_ERROR_CODES.includes(errors[0].code),
            `unknown error code ${JSON.stringify(errors[0].code)}: ${resp.describe()}`,
          );
        }
      });
    });

    describe('Teardown', () => {
      // Like the setup, the Go teardown specs run only if the pull setup runs.
      if (!settings.runPullSetup) return;

      const deleteManifests = (): void => {
        for (const i of [0, 1]) {
          // Go: "Delete manifest[i] created in setup"
          spec(`teardown DELETEs manifest[${i}] by digest (2xx or 405)`, async () => {
            const resp = await suite.client.do('DELETE', '/v2/<name>/manifests/<digest>', {
              digest: fx.manifests[i].digest,
            });
            expectSuccess(resp, 405);
          });
        }
      };

      if (settings.deleteManifestBeforeBlobs) deleteManifests();

      for (const i of [0, 1]) {
        // Go: "Delete config[i] blob created in setup"
        spec(`teardown DELETEs config[${i}] blob (2xx, 404 or 405)`, async () => {
          const resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.configs[i].digest });
          expectSuccess(resp, 404, 405);
        });
      }

      // Go: "Delete layer blob created in setup"
      spec('teardown DELETEs the layer blob (2xx, 404 or 405)', async () => {
        const resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.layerBlobDigest });
        expectSuccess(resp, 404, 405);
      });

      if (!settings.deleteManifestBeforeBlobs) deleteManifests();
    });
  });
}
