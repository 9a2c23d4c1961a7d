// The labeling screen's keyboard map, kept pure so that it is tested without a browser.
export type Action =
  | { kind: "choose"; index: number }
  | { kind: "submit" }
  | { kind: "skip" }
  | { kind: "release" }
  | { kind: "instruction" }
  | { kind: "help" }
  | { kind: "close" };

export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  shiftKey?: boolean;
}

/** The keys, as the `?` overlay lists them. */
export const KEY_HELP: [string, string][] = [
  ["1 – 9", "choose a category (again to unchoose, in multiple choice)"],
  ["Ctrl + Enter", "submit and show the next task"],
  ["Ctrl + Space", "skip: give the task back and never see it again"],
  ["Ctrl + Backspace", "release: give the task back (it may come again)"],
  ["I", "show or hide the instruction"],
  ["?", "show or hide this list"],
  ["Esc", "close what is open"],
];

/** The action a key press means, or null. In a text field only the chords count. */
export function actionFor(e: KeyLike, inTextField: boolean): Action | null {
  const chord = e.ctrlKey || e.metaKey;
  if (chord && e.key === "Enter") return { kind: "submit" };
  if (chord && (e.key === " " || e.key === "Spacebar")) return { kind: "skip" };
  if (chord && e.key === "Backspace") return { kind: "release" };
  if (e.key === "Escape") return { kind: "close" };
  if (inTextField || chord || e.altKey) return null;
  if (e.key === "?") return { kind: "help" };
  if (e.key === "i" || e.key === "I") return { kind: "instruction" };
  if (/^[1-9]$/.test(e.key)) return { kind: "choose", index: Number(e.key) - 1 };
  return null;
}
