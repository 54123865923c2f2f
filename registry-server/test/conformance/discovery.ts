// Port of conformance/03_discovery_test.go (distribution-spec v1.1.x): the Content Discovery
// workflow (tag listing and the referrers API). Each spec's Go name is in the comment above it.
import assert from 'node:assert/strict';
import { describe } from 'node:test';

import {
  ARTIFACT_TYPE_FILTER,
  MEDIA_TYPE_INDEX,
  MEDIA_TYPE_MANIFEST,
  TEST_TAG_NAME,
  type TestBlob,
} from './fixtures';
import { getTagList, unmarshalIndex, type DecodedDescriptor } from './go-json';
import type { RegistryResponse } from './registry-client';
import {
  CONTENT_DISCOVERY,
  expectStatus,
  expectSuccess,
  specsOf,
  warn,
  type ConformanceSuite,
} from './suite';

const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

export function registerContentDiscoveryWorkflow(suite: ConformanceSuite): void {
  if (!suite.enabled(CONTENT_DISCOVERY)) return;
  const { fx, settings } = suite;
  const spec = specsOf('discovery');

  let numTags = 4;
  let tagList: string[] = [];

  const getReferrers = (digest: string, query?: Record<string, string>): Promise<RegistryResponse> =>
    suite.client.do('GET', '/v2/<name>/referrers/<digest>', { digest, query });

  /** The referrers answer: 200, an OCI index Content-Type, a body that unmarshals. */
  const expectReferrersIndex = (resp: RegistryResponse): DecodedDescriptor[] => {
    expectStatus(resp, 200);
    assert.equal(resp.header('Content-Type'), MEDIA_TYPE_INDEX, `Content-Type of ${resp.describe()}`);
    const { index, error } = unmarshalIndex(resp.body);
    assert.equal(error, undefined, `referrers body does not unmarshal: ${resp.describe()}`);
    return index.manifests ?? [];
  };

  /** Each descriptor carries exactly one annotation, the one its manifest had. */
  const expectAnnotationsEchoed = (manifests: DecodedDescriptor[]): void => {
    for (const m of manifests) {
      const annotations = m.annotations ?? {};
      assert.equal(Object.keys(annotations).length, 1, `annotations of ${m.digest}: ${JSON.stringify(annotations)}`);
      const want = fx.testAnnotationValues.get(m.digest) ?? '';
      assert.equal(annotations[fx.testAnnotationKey], want, `annotation of ${m.digest}`);
    }
  };

  const putArtifact = async (artifact: TestBlob, mediaType: string, subject: string): Promise<void> => {
    const resp = await suite.putManifest(artifact.digest, artifact.content, mediaType);
    expectSuccess(resp);
    assert.equal(resp.header('OCI-Subject'), subject, `OCI-Subject of ${resp.describe()}`);
  };

  describe('Content Discovery', () => {
    describe('Setup', () => {
      // The Go setup specs run only if (RunOnlyIf) the discovery setup runs, that is unless
      // OCI_TAG_LIST names tags pushed beforehand, and the "(no push)" spec only if it does not;
      // that is known before the run, so only the specs that apply are registered.
      if (settings.runContentDiscoverySetup) {
        // Go: "Populate registry with test blob" (configs[2]) and "Populate registry with test layer"
        suite.setupUploadSpecs(spec, [2]);

        // Go: "Populate registry with test tags"
        spec('setup PUTs manifest[2] under tags test0..test3 (2xx) and reads the tag list', async () => {
          for (let i = 0; i < numTags; i++) {
            const tag = `test${i}`;
            tagList.push(tag);
            expectSuccess(await suite.putManifest(tag, fx.manifests[2].content, MEDIA_TYPE_MANIFEST));
          }
          const resp = await suite.client.do('GET', '/v2/<name>/tags/list');
          tagList = getTagList(resp.body);
        });

        // Go: "References setup"
        const referencesSetup =
          'setup pushes the referrers of manifest[4] (and one of unpushed manifest[3]); each PUT answers 2xx with OCI-Subject';
        spec(referencesSetup, async () => {
          assert.equal(fx.emptyJSONDescriptor.digest, EMPTY_JSON_DIGEST);
          const emptyJSONLength = String(fx.emptyJSONDescriptor.size);
          expectSuccess(await suite.postThenPutBlob(fx.emptyJSONBlob, fx.emptyJSONDescriptor.digest, emptyJSONLength));
          // The reference blob before the image manifest is pushed.
          expectSuccess(await suite.postThenPutBlob(fx.testRefBlobA, fx.testRefBlobADigest, fx.testRefBlobALength));
          await putArtifact(fx.refsManifestAConfigArtifact, MEDIA_TYPE_MANIFEST, fx.manifests[4].digest);
          await putArtifact(fx.refsManifestALayerArtifact, MEDIA_TYPE_MANIFEST, fx.manifests[4].digest);
          await putArtifact(fx.refsIndexArtifact, MEDIA_TYPE_INDEX, fx.manifests[4].digest);
          // The subject itself, after its first referrers.
          expectSuccess(await suite.postThenPutBlob(fx.configs[4].content, fx.configs[4].digest, fx.configs[4].contentLength));
          expectSuccess(await suite.postThenPutBlob(fx.layerBlobData, fx.layerBlobDigest, fx.layerBlobContentLength));
          expectSuccess(await suite.putManifest(TEST_TAG_NAME, fx.manifests[4].content, MEDIA_TYPE_MANIFEST));
          // The reference blob after the image manifest is pushed.
          expectSuccess(await suite.postThenPutBlob(fx.testRefBlobB, fx.testRefBlobBDigest, fx.testRefBlobBLength));
          await putArtifact(fx.refsManifestBConfigArtifact, MEDIA_TYPE_MANIFEST, fx.manifests[4].digest);
          await putArtifact(fx.refsManifestBLayerArtifact, MEDIA_TYPE_MANIFEST, fx.manifests[4].digest);
          // A referrer of a subject that was never pushed.
          await putArtifact(fx.refsManifestCLayerArtifact, MEDIA_TYPE_MANIFEST, fx.manifests[3].digest);
        });
      } else {
        // Go: "Populate registry with test tags (no push)"
        spec('setup takes the tag list from OCI_TAG_LIST when the registry was populated beforehand', () => {
          tagList = settings.tagList.split(',');
        });
      }
    });

    describe('Test content discovery endpoints (listing tags)', () => {
      // Go: "GET request to list tags should yield 200 response"
      spec('GET tags/list answers 200', async () => {
        const resp = await suite.client.do('GET', '/v2/<name>/tags/list');
        expectStatus(resp, 200);
        tagList = getTagList(resp.body);
        numTags = tagList.length;
      });

      // Go: "GET number of tags should be limitable by `n` query parameter"
      spec('GET tags/list?n=<half the tags> answers 200 with exactly that many tags', async () => {
        const numResults = Math.floor(numTags / 2);
        const resp = await suite.client.do('GET', '/v2/<name>/tags/list', { query: { n: String(numResults) } });
        expectStatus(resp, 200);
        tagList = getTagList(resp.body);
        assert.equal(tagList.length, numResults, `tags of ${resp.describe()}`);
      });

      // Go: "GET start of tag is set by `last` query parameter"
      // As in the Go spec, the length check is on the first page (tagList is not re-read from
      // the `last` request), and the contain-check is of its own last element.
      spec('GET tags/list?n=<half>&last=<last tag of the first page> answers 200', async () => {
        const numResults = Math.floor(numTags / 2);
        let resp = await suite.client.do('GET', '/v2/<name>/tags/list', { query: { n: String(numResults) } });
        tagList = getTagList(resp.body);
        // tagList[numResults-1] out of range is a panic in Go, so a failure here too.
        assert.ok(
          numResults - 1 >= 0 && numResults - 1 < tagList.length,
          `index ${numResults - 1} out of range of ${JSON.stringify(tagList)} (${resp.describe()})`,
        );
        const last = tagList[numResults - 1];
        resp = await suite.client.do('GET', '/v2/<name>/tags/list', { query: { n: String(numResults), last } });
        expectStatus(resp, 200);
        assert.ok(
          tagList.length <= numResults,
          `first page has ${tagList.length} tags, more than n=${numResults}: ${JSON.stringify(tagList)}`,
        );
        assert.ok(tagList.includes(last));
      });
    });

    describe('Test content discovery endpoints (listing references)', () => {
      // Go: "GET request to nonexistent blob should result in empty 200 response"
      spec('GET referrers of an unknown digest answers 200 with an empty OCI index', async () => {
        const manifests = expectReferrersIndex(await getReferrers(fx.dummyDigest));
        assert.equal(manifests.length, 0);
      });

      // Go: "GET request to existing blob should yield 200"
      spec('GET referrers of manifest[4] answers 200 with its 5 referrers and their annotations', async () => {
        const resp = await getReferrers(fx.manifests[4].digest);
        const manifests = expectReferrersIndex(resp);
        assert.equal(manifests.length, 5, `referrers of ${resp.describe()}`);
        assert.notEqual(manifests[0].digest, manifests[1].digest);
        expectAnnotationsEchoed(manifests);
      });

      // Go: "GET request to existing blob with filter should yield 200"
      const filterSpec =
        'GET referrers?artifactType= answers 200: 2 referrers with OCI-Filters-Applied: artifactType, else all 5 (warning)';
      spec(filterSpec, async (t) => {
        const resp = await getReferrers(fx.manifests[4].digest, { artifactType: fx.testRefArtifactTypeA });
        const manifests = expectReferrersIndex(resp);
        if (resp.header('OCI-Filters-Applied') !== '') {
          assert.equal(manifests.length, 2, `filtered referrers of ${resp.describe()}`);
          assert.equal(resp.header('OCI-Filters-Applied'), ARTIFACT_TYPE_FILTER);
          expectAnnotationsEchoed(manifests);
        } else {
          assert.equal(manifests.length, 5, `referrers of ${resp.describe()}`);
          expectAnnotationsEchoed(manifests);
          warn(t, 'filtering by artifact-type is not implemented');
        }
      });

      // Go: "GET request to missing manifest should yield 200"
      spec('GET referrers of never-pushed manifest[3] answers 200 with its one referrer', async () => {
        const resp = await getReferrers(fx.manifests[3].digest);
        const manifests = expectReferrersIndex(resp);
        assert.equal(manifests.length, 1, `referrers of ${resp.describe()}`);
        assert.equal(manifests[0].digest, fx.refsManifestCLayerArtifact.digest);
      });
    });

    describe('Teardown', () => {
      // Like the setup, the Go teardown specs run only if the discovery setup runs.
      if (!settings.runContentDiscoverySetup) return;

      const deleteManifestsAndTags = (): void => {
        // Go: "Delete created manifest & associated tags"
        spec(`teardown DELETEs the manifests (by digest) and tag ${TEST_TAG_NAME} (2xx, 404 or 405 each)`, async () => {
          const references = [
            fx.refsIndexArtifact.digest,
            fx.manifests[2].digest,
            fx.manifests[4].digest,
            fx.refsManifestAConfigArtifact.digest,
            fx.refsManifestALayerArtifact.digest,
            TEST_TAG_NAME,
            fx.refsManifestBConfigArtifact.digest,
            fx.refsManifestBLayerArtifact.digest,
            fx.refsManifestCLayerArtifact.digest,
          ];
          for (const ref of references) {
            const resp = await suite.client.do('DELETE', '/v2/<name>/manifests/<digest>', { digest: ref });
            expectSuccess(resp, 405, 404);
          }
        });
      };

      if (settings.deleteManifestBeforeBlobs) deleteManifestsAndTags();

      // Go: "Delete config blob created in tests"
      spec('teardown DELETEs config[2] blob (2xx or 405)', async () => {
        const resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.configs[2].digest });
        expectSuccess(resp, 405);
      });

      // Go: "Delete layer blob created in setup"
      spec('teardown DELETEs the layer blob (2xx or 405)', async () => {
        const resp = await suite.client.do('DELETE', '/v2/<name>/blobs/<digest>', { digest: fx.layerBlobDigest });
        expectSuccess(resp, 405);
      });

      if (!settings.deleteManifestBeforeBlobs) deleteManifestsAndTags();

      // Go: "References teardown"
      spec('teardown DELETEs the referrers, their subject and their blobs (2xx, 404 or 405 each)', async () => {
        const deleteReq = async (kind: 'manifests' | 'blobs', ref: string): Promise<void> => {
          const resp = await suite.client.do('DELETE', `/v2/<name>/${kind}/<digest>`, { digest: ref });
          expectSuccess(resp, 405, 404);
        };
        const deleteManifests = async (): Promise<void> => {
          await deleteReq('manifests', fx.refsIndexArtifact.digest);
          await deleteReq('manifests', fx.refsManifestAConfigArtifact.digest);
          await deleteReq('manifests', fx.refsManifestALayerArtifact.digest);
          await deleteReq('manifests', fx.manifests[4].digest);
          await deleteReq('manifests', fx.refsManifestBConfigArtifact.digest);
          await deleteReq('manifests', fx.refsManifestBLayerArtifact.digest);
        };
        if (settings.deleteManifestBeforeBlobs) await deleteManifests();
        await deleteReq('blobs', fx.configs[4].digest);
        await deleteReq('blobs', fx.testRefBlobADigest);
        await deleteReq('blobs', fx.testRefBlobBDigest);
        await deleteReq('blobs', fx.emptyJSONDescriptor.digest);
        if (!settings.deleteManifestBeforeBlobs) await deleteManifests();
      });
    });
  });
}
