// The request memory budget, as tests need it: all of its room taken, to see what holders do without.
import assert from "node:assert/strict";
import { requestMemory } from "../../src/util/memory-budget";

/** Takes all the room left in the budget; answers the function that gives it back. */
export function exhaustBudget(): () => void {
  const room = requestMemory.limit - requestMemory.inUse;
  assert.ok(requestMemory.tryTake(room), "nothing else holds the budget");
  return () => requestMemory.give(room);
}
