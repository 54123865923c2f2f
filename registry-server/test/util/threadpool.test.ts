// The thread pool size the server starts with.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { threadPoolSize } from "../../src/threadpool";

describe("thread pool size", () => {
  it("is one thread more than the cores, three at least and five at most", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 16].map((cores) => threadPoolSize({}, cores)),
      ["3", "3", "4", "5", "5"],
    );
  });

  it("leaves an UV_THREADPOOL_SIZE the operator set alone", () => {
    assert.equal(threadPoolSize({ UV_THREADPOOL_SIZE: "16" }, 2), "16");
  });
});
