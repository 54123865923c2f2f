// The whole on-disk layout, in one place. It is the layout of CNCF distribution (registry:2),
// so a data directory written by registry:2 is served as it is, and the other way round:
//
// <root>/docker/registry/v2/
//   blobs/<alg>/<first two hex>/<hex>/data              content of every blob and manifest, once
//   repositories/<name>/
//     _layers/<alg>/<hex>/link                          blob linked into the repository (holds the digest)
//     _manifests/revisions/<alg>/<hex>/link             manifest present in the repository
//     _manifests/revisions/<alg>/<hex>/mediatype        (ours) media type when the body names none
//     _manifests/tags/<tag>/current/link                digest the tag points at
//     _referrers/<alg>/<subject hex>/<alg>-<hex>.json   (ours) descriptor of a manifest whose subject it is
//     _uploads/<uuid>                                   (ours) bytes of an upload session so far, one file that
//                                                       becomes the blob's data: a push frees no inode (registry:2
//                                                       keeps _uploads/<uuid>/data; such sessions are purged, not resumed)
//   _state/catalog-generation                           (ours) bumped when a repository appears or goes
// <root>/.tmp/                                          temporaries of atomic writes (driver's own)
import { Digest } from "../reference";
import { ifExists, StorageDriver } from "./driver";

const ROOT = "/docker/registry/v2";
const REPOS = `${ROOT}/repositories`;

export const paths = {
  root: ROOT,
  blobsRoot: `${ROOT}/blobs`,
  reposRoot: REPOS,
  catalogGeneration: `${ROOT}/_state/catalog-generation`,

  blobData: (d: Digest) => `${ROOT}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}/data`,
  blobDir: (d: Digest) => `${ROOT}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`,

  repo: (name: string) => `${REPOS}/${name}`,
  layersRoot: (name: string) => `${REPOS}/${name}/_layers`,
  layerLink: (name: string, d: Digest) => `${REPOS}/${name}/_layers/${d.algorithm}/${d.hex}/link`,
  layerDir: (name: string, d: Digest) => `${REPOS}/${name}/_layers/${d.algorithm}/${d.hex}`,

  manifestsRoot: (name: string) => `${REPOS}/${name}/_manifests`,
  revisionsRoot: (name: string) => `${REPOS}/${name}/_manifests/revisions`,
  revisionDir: (name: string, d: Digest) => `${REPOS}/${name}/_manifests/revisions/${d.algorithm}/${d.hex}`,
  revisionLink: (name: string, d: Digest) => `${REPOS}/${name}/_manifests/revisions/${d.algorithm}/${d.hex}/link`,
  revisionMediaType: (name: string, d: Digest) => `${REPOS}/${name}/_manifests/revisions/${d.algorithm}/${d.hex}/mediatype`,

  tagsRoot: (name: string) => `${REPOS}/${name}/_manifests/tags`,
  tagDir: (name: string, tag: string) => `${REPOS}/${name}/_manifests/tags/${tag}`,
  tagLink: (name: string, tag: string) => `${REPOS}/${name}/_manifests/tags/${tag}/current/link`,

  referrersRoot: (name: string) => `${REPOS}/${name}/_referrers`,
  referrersOf: (name: string, subject: Digest) => `${REPOS}/${name}/_referrers/${subject.algorithm}/${subject.hex}`,
  referrerEntry: (name: string, subject: Digest, referrer: Digest) =>
    `${REPOS}/${name}/_referrers/${subject.algorithm}/${subject.hex}/${referrer.algorithm}-${referrer.hex}.json`,

  uploadsRoot: (name: string) => `${REPOS}/${name}/_uploads`,
  /** An upload session: our data file (registry:2's sessions are directories here). */
  uploadData: (name: string, id: string) => `${REPOS}/${name}/_uploads/${id}`,
  /** The data of a session registry:2 left (its last write time). */
  legacyUploadData: (name: string, id: string) => `${REPOS}/${name}/_uploads/${id}/data`,
};

/** The digests named by `<root>/<algorithm>/<hex>` directories (revisions, layer links); names that are not digests are skipped. */
export async function listDigestDirectories(driver: StorageDriver, root: string): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const alg of (await ifExists(driver.list(root))) ?? []) {
    for (const hex of (await ifExists(driver.list(`${root}/${alg}`))) ?? []) {
      const d = Digest.tryParse(`${alg}:${hex}`);
      if (d) out.push(d);
    }
  }
  return out;
}
