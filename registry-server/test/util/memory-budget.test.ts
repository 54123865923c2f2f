// The request memory budget: holders that never wait, and whole-body readers that wait in turn.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryBudget } from "../../src/util/memory-budget";

const tick = () => new Promise((r) => setImmediate(r));

describe("memory budget", () => {
  it("gives room while it fits and refuses past the limit, without waiting", () => {
    const budget = new MemoryBudget(100);
    assert.equal(budget.tryTake(60), true);
    assert.equal(budget.tryTake(41), false);
    assert.equal(budget.tryTake(40), true);
    assert.equal(budget.inUse, 100);
    budget.give(30);
    assert.equal(budget.inUse, 70);
    assert.equal(budget.tryTake(30), true);
  });

  it("wakes waiters in order once room is given back, and refuses holders while anyone waits", async () => {
    const budget = new MemoryBudget(100);
    assert.equal(budget.tryTake(90), true);
    const woken: string[] = [];
    const first = budget.take(50).then((n) => woken.push(`first ${n}`));
    const second = budget.take(20).then((n) => woken.push(`second ${n}`));
    await tick();
    assert.deepEqual(woken, []);
    // Room for the second but not the first: the second waits its turn, and holders are refused.
    budget.give(20);
    await tick();
    assert.deepEqual(woken, []);
    assert.equal(budget.tryTake(1), false, "a holder does not pass those waiting");
    budget.give(70);
    await Promise.all([first, second]);
    assert.deepEqual(woken, ["first 50", "second 20"]);
    assert.equal(budget.inUse, 70);
  });

  it("a reservation larger than the whole budget is cut to it (it can always be had)", async () => {
    const budget = new MemoryBudget(64);
    assert.equal(await budget.take(1000), 64);
    assert.equal(budget.inUse, 64);
    budget.give(64);
    assert.equal(budget.inUse, 0);
  });

  it("never counts below zero, and ignores nothing given", () => {
    const budget = new MemoryBudget(10);
    budget.give(5);
    budget.give(0);
    assert.equal(budget.inUse, 0);
    assert.equal(budget.tryTake(10), true);
  });
});
