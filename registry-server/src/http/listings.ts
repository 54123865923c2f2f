// Paginated listings: /v2/<name>/tags/list and /v2/_catalog.
import { RegistryError } from "../errors";
import { upperBound } from "../registry/catalog";
import { Handler, nextLink, pagination, repoName, sendJson } from "./context";

export const listTags: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const { n, last } = pagination(ctx.query);
  const all = await ctx.registry.tags.list(repo);
  // A repository emptied by deletes still answers (with no tags); one never pushed to is unknown.
  if (all === undefined && !(await ctx.registry.repositoryExists(repo))) {
    throw new RegistryError("NAME_UNKNOWN", undefined, { name: repo });
  }
  const tags = all ?? [];
  const start = last === undefined ? 0 : upperBound(tags, last);
  const end = n === undefined ? tags.length : Math.min(tags.length, start + n);
  const page = tags.slice(start, end);
  const headers: Record<string, string> = {};
  if (n !== undefined && n > 0 && end < tags.length) headers.Link = nextLink(`/v2/${repo}/tags/list`, { n: String(n), last: page[page.length - 1] });
  sendJson(ctx.res, 200, { name: repo, tags: page }, headers);
};

export const listCatalog: Handler = async (ctx) => {
  const { n, last } = pagination(ctx.query);
  const { repos, more } = await ctx.registry.catalog.page(n, last);
  const headers: Record<string, string> = {};
  if (n !== undefined && n > 0 && more) headers.Link = nextLink("/v2/_catalog", { n: String(n), last: repos[repos.length - 1] });
  sendJson(ctx.res, 200, { repositories: repos }, headers);
};
