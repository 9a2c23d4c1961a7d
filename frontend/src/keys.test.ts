import { describe, expect, it } from "vitest";
import { type KeyLike, actionFor } from "./keys";

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({
  key: k,
  ctrlKey: false,
  metaKey: false,
  altKey: false,
  ...mods,
});

describe("actionFor", () => {
  it("maps 1–9 to choices and not 0", () => {
    expect(actionFor(key("1"), false)).toEqual({ kind: "choose", index: 0 });
    expect(actionFor(key("9"), false)).toEqual({ kind: "choose", index: 8 });
    expect(actionFor(key("0"), false)).toBeNull();
  });

  it("submits, skips and releases with chords, Ctrl or Cmd", () => {
    expect(actionFor(key("Enter", { ctrlKey: true }), false)).toEqual({ kind: "submit" });
    expect(actionFor(key("Enter", { metaKey: true }), false)).toEqual({ kind: "submit" });
    expect(actionFor(key(" ", { ctrlKey: true }), false)).toEqual({ kind: "skip" });
    expect(actionFor(key("Backspace", { ctrlKey: true }), false)).toEqual({ kind: "release" });
    expect(actionFor(key("Enter"), false)).toBeNull();
  });

  it("leaves typing alone in a text field, except the chords", () => {
    expect(actionFor(key("1"), true)).toBeNull();
    expect(actionFor(key("?"), true)).toBeNull();
    expect(actionFor(key("i"), true)).toBeNull();
    expect(actionFor(key("Enter", { ctrlKey: true }), true)).toEqual({ kind: "submit" });
  });

  it("has the help and instruction keys", () => {
    expect(actionFor(key("?"), false)).toEqual({ kind: "help" });
    expect(actionFor(key("I"), false)).toEqual({ kind: "instruction" });
    expect(actionFor(key("1", { ctrlKey: true }), false)).toBeNull(); // browser tab switching
  });
});
