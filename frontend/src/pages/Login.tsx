import { useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { navigate } from "../router";
import { saveSession } from "../session";

interface TokenOut {
  token: string;
  org: string;
  org_id: string;
  role: string;
}

function safeNext(next: string | null): string {
  // Only a path of this site: never an absolute URL someone put in the link.
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function Login({ next }: { next: string | null }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [org, setOrg] = useState("");
  const [askOrg, setAskOrg] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await api<TokenOut>("POST", "/api/auth/login", {
        email,
        password,
        org: org || undefined,
      });
      if (out) {
        saveSession({ token: out.token, email, org: out.org, role: out.role });
        navigate(safeNext(next), true);
      }
    } catch (err) {
      if (err instanceof ApiError && err.field === "org") setAskOrg(true);
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="narrow">
      <h1>Sign in to Steelyard</h1>
      <form onSubmit={submit}>
        <label for="email">Email</label>
        <input
          id="email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onInput={(e) => setEmail(e.currentTarget.value)}
        />
        <label for="password">Password</label>
        <input
          id="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {askOrg && (
          <>
            <label for="org">Organization</label>
            <input id="org" value={org} onInput={(e) => setOrg(e.currentTarget.value)} />
          </>
        )}
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <p class="muted">
        Connecting the <code>scaleapi</code> client? See <a href="/about">about this server</a>.
      </p>
    </main>
  );
}
