import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { navigate } from "../router";
import type { Qualification, WorkProject } from "../types";

function qualificationText(q: Qualification | null): string {
  if (q === null) return "open";
  const score = q.score === null ? "" : `, score ${Math.round(q.score * 100)}%`;
  switch (q.status) {
    case "passed":
      return `qualified${score}`;
    case "failed":
      return `qualification failed${score}; ${q.attempts_left} retakes left`;
    case "in_progress":
      return `training: ${q.answered} of ${q.required} answered${score}`;
    default:
      return `training first: ${q.required} task${q.required === 1 ? "" : "s"}, pass mark ${Math.round(q.pass_mark * 100)}%`;
  }
}

export function Home() {
  const [projects, setProjects] = useState<WorkProject[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api<WorkProject[]>("GET", "/api/work/projects")
      .then((p) => setProjects(p ?? []))
      .catch((err) => setError(String(err.message ?? err)));
  }, []);
  const start = (project?: string) =>
    navigate(project ? `/label?project=${encodeURIComponent(project)}` : "/label");
  return (
    <section>
      <h1>Your projects</h1>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {projects === null && !error && <p>Loading…</p>}
      {projects && projects.length === 0 && <p>No project is open to you yet.</p>}
      {projects && projects.length > 0 && (
        <>
          <table class="projects">
            <thead>
              <tr>
                <th scope="col">Project</th>
                <th scope="col">Task type</th>
                <th scope="col">Qualification</th>
                <th scope="col">
                  <span class="visually-hidden">Start</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {projects.map((p) => {
                const closed =
                  p.qualification?.status === "failed" && p.qualification.attempts_left <= 0;
                return (
                  <tr key={p.name}>
                    <td>{p.name}</td>
                    <td>{p.type}</td>
                    <td>{qualificationText(p.qualification)}</td>
                    <td>
                      <button
                        type="button"
                        disabled={closed}
                        aria-label={`Start ${p.name}`}
                        onClick={() => start(p.name)}
                      >
                        Start
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <p>
            <button type="button" onClick={() => start()}>
              Start with any project
            </button>
          </p>
        </>
      )}
    </section>
  );
}
