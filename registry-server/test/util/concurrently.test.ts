// forEachConcurrently: the walks of the store run their lookups through it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { forEachConcurrently, mapConcurrently } from "../../src/util/concurrently";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("forEachConcurrently", () => {
  it("calls every item once, starting them in order, with never more than the limit in flight", async () => {
    const started: number[] = [];
    let inFlight = 0;
    let most = 0;
    await forEachConcurrently(Array.from({ length: 50 }, (_, i) => i), 4, async (i) => {
      started.push(i);
      most = Math.max(most, ++inFlight);
      for (let k = 0; k < (i % 3) + 1; k++) await tick();
      inFlight--;
    });
    assert.deepEqual(started, Array.from({ length: 50 }, (_, i) => i));
    assert.equal(most, 4);
    assert.equal(inFlight, 0);
  });

  it("with no items, resolves without a call; with a limit below one, runs one at a time", async () => {
    let calls = 0;
    await forEachConcurrently([], 8, async () => {
      calls++;
    });
    assert.equal(calls, 0);
    let inFlight = 0;
    let most = 0;
    await forEachConcurrently([1, 2, 3], 0, async () => {
      most = Math.max(most, ++inFlight);
      await tick();
      inFlight--;
    });
    assert.equal(most, 1);
  });

  it("mapConcurrently answers in the items' order whatever order the calls finish in", async () => {
    const items = Array.from({ length: 30 }, (_, i) => i);
    const results = await mapConcurrently(items, 5, async (i) => {
      for (let k = 0; k < 30 - i; k++) await tick();
      return i * 2;
    });
    assert.deepEqual(results, items.map((i) => i * 2));
  });

  it("after a failure starts nothing more, waits for the calls in flight and rejects with the first error", async () => {
    const started: number[] = [];
    const finished: number[] = [];
    await assert.rejects(
      forEachConcurrently(Array.from({ length: 20 }, (_, i) => i), 3, async (i) => {
        started.push(i);
        await tick();
        if (i === 4) throw new Error("first");
        if (i === 5) throw new Error("second");
        await tick();
        finished.push(i);
      }),
      /^Error: first$/,
    );
    assert.ok(started.length < 20, `started ${started.length} of 20`);
    assert.deepEqual(finished.sort((a, b) => a - b), started.filter((i) => i !== 4 && i !== 5).sort((a, b) => a - b), "every call started has finished");
  });
});
