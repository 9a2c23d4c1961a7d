import { clearSession, loadSession } from "./session";

/** An answer from the server that is not a success: its status and the native error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null,
  ) {
    super(message);
  }
}

/** The request never got an answer (offline, server down): worth retrying. */
export class NetworkError extends Error {}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T | null> {
  const headers: Record<string, string> = { accept: "application/json" };
  const session = loadSession();
  if (session) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new NetworkError(String(err));
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let doc: unknown = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (!res.ok) {
    const error = (doc as { error?: { code?: string; message?: string; field?: string } } | null)
      ?.error;
    if (res.status === 401 && path !== "/api/auth/login") {
      // The session ended (signed out elsewhere, expired): back to the sign-in page.
      clearSession();
      window.dispatchEvent(new Event("steelyard:signed-out"));
    }
    throw new ApiError(
      res.status,
      error?.code ?? "error",
      error?.message ?? `The server answered ${res.status}.`,
      error?.field ?? null,
    );
  }
  return doc as T;
}
