import { describe, expect, it } from "vitest";
import { type Outcome, Outbox, type Pending, type Store, classify, retryDelay } from "./outbox";

function memory(): Store & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
  };
}

describe("Outbox", () => {
  it("keeps a submit until the server answers, then drops it", async () => {
    const store = memory();
    const box = new Outbox(store);
    box.add("a1", { category: "x" }, 1);
    const answers: Outcome[] = [{ kind: "retry" }, { kind: "stored", result: null }];
    const sent: Pending[] = [];
    const send = async (p: Pending) => (sent.push(p), answers.shift()!);
    await box.flush(send);
    expect(box.list().map((p) => p.assignmentId)).toEqual(["a1"]);
    // A new page (a reload) reads the same queue.
    const reloaded = new Outbox(store);
    await reloaded.flush(send);
    expect(reloaded.list()).toEqual([]);
    expect(sent.map((p) => p.response)).toEqual([{ category: "x" }, { category: "x" }]);
  });

  it("queues one submit per assignment", () => {
    const box = new Outbox(memory());
    box.add("a1", { category: "x" }, 1);
    box.add("a1", { category: "y" }, 2);
    expect(box.list()).toEqual([{ assignmentId: "a1", response: { category: "x" }, queuedAt: 1 }]);
  });

  it("drops what the server refused and keeps the order of the rest", async () => {
    const box = new Outbox(memory());
    box.add("a1", {}, 1);
    box.add("a2", {}, 2);
    box.add("a3", {}, 3);
    const outcomes: Record<string, Outcome> = {
      a1: { kind: "refused", message: "expired" },
      a2: { kind: "retry" },
      a3: { kind: "retry" },
    };
    await box.flush(async (p) => outcomes[p.assignmentId]);
    expect(box.list().map((p) => p.assignmentId)).toEqual(["a2", "a3"]);
  });

  it("keeps each worker's queue apart", () => {
    const store = memory();
    new Outbox(store, "ann@example.com/demo").add("a1", {}, 1);
    expect(new Outbox(store, "bob@example.com/demo").list()).toEqual([]);
    expect(new Outbox(store, "ann@example.com/demo").list()).toHaveLength(1);
  });

  it("reads a damaged store as empty", () => {
    const store = memory();
    store.setItem("steelyard.outbox", "{not json");
    expect(new Outbox(store).list()).toEqual([]);
  });
});

describe("classify", () => {
  it("takes a repeat as stored, a server hiccup as retry, a definite no as refused", () => {
    expect(classify(200, "")).toBe("stored");
    expect(classify(409, "already_submitted")).toBe("stored");
    expect(classify(409, "invalid_state")).toBe("refused");
    expect(classify(422, "invalid")).toBe("refused");
    expect(classify(503, "error")).toBe("retry");
    expect(classify(429, "rate_limited")).toBe("retry");
  });

  it("backs off to every ten seconds", () => {
    expect([0, 1, 2, 3, 4, 9].map(retryDelay)).toEqual([1, 2, 4, 8, 10, 10]);
  });
});
