"""Adaptive redundancy you can trust: calibrated stopping replayed on real crowdsourced data.

Protocol (``steelyard.quality.replay``): tasks and each task's labels in a random order (seed),
ten chunks, the worker model for a chunk fitted only on the labels bought in earlier chunks,
10 % of the tasks with a known answer used as gold (labelled to ``max_labels``, their pairs feed
the calibrator once their chunk is done), chunk 0 a burn-in at 5 labels, scoring on the live
tasks of chunks 1-9. The calibrator's prior is fitted leave-one-dataset-out: for each dataset
on the gold pairs of the *other* datasets only (zhang_trec and zheng_relevance are the same
TREC items and are left out together; zhang_bluebird duplicates zheng_duck and is skipped), so
no accuracy below comes from a method tuned on that dataset.

Run: ``PYTHONPATH=src .venv/bin/python -P bench/adaptive_replay.py`` (about two minutes; the
datasets in ``../shared/datasets`` when present, else the ones shipped in tests/quality/data;
``-P``: this folder's ``queue.py`` would otherwise shadow the standard library's, which pyarrow
imports). ``--pairs draws`` measures what the workflow's per-project fit stores.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from steelyard.quality.calibration import Calibrator, expected_calibration_error
from steelyard.quality.replay import Policy, ReplayResult, Stream, pooled_prior, replay

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "tests" / "quality" / "data"
SHARED = ROOT.parent / "shared" / "datasets"
SKIP = {"zheng_emotion", "zhang_bluebird"}  # numeric; a duplicate of zheng_duck
GROUPS = {"zhang_trec": "trec2011", "zheng_relevance": "trec2011"}
FIXED_K = (1, 3, 5)


def load(folder: Path, seed: int) -> Stream:
    with (folder / "labels.csv").open(newline="") as f:
        rows = [(r["task"], r["worker"], r["label"]) for r in csv.DictReader(f)]
    with (folder / "truth.csv").open(newline="") as f:
        truth = {r["task"]: r["label"] for r in csv.DictReader(f)}
    t, w, lab = (np.asarray(c, dtype=object) for c in zip(*rows, strict=True))
    return Stream.build(t.astype(str), w.astype(str), lab.astype(str), truth, seed=seed)


def folders(names: list[str] | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in (SHIPPED, SHARED):  # shared last: the larger collection wins where both exist
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / "labels.csv").exists() and d.name not in SKIP:
                    found[d.name] = d
    return {k: v for k, v in found.items() if names is None or k in names}


def equal_accuracy_labels(points: list[tuple[float, float]], accuracy: float) -> float:
    """Fewest labels/task on the adaptive curve (linear between points) reaching ``accuracy``."""
    pts = sorted(points)
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if y0 >= accuracy:
            return x0
        if y1 >= accuracy:
            return x0 + (x1 - x0) * (accuracy - y0) / (y1 - y0)
    return pts[-1][0] if pts and pts[-1][1] >= accuracy else float("nan")


def fmt(x: float, spec: str = ".3f") -> str:
    return "n/a" if np.isnan(x) else format(x, spec)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--datasets", nargs="*", default=None)
    ap.add_argument("--targets", nargs="*", type=float, default=[0.8, 0.9, 0.95, 0.99])
    ap.add_argument("--curve", nargs="*", type=float, default=[0.5, 0.6, 0.7, 0.85, 0.97])
    ap.add_argument("--max-labels", type=int, default=10)
    ap.add_argument("--gold-rate", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pairs-per-task", type=float, default=None)
    ap.add_argument(
        "--pairs",
        choices=["stopping", "prefix", "draws"],
        default="stopping",
        help="calibration pairs; draws: what the workflow's per-project fit does with served gold",
    )
    ap.add_argument(
        "--prior",
        choices=["lodo", "identity"],
        default="lodo",
        help="calibrator prior: leave-one-dataset-out pooled, or the identity-centred default "
        "(what a project starts from in the workflow)",
    )
    ap.add_argument("--credibility", type=float, default=0.9, help="of the promised bound")
    args = ap.parse_args(argv)
    data = folders(args.datasets)
    opts: dict[str, Any] = {
        "max_labels": args.max_labels,
        "gold_rate": args.gold_rate,
        "pairs_per_task": args.pairs_per_task,
        "pairs": args.pairs,
    }
    streams = {name: load(path, args.seed) for name, path in data.items()}
    fixed: dict[str, dict[int, ReplayResult]] = {}
    for name, stream in streams.items():
        t0 = time.perf_counter()
        fixed[name] = {
            k: replay(stream, Policy("fixed", k), seed=args.seed, **opts) for k in FIXED_K
        }
        print(f"  {name}: fixed k {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    pass1 = {name: f[3] for name, f in fixed.items()}
    raw: dict[str, dict[float, ReplayResult]] = {}
    cal: dict[str, dict[float, ReplayResult]] = {}
    priors: dict[str, Calibrator] = {}
    for name, stream in streams.items():
        t0 = time.perf_counter()
        group = GROUPS.get(name, name)
        same = [k for k in pass1 if GROUPS.get(k, k) == group]
        priors[name] = (
            pooled_prior(pass1, exclude=same, credibility=args.credibility)
            if args.prior == "lodo"
            else Calibrator(credibility=args.credibility)
        )
        raw[name] = {
            c: replay(stream, Policy("adaptive", c), seed=args.seed, **opts) for c in args.targets
        }
        cal[name] = {
            c: replay(
                stream, Policy("adaptive", c, True), prior=priors[name], seed=args.seed, **opts
            )
            for c in sorted({*args.targets, *args.curve})
        }
        print(f"  {name}: adaptive {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    print(
        f"Replay: random arrival order (seed {args.seed}), 10 chunks, worker model "
        "(BayesianDawidSkene + shrinkage) refitted before each chunk on the labels bought so far, "
        f"gold rate {args.gold_rate:g} (gold tasks labelled to {args.max_labels}), burn-in chunk "
        f"at 5 labels, max_labels {args.max_labels}, min_labels 1. Scored: live tasks with a "
        "known answer in chunks 1-9. Calibrator: Bayesian beta calibration"
        f" (stopping on its {args.credibility} lower credible bound) refitted on gold "
        f"{args.pairs} pairs as they accumulate; "
        "its prior is fitted LEAVE-ONE-DATASET-OUT (on the other datasets' gold pairs only), so "
        "every figure below is on a dataset the calibrator's prior was not fitted on. The design "
        "(beta map, stopping pairs weighing one per gold task, lower credible bound; see "
        "steelyard.quality.calibration) was settled while looking at these replays, though not "
        "per dataset; its one free number, the credibility, was set to 0.9 a priori, not "
        "searched.\n"
    )
    print("### Calibration (ECE, 15 bins; every prefix of the scored tasks, fixed k=3 run)\n")
    print(
        "| dataset | scored tasks | gold pairs (tasks) | LODO prior a, b, c | ECE before "
        "| ECE after | ECE at stop c=0.95 before | after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in streams:
        f3, p = fixed[name][3], priors[name]
        r95, c95 = raw[name].get(0.95), cal[name].get(0.95)
        at_stop = (
            (
                fmt(expected_calibration_error(r95.raw, r95.correct)),
                fmt(expected_calibration_error(c95.point, c95.correct)),
            )
            if r95 and c95
            else ("n/a", "n/a")
        )
        print(
            f"| {name} | {len(f3.correct)} | {len(f3.gold_raw)} ({f3.gold_weight.sum():.0f}) "
            f"| {p.prior_mean[0]:.2f}, {p.prior_mean[1]:.2f}, {p.prior_mean[2]:+.2f} "
            f"| {fmt(expected_calibration_error(f3.prefix_raw, f3.prefix_correct))} "
            f"| {fmt(expected_calibration_error(f3.prefix_calibrated, f3.prefix_correct))} "
            f"| {at_stop[0]} | {at_stop[1]} |"
        )
    print("\n### Stopping at target c: accuracy of the tasks that reached it (held-out)\n")
    print(
        "| dataset | c | before: labels/task | reached | acc. at target | after: labels/task "
        "| reached | acc. at target | >= c-0.02 | all tasks acc. |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failures = 0
    for name in streams:
        for c in args.targets:
            b, a = raw[name][c], cal[name][c]
            ok = not a.reached.any() or a.confident_accuracy >= c - 0.02
            failures += not ok
            print(
                f"| {name} | {c:g} | {b.labels_per_task:.2f} | {b.reached.mean():.0%} "
                f"| {fmt(b.confident_accuracy)} | {a.labels_per_task:.2f} | {a.reached.mean():.0%} "
                f"| {fmt(a.confident_accuracy)} | {'yes' if ok else '**no**'} | {a.accuracy:.3f} |"
            )
    print("\n### Labels per task at equal accuracy: fixed k vs calibrated adaptive (held-out)\n")
    print(
        "| dataset | k | fixed: labels/task | fixed: accuracy | adaptive labels/task at that "
        "accuracy | saving |"
    )
    print("|---|---|---|---|---|---|")
    for name in streams:
        curve = [(r.labels_per_task, r.accuracy) for r in cal[name].values()]
        for k in FIXED_K:
            f = fixed[name][k]
            need = equal_accuracy_labels(curve, f.accuracy)
            saving = 1 - need / f.labels_per_task if not np.isnan(need) else float("nan")
            x0, y0 = min(curve)
            cell = fmt(need, ".2f")
            if need == x0 and y0 > f.accuracy and x0 > f.labels_per_task:
                # Below the curve's cheapest point: no adaptive run is this cheap (or this bad).
                cell, saving = f"below curve (cheapest: {x0:.2f} at {y0:.3f})", float("nan")
            print(
                f"| {name} | {k} | {f.labels_per_task:.2f} | {f.accuracy:.3f} | {cell} "
                f"| {fmt(saving, '+.0%')} |"
            )
    overhead = np.mean([f[3].gold_labels_per_live_task for f in fixed.values()])
    print(
        f"\nGold overhead (not in labels/task): {overhead:.2f} gold labels per live task "
        "on average. 'n/a': not reached on the adaptive curve "
        f"(targets {sorted({*args.targets, *args.curve})}). "
        f"Targets missing c-0.02: {failures}."
    )


if __name__ == "__main__":
    main()
