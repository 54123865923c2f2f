// /v2/<name>/referrers/<digest>?artifactType=: always 200 with an OCI index, empty when none.
// Large answers are paginated (distribution-spec "Listing Referrers": a Link header to the next
// page); `n` and `last` work as in the tags list, with pages of at most MAX_PAGE descriptors.
import { Digest } from "../reference";
import { MediaTypes } from "../registry/manifest";
import { upperBound } from "../registry/catalog";
import { Handler, nextLink, pagination, repoName, sendJson } from "./context";

const MAX_PAGE = 1000;

export const listReferrers: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const subject = Digest.parse(ctx.params.digest ?? "");
  const artifactType = ctx.query.get("artifactType");
  const { n, last } = pagination(ctx.query);
  let manifests = await ctx.registry.referrers.list(repo, subject);
  const headers: Record<string, string> = {};
  if (artifactType) {
    manifests = manifests.filter((d) => d.artifactType === artifactType);
    headers["OCI-Filters-Applied"] = "artifactType";
  }
  const size = Math.min(n ?? MAX_PAGE, MAX_PAGE);
  const start = last === undefined ? 0 : upperBound(manifests.map((d) => d.digest), last);
  const page = manifests.slice(start, start + size);
  if (size > 0 && start + size < manifests.length) {
    const query: Record<string, string> = { n: String(size), last: page[page.length - 1].digest };
    if (artifactType) query.artifactType = artifactType;
    headers.Link = nextLink(`/v2/${repo}/referrers/${subject.toString()}`, query);
  }
  sendJson(ctx.res, 200, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: page }, headers, MediaTypes.ociIndex);
};
