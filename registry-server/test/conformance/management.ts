// Port of conformance/04_management_test.go (distribution-spec v1.1.x): the Content
// Management workflow (deleting tags, manifests and blobs). Each spec's Go name is in the
// comment above it.
import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { MEDIA_TYPE_MANIFEST, TEST_TAG_NAME } from './fixtures';
import { responseErrors, unmarshalTagList } from './go-json';
import {
  CONTENT_MANAGEMENT,
  expectStatus,
  expectSuccess,
  specsOf,
  type ConformanceSuite,
} from './suite';

export function registerContentManagementWorkflow(suite: ConformanceSuite): void {
  if (!suite.enabled(CONTENT_MANAGEMENT)) return;
  const { fx, settings } = suite;
  const spec = specsOf('management');

  let tagToDelete = '';
  let numTags = 0;
  let blobDeleteAllowed = true;

  describe('Content Management', () => {
    describe('Setup', () => {
      // The Go setup specs run only if (RunOnlyIf) runContentManagementSetup, always true.
      if (!settings.runContentManagementSetup) return;

      // Go: "Populate registry with test config blob" (configs[3]) and "Populate registry with test layer"
      suite.setupUploadSpecs(spec, [3]);

      // Go: "Populate registry with test tag"
      spec(`setup PUTs manifest[3] under tag ${TEST_TAG_NAME} (2xx)`, async () => {
        tagToDelete = TEST_TAG_NAME;
        expectSuccess(await suite.putManifest(tagToDelete, fx.manifests[3].content, MEDIA_TYPE_MANIFEST));
      });

      // Go: "Check how many tags there are before anything gets deleted"
      spec('setup counts the tags: GET tags/list answers 200 with a tag list', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/tags/list');
        expectStatus(resp, 200);
        const { tags, error } = unmarshalTagList(resp.body);
        assert.equal(error, undefined, `tag list does not unmarshal: ${resp.describe()}`);
        numTags = tags.length;
      });
    });

    describe('Manifest delete', () => {
      // Go: "DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)"
      spec('DELETE of a manifest by tag answers 202, or 405, or 400 with code UNSUPPORTED', async () => {
        const resp = await suite.client.do('DELETE', '/v2/<name>/manifests/<reference>', { reference: tagToDelete });
        expectStatus(resp, 400, 202, 405);
        if (resp.status === 400) {
          const { errors, error } = responseErrors(resp.body);
          assert.equal(error, undefined, `error body does not parse: ${resp.describe()}`);
          assert.ok(errors.length > 0);
          assert.equal(errors[0].code, 'UNSUPPORTED', resp.describe());
        }
      });

      // Go: "DELETE request to manifest (digest) should yield 202 response unless already deleted"
      spec('DELETE of the manifest by digest answers 202 (or 404 if the tag delete took it)', async () => {
        const resp = await suite.client.do('DELETE', '/v2/<name>/manifests/<digest>', { digest: fx.manifests[3].digest });
        expectStatus(resp, 202, 404);
      });

      // Go: "GET request to deleted manifest URL should yield 404 response, unless delete is disallowed"
      spec('GET of the deleted manifest answers 404 (or 200 where delete is disallowed)', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/manifests/<digest>', { digest: fx.manifests[3].digest });
        expectStatus(resp, 404, 200);
      });

      // Go: "GET request to tags list should reflect manifest deletion"
      spec('GET tags/list answers 200 with fewer tags than before the deletes', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/tags/list');
        expectStatus(resp, 200);
        const { tags, error } = unmarshalTagList(resp.body);
        assert.equal(error, undefined, `tag list does not unmarshal: ${resp.describe()}`);
        assert.ok(tags.length < numTags, `${tags.length} tags now, ${numTags} before: ${resp.describe()}`);
      });
    });

    describe('Blob delete', () => {
      // Like the setup, the Go blob delete specs run only if runContentManagementSetup.
      if (!settings.runContentManagementSetup) return;

      // Go: "DELETE request to blob URL should yield 202 response"
      const deleteBlobs = async (): Promise<void> => {
        let resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.configs[3].digest });
        expectStatus(resp, 202, 404, 405);
        resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.layerBlobDigest });
        expectStatus(resp, 202, 404, 405);
        if (resp.status === 405) blobDeleteAllowed = false;
      };
      const deleteName = 'DELETE of the config and layer blobs answers 202, 404 or 405';

      // Go: "GET request to deleted blob URL should yield 404 response"
      const getDeletedConfig = async (): Promise<void> => {
        const resp = await suite.client.do('GET', '/v2/<name>/blobs/<digest>', { digest: fx.configs[3].digest });
        expectStatus(resp, 404);
      };

      // The GET spec runs only if (RunOnlyIf) the layer DELETE did not answer 405. Where the
      // runner knows before the run whether the registry deletes blobs (it started it), the GET
      // spec is registered only if it does, with that answer asserted as its precondition;
      // otherwise the two specs are one test that asserts the branch the DELETE answer took.
      if (settings.blobDeleteAllowed === undefined) {
        spec(`${deleteName}; unless the layer DELETE answered 405, GET of the deleted config blob answers 404`, async () => {
          await deleteBlobs();
          if (blobDeleteAllowed) await getDeletedConfig();
        });
      } else {
        spec(deleteName, deleteBlobs);
        if (settings.blobDeleteAllowed) {
          spec('GET of the deleted config blob answers 404', async () => {
            assert.ok(blobDeleteAllowed, 'precondition: the layer DELETE did not answer 405 (blob deletes are enabled)');
            await getDeletedConfig();
          });
        }
      }
    });

    describe('Teardown', () => {
      // No teardown required at this time for content management tests (as in the Go suite).
    });
  });
}
