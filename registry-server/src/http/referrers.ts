// /v2/<name>/referrers/<digest>?artifactType=: always 200 with an OCI index, empty when none.
// Large answers are paginated (distribution-spec "Listing Referrers": a Link header to the next
// page); `n` and `last` work as in the tags list, with pages of at most MAX_PAGE descriptors.
import { Digest } from "../reference";
import { MediaTypes } from "../registry/manifest";
import { Handler, nextLink, pagination, repoName, sendJson } from "./context";

const MAX_PAGE = 1000;

export const listReferrers: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const subject = Digest.parse(ctx.params.digest ?? "");
  const artifactType = ctx.query.get("artifactType");
  const { n, last } = pagination(ctx.query);
  const limit = Math.min(n ?? MAX_PAGE, MAX_PAGE);
  const { descriptors, more } = await ctx.registry.referrers.list(repo, subject, {
    after: last,
    limit,
    keep: artifactType ? (d) => d.artifactType === artifactType : undefined,
  });
  const headers: Record<string, string> = {};
  if (artifactType) headers["OCI-Filters-Applied"] = "artifactType";
  if (limit > 0 && more && descriptors.length > 0) {
    const query: Record<string, string> = { n: String(limit), last: descriptors[descriptors.length - 1].digest };
    if (artifactType) query.artifactType = artifactType;
    headers.Link = nextLink(`/v2/${repo}/referrers/${subject.toString()}`, query);
  }
  sendJson(ctx.res, 200, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: descriptors }, headers, MediaTypes.ociIndex);
};
