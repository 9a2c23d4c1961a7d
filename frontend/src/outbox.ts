// Submits are written here before they are sent and removed only once the server has answered
// for them, so a reload, a crash or a network cut loses nothing. The server stores one label per
// assignment (a repeat answers 409 `already_submitted`), so resending is safe: a submit whose
// answer was lost is sent again and counted once.
import type { SubmitResult } from "./types";

export interface Pending {
  assignmentId: string;
  response: Record<string, unknown>;
  queuedAt: number;
}

export interface Store {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** What one attempt to send came to. */
export type Outcome =
  | { kind: "stored"; result: SubmitResult | null } // answered: the label is on the server
  | { kind: "retry" } // no answer (offline, 5xx, 429): keep it and try again
  | { kind: "refused"; message: string }; // a definite no (422, an expired lease): drop it

export type Send = (p: Pending) => Promise<Outcome>;

const KEY = "steelyard.outbox";

export class Outbox {
  private readonly key: string;

  /** `owner` (the signed-in worker) keeps one person's queue from being sent with another's
   * session on a shared browser: it waits for its owner to sign in again. */
  constructor(
    private readonly store: Store,
    owner = "",
  ) {
    this.key = owner ? `${KEY}:${owner}` : KEY;
  }

  list(): Pending[] {
    try {
      const raw = this.store.getItem(this.key);
      return raw ? (JSON.parse(raw) as Pending[]) : [];
    } catch {
      return [];
    }
  }

  private write(items: Pending[]): void {
    this.store.setItem(this.key, JSON.stringify(items));
  }

  /** Queue a submit; one per assignment (a second for the same assignment replaces nothing). */
  add(assignmentId: string, response: Record<string, unknown>, now: number): Pending {
    const items = this.list();
    const found = items.find((p) => p.assignmentId === assignmentId);
    if (found) return found;
    const pending = { assignmentId, response, queuedAt: now };
    this.write([...items, pending]);
    return pending;
  }

  remove(assignmentId: string): void {
    this.write(this.list().filter((p) => p.assignmentId !== assignmentId));
  }

  has(assignmentId: string): boolean {
    return this.list().some((p) => p.assignmentId === assignmentId);
  }

  /** Try each queued submit once, oldest first; what answered leaves the queue. */
  async flush(send: Send): Promise<Map<string, Outcome>> {
    const outcomes = new Map<string, Outcome>();
    for (const pending of this.list()) {
      const outcome = await send(pending);
      outcomes.set(pending.assignmentId, outcome);
      if (outcome.kind !== "retry") this.remove(pending.assignmentId);
    }
    return outcomes;
  }
}

/** Seconds to wait before retry number `attempt` (from 0): 1, 2, 4, 8, then every 10. */
export function retryDelay(attempt: number): number {
  return Math.min(10, 2 ** attempt);
}

/** How a server status maps onto an outcome (a thrown network error is always a retry). */
export function classify(status: number, code: string): "stored" | "retry" | "refused" {
  if (status >= 200 && status < 300) return "stored";
  if (status === 409 && code === "already_submitted") return "stored";
  if (status >= 500 || status === 429 || status === 408) return "retry";
  return "refused";
}
