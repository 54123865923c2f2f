// The byte-scheduled young-generation collection of the upload path.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getHeapSpaceStatistics } from "node:v8";
import { uploadReceived, YOUNG_GC_BYTES } from "../../src/util/young-gc";

function youngUsed(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_used_size ?? 0;
}

describe("young generation collection on upload bytes", () => {
  it("collects once YOUNG_GC_BYTES have been received, not before", () => {
    // The first call sets the collector up; start counting from a collection.
    uploadReceived(YOUNG_GC_BYTES);
    let garbage: object[] | undefined = Array.from({ length: 5000 }, (_, i) => ({ i, s: `garbage ${i}` }));
    garbage = undefined;
    void garbage;
    const before = youngUsed();
    assert.ok(before > 100_000, `young generation holds ${before} bytes of garbage`);
    uploadReceived(YOUNG_GC_BYTES - 1);
    assert.ok(youngUsed() >= before, "nothing collected below the threshold");
    uploadReceived(1);
    assert.ok(youngUsed() < before / 2, `after the threshold the young generation holds ${youngUsed()} bytes (was ${before})`);
  });
});
