import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import { Home } from "./pages/Home";
import { Label } from "./pages/Label";
import { Login } from "./pages/Login";
import { navigate, useLocation } from "./router";
import { clearSession, loadSession } from "./session";
import "./style.css";

function Header({ email }: { email: string }) {
  const signOut = async () => {
    try {
      await api("POST", "/api/auth/logout");
    } catch {
      // Signed out here whatever the server says; the token is forgotten below.
    }
    clearSession();
    navigate("/login");
  };
  return (
    <header class="top">
      <a href="/" class="brand" onClick={(e) => (e.preventDefault(), navigate("/"))}>
        Steelyard
      </a>
      <span class="muted">{email}</span>
      <button type="button" onClick={signOut}>
        Sign out
      </button>
    </header>
  );
}

function App() {
  const url = useLocation();
  const [, setTick] = useState(0);
  useEffect(() => {
    const out = () => {
      setTick((t) => t + 1);
      navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
    };
    window.addEventListener("steelyard:signed-out", out);
    return () => window.removeEventListener("steelyard:signed-out", out);
  }, []);
  const session = loadSession();
  const path = url.pathname;
  if (path === "/login") return <Login next={url.searchParams.get("next")} />;
  if (!session) {
    // Straight to the sign-in form; the address says where to come back to.
    const next = path + url.search;
    history.replaceState(null, "", `/login?next=${encodeURIComponent(next)}`);
    return <Login next={next} />;
  }
  return (
    <>
      <Header email={session.email} />
      <main>
        {path === "/label" ? (
          <Label key={url.search} project={url.searchParams.get("project")} />
        ) : (
          <Home />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
