"""Adaptive redundancy on real crowdsourced data: labels bought vs accuracy on gold.

For every categorical dataset in ``../shared/datasets`` the labels of each task are replayed
in arrival order (row order of labels.csv). Policies:

* ``fixed k``: buy the first k labels of every task (fewer if the task has fewer);
* ``adaptive t``: buy labels one at a time until the posterior reaches confidence t
  (``steelyard.quality.adaptive``; min_labels=1, max_labels = the k cap), or the task runs out;
* ``all``: every label the task has.

All policies score tasks with the same worker model. The model is *cross-fitted*: tasks are
split in two halves at random; an estimator (Dawid-Skene by default) is fitted without gold on
all labels of one half, turned into a ``WorkerModel`` (rows shrunk towards the pooled matrix by
each worker's label count, unseen workers get the pooled matrix) and replayed on the other
half; then the halves swap, and everything is summed over ``--splits`` random splits. No task
is ever scored by a model that saw its labels (the model did see every label of the *other*
half, i.e. more labels per task than an adaptive platform would have collected). Labels per
task are averaged over all tasks, accuracy over the tasks with gold; "acc. of confident stops"
is the accuracy of the tasks that reached the target, i.e. how calibrated the target is. The
replay is vectorised and cross-checked against ``decide_batch`` on every run.

Run: ``.venv/bin/python bench/adaptive.py`` (about 15 s on 2 cores); writes
``bench/adaptive_curve.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import logsumexp

from steelyard.quality._data import encode
from steelyard.quality.adaptive import WorkerModel, decide_batch

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NUMERIC = {"zheng_emotion"}


@dataclass(frozen=True)
class Row:
    dataset: str
    policy: str
    k: float  # fixed k, or the target confidence for adaptive policies
    labels_per_task: float
    accuracy: float
    n_gold: int
    unsure: float = np.nan  # adaptive: share of tasks stopped below the target (cap / no labels)
    confident_accuracy: float = np.nan  # adaptive: accuracy of the tasks that reached the target


def make_estimator(method: str) -> Any:
    """``categorical.make(method)`` when that module exists, else the DS class directly."""
    try:
        from steelyard.quality.categorical import make  # type: ignore[import-not-found]

        return make(method)
    except ImportError:
        if method != "ds":
            raise
        from steelyard.quality.dawid_skene import DawidSkene

        return DawidSkene(n_iter=100)


def load(name: str) -> tuple[pd.DataFrame, dict[str, str]]:
    labels = pd.read_csv(DATASETS / name / "labels.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(DATASETS / name / "truth.csv", dtype=str, keep_default_na=False)
    labels["rank"] = labels.groupby("task", sort=False).cumcount()  # arrival order per task
    return labels, dict(zip(truth["task"], truth["label"], strict=True))


@dataclass(frozen=True)
class Prefixes:
    """Posterior after each label of each task, rows sorted by (task, arrival)."""

    task_ids: npt.NDArray[Any]
    tasks: npt.NDArray[np.int64]  # task code per row
    start: npt.NDArray[np.int64]  # first row of each task
    size: npt.NDArray[np.int64]  # labels available per task
    n_so_far: npt.NDArray[np.int64]  # labels bought up to and including this row
    probas: npt.NDArray[np.float64]
    frame: pd.DataFrame  # the replayed labels in row order, for cross-checks


def prefixes(model: WorkerModel, test: pd.DataFrame) -> Prefixes:
    coded = encode(test, classes=model.classes)
    order = np.lexsort((test["rank"].to_numpy(), coded.tasks))
    tasks = coded.tasks[order]
    workers = model.worker_codes(coded.worker_ids)[coded.workers[order]]
    log_conf = np.log(np.concatenate([model.confusions, model.default_confusion[None]]))
    contrib = log_conf[workers, :, coded.labels[order]]
    size = np.bincount(tasks, minlength=coded.n_tasks)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    # Cumulative sums restart per task: subtract the running total before the task's first row.
    total = np.cumsum(contrib, axis=0)
    before = np.where(start[:, None] > 0, total[np.maximum(start - 1, 0)], 0.0)
    loglik = total - before[tasks] + np.log(model.priors)[None]
    probas = np.exp(loglik - logsumexp(loglik, axis=1, keepdims=True))
    n_so_far = np.arange(len(tasks)) - start[tasks] + 1
    return Prefixes(coded.task_ids, tasks, start, size, n_so_far, probas, test.iloc[order])


def score(
    model: WorkerModel,
    p: Prefixes,
    rows: npt.NDArray[np.int64],
    truth: dict[str, str],
    task_ids: npt.NDArray[Any] | None = None,
) -> tuple[float, int, int]:
    """Labels bought, correct gold answers and gold tasks when the tasks stop at ``rows``."""
    ids = p.task_ids if task_ids is None else task_ids
    gold = np.array([truth.get(t, "") for t in ids.tolist()], dtype=object)
    predicted = model.classes[p.probas[rows].argmax(axis=1)]
    has_gold = gold != ""
    return (
        float(p.n_so_far[rows].sum()),
        int((predicted == gold)[has_gold].sum()),
        int(has_gold.sum()),
    )


def adaptive_stops(p: Prefixes, target: float, max_labels: int) -> npt.NDArray[np.int64]:
    """First row of each task where the adaptive policy stops (vectorised replay)."""
    confident = p.probas.max(axis=1) >= target
    stop = confident | (p.n_so_far >= max_labels) | (p.n_so_far == p.size[p.tasks])
    candidate = np.where(stop, np.arange(len(stop)), np.iinfo(np.int64).max)
    return np.minimum.reduceat(candidate, p.start).astype(np.int64)


def check_against_library(
    model: WorkerModel, p: Prefixes, rows: npt.NDArray[np.int64], target: float, max_labels: int
) -> None:
    """The vectorised replay must agree with ``decide_batch`` on the bought prefixes."""
    keep = p.n_so_far <= p.n_so_far[rows][p.tasks]
    batch = decide_batch(
        p.frame[keep], worker_model=model, max_labels=max_labels, target_confidence=target
    )
    assert np.array_equal(batch.task_ids, p.task_ids)
    assert np.allclose(batch.probas, p.probas[rows], atol=1e-6)
    assert bool(np.all(batch.done | (p.n_so_far[rows] == p.size)))


def run_dataset(
    name: str, method: str, k_cap: int, targets: list[float], seeds: range
) -> list[Row]:
    """All policies on one dataset, summed over ``seeds`` random 2-fold splits."""
    labels, truth = load(name)
    cols = ["task", "worker", "label"]
    task_ids = labels["task"].unique()
    k_max = int(min(k_cap, labels.groupby("task").size().max()))
    fixed = np.zeros((k_max + 1, 3))  # per k: labels bought, correct on gold, gold tasks
    adaptive = np.zeros((len(targets), 6))  # ... + unsure stops, confident-stop right, total
    for seed in seeds:
        half = np.zeros(len(task_ids), dtype=bool)
        half[np.random.default_rng(seed).permutation(len(task_ids))[: len(task_ids) // 2]] = True
        in_a = labels["task"].map(dict(zip(task_ids, half, strict=True))).to_numpy()
        for fit_mask in (in_a, ~in_a):
            train, test = labels[fit_mask], labels[~fit_mask]
            est = make_estimator(method).fit(train[cols])
            model = WorkerModel.from_estimator(est, labels=train[cols])
            p = prefixes(model, test)
            for k in range(1, k_max + 1):
                fixed[k] += score(model, p, p.start + np.minimum(k, p.size) - 1, truth)
            fixed[0] += score(model, p, p.start + p.size - 1, truth)  # all labels
            for i, target in enumerate(targets):
                rows = adaptive_stops(p, target, k_max)
                check_against_library(model, p, rows, target, k_max)
                sure = p.probas[rows].max(axis=1) >= target
                confident = score(model, p, rows[sure], truth, p.task_ids[sure])
                adaptive[i] += (*score(model, p, rows, truth), (~sure).sum(), *confident[1:])
    n = len(task_ids) * len(seeds)
    out = [
        Row(name, f"fixed k={k}", k, f[0] / n, f[1] / f[2], int(f[2]))
        for k, f in zip(range(1, k_max + 1), fixed[1:], strict=True)
    ]
    out.append(
        Row(
            name, "all labels", np.nan, fixed[0, 0] / n, fixed[0, 1] / fixed[0, 2], int(fixed[0, 2])
        )
    )
    out += [
        Row(name, f"adaptive {t:g}", t, a[0] / n, a[1] / a[2], int(a[2]), a[3] / n, a[4] / a[5])
        for t, a in zip(targets, adaptive, strict=True)
    ]
    return out


def fixed_at(rows: list[Row], cost: float) -> float:
    """Fixed-k accuracy interpolated at the same labels per task (NaN outside the curve)."""
    curve = [r for r in rows if r.policy.startswith("fixed")]
    x, y = [r.labels_per_task for r in curve], [r.accuracy for r in curve]
    return float(np.interp(cost, x, y, left=np.nan, right=np.nan))


def print_tables(rows: list[Row]) -> None:
    """Fixed k as one wide row per dataset, then every adaptive policy against fixed k."""
    names = list(dict.fromkeys(r.dataset for r in rows))
    k_max = max(int(r.k) for r in rows if r.policy.startswith("fixed"))
    print("\nFixed k: accuracy on gold (labels/task shown where tasks have fewer than k)\n")
    print("| dataset | " + " | ".join(f"k={k}" for k in range(1, k_max + 1)) + " | all |")
    print("|---" * (k_max + 2) + "|")
    for name in names:
        cells = {int(r.k): r for r in rows if r.dataset == name and r.policy.startswith("fixed")}
        full = next(r for r in rows if r.dataset == name and r.policy == "all labels")
        out = []
        for k in range(1, k_max + 1):
            r = cells.get(k)
            if r is None:
                out.append("")
            elif r.labels_per_task < k - 0.005:
                out.append(f"{r.accuracy:.3f} @{r.labels_per_task:.2f}")
            else:
                out.append(f"{r.accuracy:.3f}")
        out.append(f"{full.accuracy:.3f} @{full.labels_per_task:.2f}")
        print(f"| {name} | " + " | ".join(out) + " |")
    print("\nAdaptive (min_labels=1, max_labels=k cap) vs fixed k at the same labels/task\n")
    print(
        "| dataset | policy | labels/task | accuracy | fixed k, same cost | gain "
        "| unsure stops | acc. of confident stops |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if not r.policy.startswith("adaptive"):
            continue
        at = fixed_at([s for s in rows if s.dataset == r.dataset], r.labels_per_task)
        same = f"{at:.4f} | {r.accuracy - at:+.4f}" if not np.isnan(at) else "| "
        print(
            f"| {r.dataset} | {r.policy} | {r.labels_per_task:.2f} | {r.accuracy:.4f} | "
            f"{same} | {r.unsure:.1%} | {r.confident_accuracy:.4f} |"
        )


def plot(rows: list[Row], path: Path) -> None:
    names = list(dict.fromkeys(r.dataset for r in rows))
    cols = 4
    fig, axes = plt.subplots(
        (len(names) + cols - 1) // cols,
        cols,
        figsize=(13, 2.6 * ((len(names) + cols - 1) // cols)),
        squeeze=False,
    )
    for ax, name in zip(axes.ravel(), names, strict=False):
        mine = [r for r in rows if r.dataset == name]
        fixed = [r for r in mine if r.policy.startswith("fixed")]
        ada = [r for r in mine if r.policy.startswith("adaptive")]
        ax.plot(
            [r.labels_per_task for r in fixed],
            [r.accuracy for r in fixed],
            "o-",
            ms=3,
            color="0.45",
            label="fixed k",
        )
        ax.plot(
            [r.labels_per_task for r in ada],
            [r.accuracy for r in ada],
            "s",
            ms=5,
            color="tab:red",
            label="adaptive",
        )
        for r in ada:
            ax.annotate(
                f"{r.k:g}",
                (r.labels_per_task, r.accuracy),
                fontsize=6,
                xytext=(3, -8),
                textcoords="offset points",
            )
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.supxlabel("labels bought per task", fontsize=9)
    fig.supylabel("accuracy on gold tasks", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--method", default="ds", help="estimator for the worker model")
    parser.add_argument("--k-cap", type=int, default=10, help="largest fixed k and max_labels")
    parser.add_argument("--targets", nargs="*", type=float, default=[0.8, 0.9, 0.95, 0.99, 0.999])
    parser.add_argument("--splits", type=int, default=5, help="random 2-fold splits to average")
    parser.add_argument("--png", type=Path, default=Path(__file__).with_name("adaptive_curve.png"))
    args = parser.parse_args(argv)
    names = args.datasets or sorted(
        d.name for d in DATASETS.iterdir() if (d / "labels.csv").exists() and d.name not in NUMERIC
    )
    print(
        f"worker model: {args.method} fitted without gold, 2-fold cross-fitting by task "
        f"averaged over {args.splits} random task splits (seeds 0..{args.splits - 1}); "
        f"arrival order = row order of labels.csv; k cap {args.k_cap}"
    )
    rows: list[Row] = []
    for name in names:
        t0 = time.perf_counter()
        rows += run_dataset(name, args.method, args.k_cap, args.targets, range(args.splits))
        print(f"  {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print_tables(rows)
    plot(rows, args.png)
    print(f"\nwrote {args.png} ({args.png.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
