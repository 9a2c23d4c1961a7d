import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, NetworkError, api } from "../api";
import { KEY_HELP, actionFor } from "../keys";
import { type Outcome, Outbox, type Pending, classify, retryDelay } from "../outbox";
import { navigate } from "../router";
import { loadSession } from "../session";
import { Categorization } from "../tasks/Categorization";
import {
  type Option,
  type Picks,
  choose,
  describe,
  emptyPicks,
  options,
  questions,
  toResponse,
  unanswered,
} from "../tasks/categorization";
import type { Offer, SubmitResult } from "../types";

type View =
  | { kind: "loading" }
  | { kind: "task"; offer: Offer }
  | { kind: "empty" }
  | { kind: "waiting" } // a submit is kept on this device until the server answers
  | { kind: "feedback"; offer: Offer; result: SubmitResult; given: Record<string, unknown> }
  | { kind: "error"; message: string };

/** No heartbeat after this long without a key press or pointer move: the worker is away. */
const IDLE_MS = 5 * 60 * 1000;

async function send(p: Pending): Promise<Outcome> {
  try {
    const result = await api<SubmitResult>("POST", `/api/work/${p.assignmentId}/submit`, {
      response: p.response,
    });
    return { kind: "stored", result };
  } catch (err) {
    if (err instanceof NetworkError) return { kind: "retry" };
    if (err instanceof ApiError) {
      const kind = classify(err.status, err.code);
      if (kind === "stored") return { kind, result: null };
      if (kind === "retry") return { kind };
      return { kind, message: err.message };
    }
    return { kind: "retry" };
  }
}

function isTextField(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target instanceof HTMLTextAreaElement || target.isContentEditable) return true;
  return target instanceof HTMLInputElement && !["radio", "checkbox", "button"].includes(target.type);
}

export function Label({ project }: { project: string | null }) {
  const outbox = useMemo(() => {
    const session = loadSession();
    return new Outbox(localStorage, session ? `${session.email}/${session.org}` : "");
  }, []);
  const [view, setView] = useState<View>({ kind: "loading" });
  const [picks, setPicks] = useState<Picks>([]);
  const picksRef = useRef(picks);
  picksRef.current = picks;
  const [help, setHelp] = useState(false);
  const [instruction, setInstruction] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const retryTimer = useRef<number | undefined>(undefined);
  const attempt = useRef(0);
  const lastActive = useRef(Date.now());

  const offer = view.kind === "task" ? view.offer : null;
  const qs = useMemo(() => (offer ? questions(offer.task.params) : []), [offer]);

  const show = useCallback((next: Offer | null) => {
    if (next === null) {
      setView({ kind: "empty" });
      return;
    }
    setPicks(emptyPicks(questions(next.task.params)));
    setView({ kind: "task", offer: next });
    if (next.training) setInstruction(true);
  }, []);

  const fetchNext = useCallback(async () => {
    const path = project ? `/api/work/next?project=${encodeURIComponent(project)}` : "/api/work/next";
    try {
      const next = await api<Offer>("POST", path);
      if (next && outbox.has(next.assignment_id)) {
        // Our submit for it has not landed yet: wait for it rather than show it again.
        setView({ kind: "waiting" });
        return;
      }
      show(next);
    } catch (err) {
      if (err instanceof NetworkError) {
        setView({ kind: "waiting" });
        scheduleRetry();
      } else setView({ kind: "error", message: (err as Error).message });
    }
  }, [project, show]);

  // Send whatever is queued; once nothing is, go on to the next task.
  const deliver = useCallback(
    async (given?: { offer: Offer; response: Record<string, unknown> }) => {
      window.clearTimeout(retryTimer.current);
      const outcomes = await outbox.flush(send);
      const mine = given ? outcomes.get(given.offer.assignment_id) : undefined;
      if (outbox.list().length > 0) {
        setView({ kind: "waiting" });
        setNotice("Saved on this device; it will be sent when the connection returns.");
        scheduleRetry();
        return;
      }
      attempt.current = 0;
      setNotice(null);
      for (const outcome of outcomes.values()) {
        if (outcome.kind === "refused") setNotice(`Not stored: ${outcome.message}`);
      }
      if (given && mine?.kind === "stored" && mine.result?.feedback) {
        setView({ kind: "feedback", offer: given.offer, result: mine.result, given: given.response });
        return;
      }
      await fetchNext();
    },
    [fetchNext],
  );

  const scheduleRetry = useCallback(() => {
    window.clearTimeout(retryTimer.current);
    const delay = retryDelay(attempt.current++) * 1000;
    retryTimer.current = window.setTimeout(() => void deliver(), delay);
  }, []);

  // First load: anything left from before (a reload, a crash) goes first.
  useEffect(() => {
    void deliver();
    const online = () => {
      attempt.current = 0;
      void deliver();
    };
    window.addEventListener("online", online);
    return () => {
      window.removeEventListener("online", online);
      window.clearTimeout(retryTimer.current);
    };
  }, [project]);

  // The lease heartbeat, while the page is visible and the worker active.
  useEffect(() => {
    if (!offer) return;
    const remaining = Date.parse(offer.lease_expires_at) - Date.now();
    const every = Math.min(120_000, Math.max(5_000, remaining / 3));
    const beat = () => {
      if (document.visibilityState !== "visible") return;
      if (Date.now() - lastActive.current > IDLE_MS) return;
      api("POST", `/api/work/${offer.assignment_id}/heartbeat`).catch(() => undefined);
    };
    const timer = window.setInterval(beat, every);
    const visible = () => document.visibilityState === "visible" && beat();
    document.addEventListener("visibilitychange", visible);
    return () => {
      window.clearInterval(timer);
      document.removeEventListener("visibilitychange", visible);
    };
  }, [offer]);

  const submit = useCallback(() => {
    if (!offer) return;
    const picks = picksRef.current;
    const missing = unanswered(qs, picks);
    if (missing) {
      setNotice(`Choose ${missing.name ? `a ${missing.name}` : "a category"} first.`);
      return;
    }
    const response = toResponse(qs, picks);
    outbox.add(offer.assignment_id, response, Date.now());
    setView({ kind: "loading" });
    void deliver({ offer, response });
  }, [offer, qs, deliver]);

  const giveBack = useCallback(
    async (how: "skip" | "release") => {
      if (!offer) return;
      setView({ kind: "loading" });
      try {
        await api("POST", `/api/work/${offer.assignment_id}/${how}`);
      } catch (err) {
        setNotice((err as Error).message);
      }
      // A released task may be offered again at once: releasing means stopping for now.
      if (how === "release") navigate("/");
      else await fetchNext();
    },
    [offer, fetchNext],
  );

  // The key handler is registered once and reads the latest render's state: an effect that
  // re-registered it would run only after the browser's next task, and a key pressed in between
  // would act on the state before (a submit sending the choice before the last key).
  const latest = useRef({ view, offer, qs, submit, giveBack, fetchNext });
  latest.current = { view, offer, qs, submit, giveBack, fetchNext };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      lastActive.current = Date.now();
      const { view, offer, qs, submit, giveBack, fetchNext } = latest.current;
      const action = actionFor(e, isTextField(e.target));
      if (!action) return;
      if (action.kind === "help") setHelp((h) => !h);
      else if (action.kind === "instruction") setInstruction((i) => !i);
      else if (action.kind === "close") (setHelp(false), setInstruction(false));
      else if (view.kind === "feedback" && action.kind === "submit") void fetchNext();
      else if (action.kind === "submit") submit();
      else if (action.kind === "skip") void giveBack("skip");
      else if (action.kind === "release") void giveBack("release");
      else if (action.kind === "choose" && offer) {
        const option: Option | undefined = options(qs)[action.index];
        if (option) setPicks((p) => choose(qs, p, option));
      } else return;
      e.preventDefault();
    };
    const active = () => (lastActive.current = Date.now());
    window.addEventListener("keydown", onKey);
    window.addEventListener("pointermove", active);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("pointermove", active);
    };
  }, []);

  return (
    <section class="label" aria-live="polite">
      {notice && (
        <p role="status" class="notice">
          {notice}
        </p>
      )}
      {view.kind === "loading" && <p>Loading…</p>}
      {view.kind === "waiting" && (
        <p data-testid="waiting">
          Waiting for the server: your last answer is saved on this device and will be sent.
        </p>
      )}
      {view.kind === "empty" && (
        <div>
          <p data-testid="empty">No task is waiting for you{project ? ` in ${project}` : ""}.</p>
          <button type="button" onClick={() => void fetchNext()}>
            Check again
          </button>
        </div>
      )}
      {view.kind === "error" && (
        <p role="alert" class="error">
          {view.message}
        </p>
      )}
      {view.kind === "feedback" && (
        <div class="feedback" data-testid="feedback">
          <h2>{view.result.feedback!.correct ? "Correct" : "Not quite"}</h2>
          <p>
            You answered <strong>{describe(view.given)}</strong>; expected{" "}
            <strong>{describe(view.result.feedback!.expected_response)}</strong> (score{" "}
            {Math.round(view.result.feedback!.score * 100)}%).
          </p>
          {view.result.qualification && (
            <p>
              Training: {view.result.qualification.answered} of{" "}
              {view.result.qualification.required} answered, status{" "}
              {view.result.qualification.status.replace("_", " ")}.
            </p>
          )}
          <button type="button" onClick={() => void fetchNext()}>
            Next task (Ctrl + Enter)
          </button>
        </div>
      )}
      {offer && (
        <article data-testid="task" data-task-id={offer.task.task_id}>
          <div class="task-head">
            <span class="muted">
              {offer.task.project}
              {offer.training && ` · training ${offer.training.answered + 1} of ${offer.training.required}`}
            </span>
            <button type="button" onClick={() => setInstruction((i) => !i)} aria-expanded={instruction}>
              Instruction (I)
            </button>
            <button type="button" onClick={() => setHelp((h) => !h)} aria-expanded={help}>
              Keys (?)
            </button>
          </div>
          {instruction && (
            <div class="instruction" data-testid="instruction">
              {offer.task.instruction || "This task has no instruction."}
            </div>
          )}
          {offer.task.type === "categorization" ? (
            <Categorization
              task={offer.task}
              qs={qs}
              picks={picks}
              onChoose={(o) => setPicks((p) => choose(qs, p, o))}
            />
          ) : (
            <p>
              This screen does not show <code>{offer.task.type}</code> tasks yet; release it with
              Ctrl + Backspace.
            </p>
          )}
          <div class="actions">
            <button type="button" class="primary" onClick={submit}>
              Submit (Ctrl + Enter)
            </button>
            <button type="button" onClick={() => void giveBack("skip")}>
              Skip (Ctrl + Space)
            </button>
            <button type="button" onClick={() => void giveBack("release")}>
              Release (Ctrl + Backspace)
            </button>
          </div>
        </article>
      )}
      {help && (
        <div role="dialog" aria-label="Keys" class="help" data-testid="help">
          <h2>Keys</h2>
          <dl>
            {KEY_HELP.map(([key, what]) => (
              <div key={key}>
                <dt>
                  <kbd>{key}</kbd>
                </dt>
                <dd>{what}</dd>
              </div>
            ))}
          </dl>
        </div>
      )}
    </section>
  );
}
