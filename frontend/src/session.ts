// The signed-in session lives in localStorage so that it survives a reload; the token is the
// worker API's Bearer token from POST /api/auth/login.
export interface Session {
  token: string;
  email: string;
  org: string;
  role: string;
}

const KEY = "steelyard.session";

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  localStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  localStorage.removeItem(KEY);
}
