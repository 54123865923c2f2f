// /v2/<name>/referrers/<digest>?artifactType=: always 200 with an OCI index, empty when none.
import { Digest } from "../reference";
import { MediaTypes } from "../registry/manifest";
import { Handler, repoName, sendJson } from "./context";

export const listReferrers: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const subject = Digest.parse(ctx.params.digest ?? "");
  const artifactType = ctx.query.get("artifactType");
  let manifests = await ctx.registry.referrers.list(repo, subject);
  const headers: Record<string, string> = {};
  if (artifactType) {
    manifests = manifests.filter((d) => d.artifactType === artifactType);
    headers["OCI-Filters-Applied"] = "artifactType";
  }
  sendJson(ctx.res, 200, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }, headers, MediaTypes.ociIndex);
};
