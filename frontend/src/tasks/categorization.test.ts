import { describe, expect, it } from "vitest";
import { choose, emptyPicks, options, questions, toResponse, unanswered } from "./categorization";

describe("categorization payloads", () => {
  it("single choice replaces and answers a string", () => {
    const qs = questions({ categories: ["a", "b", "c"] });
    let picks = emptyPicks(qs);
    expect(unanswered(qs, picks)).toBe(qs[0]);
    picks = choose(qs, picks, options(qs)[0]);
    picks = choose(qs, picks, options(qs)[2]);
    expect(toResponse(qs, picks)).toEqual({ category: "c" });
    expect(unanswered(qs, picks)).toBeNull();
  });

  it("multiple choice toggles and answers a list", () => {
    const qs = questions({ categories: ["a", "b", "c"], allow_multiple: true });
    let picks = emptyPicks(qs);
    for (const i of [0, 2, 1, 1]) picks = choose(qs, picks, options(qs)[i]);
    expect(toResponse(qs, picks)).toEqual({ category: ["a", "c"] });
  });

  it("numbers taxonomies' options in one run and answers per taxonomy", () => {
    const qs = questions({
      taxonomies: {
        tone: { type: "category", choices: ["up", "down"] },
        topics: { type: "category", choices: ["x", "y"], allow_multiple: true },
      },
    });
    const all = options(qs);
    expect(all.map((o) => o.choice)).toEqual(["up", "down", "x", "y"]);
    let picks = emptyPicks(qs);
    for (const i of [1, 2, 3]) picks = choose(qs, picks, all[i]);
    expect(toResponse(qs, picks)).toEqual({ taxonomies: { tone: ["down"], topics: ["x", "y"] } });
  });

  it("ignores what is not a string in the params", () => {
    expect(questions({ categories: ["a", 3, null] })[0].choices).toEqual(["a"]);
  });
});
