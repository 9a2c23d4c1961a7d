import { useEffect, useState } from "preact/hooks";

// A few client-side routes; the server answers index.html for each of them (SPA fallback).
export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event("steelyard:navigate"));
}

export function useLocation(): URL {
  const [href, setHref] = useState(location.href);
  useEffect(() => {
    const update = () => setHref(location.href);
    window.addEventListener("popstate", update);
    window.addEventListener("steelyard:navigate", update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener("steelyard:navigate", update);
    };
  }, []);
  return new URL(href);
}
