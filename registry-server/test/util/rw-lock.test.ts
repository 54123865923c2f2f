// The maintenance lock: writers go before waiting readers; a long task's sections take turns.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { exclusiveInTurn, ReadWriteLock } from "../../src/util/rw-lock";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Four exclusive sections started at once, and a reader that arrives while the first runs: the order they ran in. */
async function race(exclusive: (work: () => Promise<void>) => Promise<void>, lock: ReadWriteLock): Promise<string[]> {
  const order: string[] = [];
  const sections = [0, 1, 2, 3].map((i) =>
    exclusive(async () => {
      order.push(`w${i}`);
      await tick();
      await tick();
    }),
  );
  await tick();
  const reader = lock.shared(async () => {
    order.push("r");
  });
  await Promise.all([...sections, reader]);
  return order;
}

describe("maintenance lock", () => {
  it("writers already waiting go before a reader that arrives after them", async () => {
    const lock = new ReadWriteLock();
    assert.deepEqual(await race((work) => lock.exclusive(work), lock), ["w0", "w1", "w2", "w3", "r"]);
  });

  it("sections taken in turn let a reader in between two of them", async () => {
    const lock = new ReadWriteLock();
    assert.deepEqual(await race(exclusiveInTurn(lock), lock), ["w0", "r", "w1", "w2", "w3"]);
  });

  it("a section that fails does not stop the next one", async () => {
    const lock = new ReadWriteLock();
    const inTurn = exclusiveInTurn(lock);
    const failing = inTurn(async () => {
      throw new Error("no");
    });
    const next = inTurn(async () => "ran");
    await assert.rejects(failing, /no/);
    assert.equal(await next, "ran");
  });
});
