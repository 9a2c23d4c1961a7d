// Categorization params → the questions shown, and the choices → the response the API takes.
// `categories` answers {"category": x} (a list when allow_multiple); `taxonomies` answers
// {"taxonomies": {name: [x, ...]}}. Keys 1–9 number the options across all questions.

export interface Question {
  name: string | null; // null: the `categories` form
  description?: string;
  choices: string[];
  multiple: boolean;
}

export interface Option {
  question: number;
  choice: string;
}

export type Picks = string[][]; // per question, the chosen options

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function questions(params: Record<string, unknown>): Question[] {
  const found: Question[] = [];
  if (Array.isArray(params.categories)) {
    found.push({
      name: null,
      choices: strings(params.categories),
      multiple: params.allow_multiple === true,
    });
  }
  const taxonomies = params.taxonomies;
  if (taxonomies && typeof taxonomies === "object") {
    for (const [name, spec] of Object.entries(taxonomies as Record<string, unknown>)) {
      const s = (spec ?? {}) as Record<string, unknown>;
      found.push({
        name,
        description: typeof s.description === "string" ? s.description : undefined,
        choices: strings(s.choices),
        multiple: s.allow_multiple === true,
      });
    }
  }
  return found;
}

export function options(qs: Question[]): Option[] {
  return qs.flatMap((q, question) => q.choices.map((choice) => ({ question, choice })));
}

export function emptyPicks(qs: Question[]): Picks {
  return qs.map(() => []);
}

/** Choose an option: single choice replaces, multiple choice toggles. */
export function choose(qs: Question[], picks: Picks, option: Option): Picks {
  const q = qs[option.question];
  return picks.map((current, i) => {
    if (i !== option.question) return current;
    if (!q.multiple) return [option.choice];
    return current.includes(option.choice)
      ? current.filter((c) => c !== option.choice)
      : [...current, option.choice];
  });
}

/** The first question with nothing chosen, or null when every question is answered. */
export function unanswered(qs: Question[], picks: Picks): Question | null {
  return qs.find((_, i) => picks[i].length === 0) ?? null;
}

export function toResponse(qs: Question[], picks: Picks): Record<string, unknown> {
  const response: Record<string, unknown> = {};
  const taxonomies: Record<string, string[]> = {};
  qs.forEach((q, i) => {
    if (q.name === null) response.category = q.multiple ? picks[i] : picks[i][0];
    else taxonomies[q.name] = picks[i];
  });
  if (Object.keys(taxonomies).length) response.taxonomies = taxonomies;
  return response;
}

/** Say a response in words (training feedback). */
export function describe(response: Record<string, unknown>): string {
  const parts: string[] = [];
  if ("category" in response) {
    const c = response.category;
    parts.push(Array.isArray(c) ? c.join(", ") : String(c));
  }
  const t = response.taxonomies;
  if (t && typeof t === "object") {
    for (const [name, value] of Object.entries(t as Record<string, unknown>)) {
      parts.push(`${name}: ${Array.isArray(value) ? value.join(", ") : String(value)}`);
    }
  }
  return parts.join("; ") || JSON.stringify(response);
}
