// The OCI distribution-spec conformance suite (tag v1.1.x, conformance/*.go in
// opencontainers/distribution-spec), ported spec for spec to node:test: the Pull, Push,
// Content Discovery and Content Management workflows, in that order, against one namespace,
// with the same setup data, the same requests and the same accepted answers.
//
// Cross-mount modes. The Go suite's OCI_AUTOMATIC_CROSSMOUNT switch decides what a mount
// without `from` must answer once the blob was mounted with `from`: 201 when set true,
// exactly 202 when set false (neither spec runs when it is unset). The server's
// REGISTRY_AUTOMATIC_CROSSMOUNT (default true) is the matching switch: false makes a mount
// without `from` answer 202 and never link. This file runs the whole suite once per mode,
// each against a fresh server: "automatic cross-mount" with the server's default
// configuration, and "no automatic cross-mount" with REGISTRY_AUTOMATIC_CROSSMOUNT=false.
// Set OCI_AUTOMATIC_CROSSMOUNT yourself to run only that one mode. The real Go suite is run
// the same way, twice, against `make start` (from the repository root, 127.0.0.1:5000):
//   make start                                   + the Go suite with OCI_AUTOMATIC_CROSSMOUNT=1
//   REGISTRY_AUTOMATIC_CROSSMOUNT=false make start + the Go suite with OCI_AUTOMATIC_CROSSMOUNT=0
// each time with OCI_ROOT_URL=http://127.0.0.1:5000, OCI_NAMESPACE, OCI_CROSSMOUNT_NAMESPACE
// and OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1.
//
// No spec is ever reported skipped (nor todo). Where a Go spec is skipped (SkipIfDisabled,
// RunOnlyIf) on a condition known before the run (a disabled workflow, OCI_TAG_NAME or
// OCI_TAG_LIST naming content pushed beforehand, the cross-mount mode, whether blob deletes
// are enabled on the server this file starts), it is not registered, as ginkgo shows it with
// OCI_HIDE_SKIPPED_WORKFLOWS. Where the condition is an earlier answer, the specs on either
// side are one test that asserts the branch the answer took (the mount with `from`, the blob
// DELETE of a registry of unknown configuration), or the answer is asserted as the spec's
// precondition (a mount without `from` follows a 201 mount with `from`, which the Go suite
// would skip on a 202).
//
// Target: by default a registry started in-process by ../helpers/server (storage deletes
// enabled). To run the suite against a registry you started yourself, e.g. Debian's CNCF
// distribution on 127.0.0.1:5999, set CONFORMANCE_TARGET_URL (and OCI_AUTOMATIC_CROSSMOUNT to
// the registry's mode):
//   CONFORMANCE_TARGET_URL=http://127.0.0.1:5999 node --test dist/test/conformance/
// The Go suite's other switches are honoured too: OCI_NAMESPACE, OCI_CROSSMOUNT_NAMESPACE,
// OCI_DELETE_MANIFEST_BEFORE_BLOBS (default true), OCI_TEST_PULL / _PUSH /
// _CONTENT_DISCOVERY / _CONTENT_MANAGEMENT (all four run unless one is set),
// OCI_TAG_NAME + OCI_MANIFEST_DIGEST + OCI_BLOB_DIGEST and OCI_TAG_LIST (for a registry
// populated beforehand), OCI_DEBUG (log each request to stderr). OCI_HIDE_SKIPPED_WORKFLOWS
// is always in effect, see above. Not ported: authentication (OCI_USERNAME, OCI_PASSWORD,
// OCI_AUTH_SCOPE) and the HTML/JUnit reports (OCI_REPORT_DIR).
import { after, before, describe } from 'node:test';

import { startServer } from '../helpers/server';
import { registerContentDiscoveryWorkflow } from './discovery';
import { registerContentManagementWorkflow } from './management';
import { registerPullWorkflow } from './pull';
import { registerPushWorkflow } from './push';
import { ConformanceSuite, parseBool, settingsFromEnv } from './suite';

interface CrossmountMode {
  title: string;
  automaticCrossmountEnabled: boolean;
  /** the REGISTRY_* variables of the in-process server in this mode */
  serverEnv: Record<string, string>;
}

const AUTOMATIC: CrossmountMode = {
  title: 'automatic cross-mount',
  automaticCrossmountEnabled: true,
  serverEnv: {},
};
const NO_AUTOMATIC: CrossmountMode = {
  title: 'no automatic cross-mount',
  automaticCrossmountEnabled: false,
  serverEnv: { REGISTRY_AUTOMATIC_CROSSMOUNT: 'false' },
};

/** The in-process server lets blobs be deleted, so the suite knows that before the run. */
const IN_PROCESS_DELETE_ENABLED = true;

function crossmountModes(env: NodeJS.ProcessEnv): CrossmountMode[] {
  if (env.OCI_AUTOMATIC_CROSSMOUNT === undefined) return [AUTOMATIC, NO_AUTOMATIC];
  return [parseBool(env.OCI_AUTOMATIC_CROSSMOUNT)[0] ? AUTOMATIC : NO_AUTOMATIC];
}

const target = process.env.CONFORMANCE_TARGET_URL;

for (const mode of crossmountModes(process.env)) {
  const suite = new ConformanceSuite(
    settingsFromEnv(process.env, {
      runAutomaticCrossmountTest: true,
      automaticCrossmountEnabled: mode.automaticCrossmountEnabled,
      blobDeleteAllowed: target ? undefined : IN_PROCESS_DELETE_ENABLED,
    }),
  );

  describe(`OCI distribution-spec v1.1 conformance (${mode.title})`, () => {
    let close: (() => Promise<void>) | undefined;

    before(async () => {
      if (target) {
        suite.connect(target);
        return;
      }
      const server = await startServer({ deleteEnabled: IN_PROCESS_DELETE_ENABLED, env: mode.serverEnv });
      close = () => server.close();
      suite.connect(server.url);
    });

    after(async () => {
      await close?.();
    });

    registerPullWorkflow(suite);
    registerPushWorkflow(suite);
    registerContentDiscoveryWorkflow(suite);
    registerContentManagementWorkflow(suite);
  });
}
