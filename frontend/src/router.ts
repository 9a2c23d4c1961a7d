import { useEffect, useState } from "preact/hooks";

// A few client-side routes; the server answers index.html for each of them (SPA fallback).
export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event("steelyard:navigate"));
}

export function useLocation(): URL {
  // A counter, not the address: a redirect may already have put the new address in place
  // (history.replaceState), and an unchanged state would not render again.
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((t) => t + 1);
    window.addEventListener("popstate", update);
    window.addEventListener("steelyard:navigate", update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener("steelyard:navigate", update);
    };
  }, []);
  return new URL(location.href);
}
