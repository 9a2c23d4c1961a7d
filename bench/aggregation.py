#!/usr/bin/env python3
"""Categorical truth inference: Steelyard's methods against crowd-kit, accuracy / time / memory.

Parts (each can be switched off):

1. Real datasets: every folder of ``../shared/datasets`` with ``labels.csv`` (worker,task,label)
   and ``truth.csv`` (task,label), except numeric ones.  Each of our methods is fitted on the
   raw string columns (coding included in the time; median of ``--repeats`` runs); accuracy is
   measured on the tasks with a gold label (gold is *not* given to the methods).
2. crowd-kit side by side: when a crowd-kit interpreter exists (``.venv-ck/bin/python`` in the
   repository root, or ``--crowdkit-python``), this same file is run there as a child process
   (``--crowdkit-child``, no Steelyard import) that fits crowd-kit's MajorityVote, Wawa,
   DawidSkene(n_iter=100), OneCoinDawidSkene(n_iter=100), GLAD and MACE on the same data with
   their defaults and reports accuracy and wall time of ``fit_predict`` (one run after a
   warm-up, like ../shared/bench/aggregation_baseline.py).
3. Synthetic scale test: the generator of the crowd-kit baseline (seed 12345; 200,000 tasks x 5
   labels = 1,000,000 labels, 2,000 workers, 5 classes; reliable / mediocre / spammer / biased
   workers).  Every method runs in a fresh process so that its peak RSS can be reported; time
   is the median of ``--syn-repeats`` fits (3) after a warm-up, on both sides.
4. Memory line: peak RSS of a fresh process that generates 10,000,000 labels (2,000,000 tasks x
   5, 20,000 workers) and fits the default method and Dawid-Skene (resource.getrusage).
5. Peers: EBCC (best ELBO of 6 seeds) and BWA, the reference implementations in
   ``../shared/bench/peers/ebcc_bwa`` (loaded from there, not copied), on every real set and
   simulated crowd.
6. Simulated crowds (``steelyard.quality.simulate``: spammers, sparse, adversaries,
   correlated, imbalanced, dense; ``--sim-seeds`` seeds each).
7. Held-out tables: accuracy per dataset of every method and peer, each column's mean, and
   the leave-one-dataset-out choice among our methods (the method with the best mean on the
   other datasets, scored on the held-out one; two codings of one dataset are held out
   together), for the real sets, the simulated families and both; then the checks of issue 11
   for ``default`` and its wins/ties/losses against every other column (crowd-kit's as
   ``ck-<method>`` when it ran).
8. Gold: accuracy and ECE on the tasks without given gold, unsupervised vs. with
   ``--gold-fraction`` of the gold tasks given to the method.
9. End to end: ``steelyard aggregate LABELS.csv --method M --out ... --json`` on the synthetic
   set written as a CSV of string ids (temporary directory), wall time and peak RSS of the
   whole process, beside crowd-kit's DawidSkene reading the same file with pandas (or, without
   crowd-kit, pandas' read_csv alone), and the ratio.

    .venv/bin/python bench/aggregation.py                        # everything (about 20-30 min)
    .venv/bin/python bench/aggregation.py --datasets zheng_duck,zhang_rte --no-synthetic --no-10m
    .venv/bin/python bench/aggregation.py --methods ds,default --no-crowdkit
    .venv/bin/python bench/aggregation.py --no-real --no-synthetic --no-10m --no-cli  # crowds
    .venv/bin/python bench/aggregation.py --no-real --no-sim --no-synthetic --no-10m --no-peers \
        --cli-methods ds                                         # the 10^6-label CSV line only

Times are wall-clock seconds on a shared machine; the load average is printed at the start and
the end.  Speed ratio = crowd-kit seconds / our seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# bench/queue.py would shadow the standard library's queue (pyarrow imports it): this script's
# own folder must not be on the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "datasets"
NUMERIC_DATASETS = {"zheng_emotion"}
OUR_METHODS = ["mv", "wawa", "ds", "onecoin", "glad", "mace", "bayes_ds", "default"]
CK_NAME = {
    "mv": "MajorityVote",
    "wawa": "Wawa",
    "ds": "DawidSkene",
    "onecoin": "OneCoinDawidSkene",
    "glad": "GLAD",
    "mace": "MACE",
}
SYN_CK_DEFAULT = "mv,wawa,ds,onecoin"
PEERS_DIR = REPO / ".." / "shared" / "bench" / "peers" / "ebcc_bwa"
SAME_DATA = {  # held out together: one dataset in two codings is not a held-out dataset
    "zheng_duck": "bluebirds",
    "zhang_bluebird": "bluebirds",
    "zheng_relevance": "trec2011",
    "zhang_trec": "trec2011",
}  # GLAD / MACE take tens of minutes per million labels


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def load_dataset(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {c: np.asarray([r[c] for r in rows]) for c in ("task", "worker", "label")}
    with open(folder / "truth.csv", newline="") as f:
        truth = {r["task"]: r["label"] for r in csv.DictReader(f)}
    return cols, truth


def dataset_folders(data_dir: Path, only: list[str]) -> list[Path]:
    found = sorted(p for p in data_dir.iterdir() if (p / "labels.csv").exists())
    return [p for p in found if p.name not in NUMERIC_DATASETS and (not only or p.name in only)]


def make_synthetic(
    n_tasks: int, n_workers: int, per_task: int, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The crowd-kit baseline's generator (same random stream, same labels), numpy only.

    Worker types: 60% reliable (diagonal ~ Beta(9,2)), 25% mediocre (Beta(3,3)), 10% uniform
    spammers, 5% biased (mostly one fixed class); off-diagonal mass split by Dirichlet(1);
    class prior ~ Dirichlet(5).  Returns (tasks, workers, labels, truth).  The label draw is
    done in chunks so that 10M labels do not need a 10M x K temporary.
    """
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.full(n_classes, 5.0))
    truth = rng.choice(n_classes, size=n_tasks, p=prior)
    kind = rng.choice(4, size=n_workers, p=[0.60, 0.25, 0.10, 0.05])
    conf = np.empty((n_workers, n_classes, n_classes))
    for w in range(n_workers):
        for k in range(n_classes):
            if kind[w] == 2:
                row = np.full(n_classes, 1.0 / n_classes)
            elif kind[w] == 3:
                fav = w % n_classes
                row = np.full(n_classes, 0.2 / (n_classes - 1))
                row[fav] = 0.8
                if fav != k:
                    row = row * 0.9
                    row[k] += 0.1
                row = row / row.sum()
            else:
                a, b = (9.0, 2.0) if kind[w] == 0 else (3.0, 3.0)
                diag = rng.beta(a, b)
                off = rng.dirichlet(np.ones(n_classes - 1)) * (1.0 - diag)
                row = np.insert(off, k, diag)
            conf[w, k] = row
    cum = conf.cumsum(axis=2)
    workers = rng.integers(0, n_workers, size=(n_tasks, per_task))
    while True:
        s = np.sort(workers, axis=1)
        dup_rows = np.nonzero((s[:, 1:] == s[:, :-1]).any(axis=1))[0]
        if len(dup_rows) == 0:
            break
        workers[dup_rows] = rng.integers(0, n_workers, size=(len(dup_rows), per_task))
    task_idx = np.repeat(np.arange(n_tasks), per_task)
    w_idx = workers.ravel()
    del workers
    u = rng.random(len(w_idx))
    lab = np.empty(len(w_idx), dtype=np.int64)
    step = 1_000_000
    for lo in range(0, len(w_idx), step):
        hi = lo + step
        c = cum[w_idx[lo:hi], truth[task_idx[lo:hi]]]
        lab[lo:hi] = (u[lo:hi, None] > c).sum(axis=1)
    np.minimum(lab, n_classes - 1, out=lab)
    return task_idx, w_idx, lab, truth


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def load_line() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} on {os.cpu_count()} CPUs"


# ---------------------------------------------------------------------------------------------
# our side
# ---------------------------------------------------------------------------------------------
def ours_real(
    name: str, cols: dict[str, np.ndarray], truth: dict[str, str], methods: list[str], repeats: int
) -> list[dict[str, Any]]:
    from steelyard.quality.categorical import make

    out = []
    for m in methods:
        times = []
        model = make(m)
        for _ in range(repeats):
            model = make(m)
            t0 = time.perf_counter()
            model.fit(cols)
            times.append(time.perf_counter() - t0)
        pred = dict(zip(model.task_ids_.tolist(), model.labels_.tolist(), strict=True))
        hits = [pred[t] == lab for t, lab in truth.items() if t in pred]
        out.append(
            {
                "dataset": name,
                "method": m,
                "accuracy": float(np.mean(hits)),
                "evaluated": len(hits),
                "seconds": statistics.median(times),
                "n_iter": int(model.n_iter_),
            }
        )
    return out


def child_synthetic_ours(a: argparse.Namespace) -> dict[str, Any]:
    from steelyard.quality.categorical import make

    t0 = time.perf_counter()
    tasks, workers, labels, truth = make_synthetic(
        a.syn_tasks, a.syn_workers, a.syn_per_task, a.syn_classes, a.syn_seed
    )
    gen_s = time.perf_counter() - t0
    before = peak_rss_mib()
    res: dict[str, Any] = {
        "labels": len(labels),
        "generate_seconds": gen_s,
        "peak_rss_before_fit_mib": before,
        "fits": [],
    }
    for m in a.child_methods.split(","):
        make(m).fit({"task": [0, 0], "worker": [0, 1], "label": [0, 1]})  # warm-up
        times = []
        for _ in range(max(1, a.child_repeats)):
            model = make(m)
            t0 = time.perf_counter()
            model.fit({"task": tasks, "worker": workers, "label": labels})
            times.append(time.perf_counter() - t0)
        pred = np.asarray(model.labels_)[np.searchsorted(model.task_ids_, np.arange(len(truth)))]
        res["fits"].append(
            {
                "method": m,
                "seconds": statistics.median(times),
                "all_seconds": times,
                "accuracy": float(np.mean(pred == truth)),
                "n_iter": int(model.n_iter_),
                "peak_rss_mib": peak_rss_mib(),
            }
        )
        del model
    return res


RELAY = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
"""Starts a child from a small process: a process's peak RSS counts the pages of the process
it was forked from, so children forked straight from this one would report its size."""


def run_child(cmd: list[str], timeout: float, stdin: str = "") -> dict[str, Any] | None:
    try:
        p = subprocess.run(
            [sys.executable, "-c", RELAY, *cmd],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        print(f"  child timed out after {timeout:.0f}s: {' '.join(cmd[:3])}...", flush=True)
        return None
    if p.returncode != 0:
        print(f"  child failed rc={p.returncode}: {p.stderr[-1500:]}", flush=True)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def syn_args(a: argparse.Namespace, tasks: int, workers: int) -> list[str]:
    return [
        "--syn-tasks",
        str(tasks),
        "--syn-workers",
        str(workers),
        "--syn-per-task",
        str(a.syn_per_task),
        "--syn-classes",
        str(a.syn_classes),
        "--syn-seed",
        str(a.syn_seed),
    ]


# ---------------------------------------------------------------------------------------------
# crowd-kit side (runs inside the crowd-kit interpreter; imports nothing of Steelyard)
# ---------------------------------------------------------------------------------------------
def ck_model(method: str) -> Any:
    from crowdkit import aggregation as agg  # type: ignore[import-not-found]

    if method == "ds":
        return agg.DawidSkene(n_iter=100)
    if method == "onecoin":
        return agg.OneCoinDawidSkene(n_iter=100)
    return getattr(agg, CK_NAME[method])()


def ck_fit(method: str, df: Any) -> tuple[Any, float, int | None]:
    """crowd-kit's answers, wall time of fit_predict and EM iterations (when it records them)."""
    model = ck_model(method)
    t0 = time.perf_counter()
    pred = model.fit_predict(df)
    dt = time.perf_counter() - t0
    history = getattr(model, "loss_history_", None)
    return pred, dt, (len(history) if history is not None else None)


def ck_warmup(methods: list[str]) -> None:
    import pandas as pd

    tiny = pd.DataFrame(
        {"worker": ["a", "b", "c"], "task": ["t", "t", "t"], "label": ["x", "x", "y"]}
    )
    for m in methods:
        with contextlib.suppress(Exception):  # a warm-up only
            ck_model(m).fit_predict(tiny)


def child_crowdkit_real(a: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    spec = json.loads(sys.stdin.read())
    folder = Path(spec["folder"])
    methods: list[str] = spec["methods"]
    ck_warmup(methods)
    df = pd.read_csv(folder / "labels.csv", dtype=str)[["worker", "task", "label"]]
    truth = pd.read_csv(folder / "truth.csv", dtype=str).drop_duplicates("task")
    truth = truth.set_index("task")["label"]
    out = []
    for m in methods:
        try:
            pred, dt, n_iter = ck_fit(m, df)
            common = truth.index.intersection(pred.index)
            acc = float((pred.loc[common].astype(str) == truth.loc[common]).mean())
            out.append({"method": m, "accuracy": acc, "seconds": dt, "n_iter": n_iter})
        except Exception as e:  # report and keep going
            out.append({"method": m, "error": f"{type(e).__name__}: {e}"[:300]})
    return {"results": out}


def child_crowdkit_synthetic(a: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    tasks, workers, labels, truth = make_synthetic(
        a.syn_tasks, a.syn_workers, a.syn_per_task, a.syn_classes, a.syn_seed
    )
    df = pd.DataFrame({"worker": workers, "task": tasks, "label": labels})
    before = peak_rss_mib()
    m = a.child_methods
    ck_warmup([m])
    times = []
    for _ in range(max(1, a.child_repeats)):
        pred, dt, _ = ck_fit(m, df)
        times.append(dt)
    dt = statistics.median(times)
    pred = pred.reindex(np.arange(len(truth)))
    acc = float((pred.to_numpy() == truth).mean())
    return {
        "fits": [{"method": m, "seconds": dt, "accuracy": acc, "peak_rss_mib": peak_rss_mib()}],
        "peak_rss_before_fit_mib": before,
        "labels": len(labels),
    }


# ---------------------------------------------------------------------------------------------
# peers: the reference implementations of EBCC and BWA (run from their folder, never copied)
# ---------------------------------------------------------------------------------------------
def load_peers(folder: Path) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> function of (item, worker, label) code triples giving each item's class code."""
    import importlib.util

    def module(name: str) -> Any:
        spec = importlib.util.spec_from_file_location(f"peer_{name}", folder / f"{name}.py")
        if spec is None or spec.loader is None:
            raise ImportError(name)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    if not (folder / "ebcc.py").exists():
        print(f"peers not found in {folder}; EBCC / BWA columns left empty", flush=True)
        return {}
    ebcc, bwa = module("ebcc"), module("bwa")

    def run_ebcc(tuples: np.ndarray) -> np.ndarray:
        # the README's protocol: 6 seeds, keep the highest ELBO
        best: tuple[float, np.ndarray] | None = None
        for seed in range(6):
            post, elbo = ebcc.ebcc_vb(tuples, num_groups=10, empirical_prior=True, seed=seed)
            if best is None or elbo > best[0]:
                best = (float(elbo), post)
        assert best is not None
        return np.asarray(best[1].argmax(axis=1))

    def run_bwa(tuples: np.ndarray) -> np.ndarray:
        return np.asarray(bwa.bwa(tuples).argmax(axis=1))

    return {"ebcc": run_ebcc, "bwa": run_bwa}


def coded_truth(data: Any, truth: dict[str, str]) -> np.ndarray:
    """Per task code of ``data``: its gold class code, or -1 (no gold / class never labelled)."""
    out = np.full(data.n_tasks, -1, dtype=np.int64)
    t_pos = {t: i for i, t in enumerate(data.task_ids.tolist())}
    c_pos = {c: i for i, c in enumerate(data.classes.tolist())}
    for t, lab in truth.items():
        if t in t_pos:
            out[t_pos[t]] = c_pos.get(lab, -2)  # -2: a gold class nobody used, always wrong
    return out


def expected_calibration_error(
    conf: np.ndarray, pred: np.ndarray, truth_codes: np.ndarray, bins: int = 10
) -> float:
    """ECE of the top posterior on the scored tasks: |confidence - accuracy| per equal-width
    bin, weighted by the bin's share of tasks."""
    keep = truth_codes != -1
    c, right = conf[keep], (pred[keep] == truth_codes[keep]).astype(float)
    idx = np.minimum((c * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(c[sel].mean() - right[sel].mean())
    return float(total)


def accuracy_of(pred: np.ndarray, truth_codes: np.ndarray) -> float:
    keep = truth_codes != -1
    return float(np.mean(pred[keep] == truth_codes[keep]))


def fit_coded(
    tasks: np.ndarray,
    workers: np.ndarray,
    labels: np.ndarray,
    truth_codes: np.ndarray,
    methods: list[str],
    peers: dict[str, Callable[[np.ndarray], np.ndarray]],
    gold: dict[int, int] | None = None,
) -> dict[str, dict[str, float]]:
    """Accuracy and seconds of each of our ``methods`` and each peer on coded labels."""
    from steelyard.quality.categorical import make

    table = {"task": tasks, "worker": workers, "label": labels}
    out: dict[str, dict[str, float]] = {}
    for m in methods:
        t0 = time.perf_counter()
        model = make(m).fit(table, gold)
        dt = time.perf_counter() - t0
        pred = np.full(len(truth_codes), -1)
        rows = np.asarray(model.task_ids_, dtype=np.int64)
        pred[rows] = np.asarray(model.labels_)
        conf = np.zeros(len(truth_codes))
        conf[rows] = np.max(model.probas_, axis=1) if len(rows) else 0.0
        out[m] = {
            "accuracy": accuracy_of(pred, truth_codes),
            "ece": expected_calibration_error(conf, pred, truth_codes),
            "seconds": dt,
        }
    if gold is None:
        tuples = np.stack([tasks, workers, labels], axis=1).astype(np.int64)
        for name, fn in peers.items():
            t0 = time.perf_counter()
            with np.errstate(all="ignore"):
                pred = fn(tuples)
            out[name] = {
                "accuracy": accuracy_of(pred, truth_codes),
                "seconds": time.perf_counter() - t0,
            }
    return out


def peers_real(
    cols: dict[str, np.ndarray],
    truth: dict[str, str],
    peers: dict[str, Callable[[np.ndarray], np.ndarray]],
) -> dict[str, dict[str, float]]:
    from steelyard.quality._data import encode

    data = encode(cols)
    return fit_coded(data.tasks, data.workers, data.labels, coded_truth(data, truth), [], peers)


def simulated_part(
    a: argparse.Namespace, peers: dict[str, Callable[[np.ndarray], np.ndarray]]
) -> list[dict[str, Any]]:
    """Every method on every simulated crowd (``steelyard.quality.simulate``), seeds 0..n-1."""
    from steelyard.quality.simulate import FAMILIES, simulate

    rows = []
    families = [f for f in a.families.split(",") if f] or list(FAMILIES)
    for fam in families:
        for seed in range(a.sim_seeds):
            c = simulate(fam, seed)
            res = fit_coded(c.tasks, c.workers, c.labels, c.truth, a.methods.split(","), peers)
            for m, r in res.items():
                rows.append({"dataset": f"{fam}/{seed}", "family": fam, "method": m, **r})
            best = max(res.items(), key=lambda kv: kv[1]["accuracy"])
            print(
                f"sim {fam}/{seed}: "
                + " ".join(f"{m}={r['accuracy']:.3f}" for m, r in res.items())
                + f"  best={best[0]}",
                flush=True,
            )
    return rows


def gold_part(
    a: argparse.Namespace, folders: list[Path], methods: list[str]
) -> list[dict[str, Any]]:
    """Accuracy on the tasks *without* gold, unsupervised vs. with ``--gold-fraction`` of the
    gold tasks given to the method (seeded), so the gain is not the gold tasks' own answers."""
    from steelyard.quality._data import encode

    rows = []
    for folder in folders:
        cols, truth = load_dataset(folder)
        data = encode(cols)
        codes = coded_truth(data, truth)
        known = np.flatnonzero(codes >= 0)
        rng = np.random.default_rng(7)
        n_gold = max(1, round(a.gold_fraction * len(known)))
        given = rng.choice(known, size=n_gold, replace=False)
        held = codes.copy()
        held[given] = -1  # scored only on tasks whose answer the method did not get
        gold = {int(t): int(codes[t]) for t in given}
        base = fit_coded(data.tasks, data.workers, data.labels, held, methods, {})
        with_gold = fit_coded(data.tasks, data.workers, data.labels, held, methods, {}, gold)
        for m in methods:
            rows.append(
                {
                    "dataset": folder.name,
                    "method": m,
                    "gold_tasks": n_gold,
                    "unsupervised": base[m]["accuracy"],
                    "with_gold": with_gold[m]["accuracy"],
                    "ece_unsupervised": base[m]["ece"],
                    "ece_with_gold": with_gold[m]["ece"],
                }
            )
            print(
                f"gold {folder.name:16s} {m:8s} n_gold={n_gold} "
                f"{base[m]['accuracy']:.4f} -> {with_gold[m]['accuracy']:.4f}",
                flush=True,
            )
    return rows


def gold_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| dataset | gold tasks given | method | accuracy without gold | with gold | Δ "
        "| ECE without gold | ECE with gold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['dataset']} | {r['gold_tasks']} | {r['method']} | {r['unsupervised']:.4f} | "
            f"{r['with_gold']:.4f} | {r['with_gold'] - r['unsupervised']:+.4f} | "
            f"{r['ece_unsupervised']:.4f} | {r['ece_with_gold']:.4f} |"
        )
    by_m: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_m.setdefault(r["method"], []).append(r)
    for m, rs in by_m.items():
        d = [r["with_gold"] - r["unsupervised"] for r in rs]
        wins = sum(x > 0.0005 for x in d)
        losses = sum(x < -0.0005 for x in d)
        out.append(
            f"| mean | | {m} | {np.mean([r['unsupervised'] for r in rs]):.4f} | "
            f"{np.mean([r['with_gold'] for r in rs]):.4f} | "
            f"{np.mean(d):+.4f} ({wins} up, {losses} down) | "
            f"{np.mean([r['ece_unsupervised'] for r in rs]):.4f} | "
            f"{np.mean([r['ece_with_gold'] for r in rs]):.4f} |"
        )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# end to end: `steelyard aggregate` on a CSV of string ids, beside crowd-kit reading it with pandas
# ---------------------------------------------------------------------------------------------
def write_string_csv(path: Path, a: argparse.Namespace) -> int:
    """The synthetic set with string ids (``task-17``, ``worker-3``, ``class-2``) as a CSV."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    tasks, workers, labels, _ = make_synthetic(
        a.syn_tasks, a.syn_workers, a.syn_per_task, a.syn_classes, a.syn_seed
    )

    def named(prefix: str, codes: np.ndarray) -> Any:
        return pa.array(np.char.add(prefix, codes.astype(str)))

    table = pa.table(
        {
            "worker": named("worker-", workers),
            "task": named("task-", tasks),
            "label": named("class-", labels),
        }
    )
    pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))
    return len(labels)


LAUNCHER = """
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, f)
"""


def timed_process(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one child process.

    The child is started by a small launcher process that reports its peak RSS: a child forked
    straight from this (large) process would count this process's pages in its own peak."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        usage_file = Path(tmp) / "usage.json"
        launcher = [sys.executable, "-c", LAUNCHER, str(usage_file), *cmd]
        t0 = time.perf_counter()
        proc = subprocess.run(launcher, capture_output=True, text=True, env=env, cwd=REPO)
        wall = time.perf_counter() - t0
        usage = json.loads(usage_file.read_text()) if usage_file.exists() else {"rc": -1}
        if proc.returncode != 0 or usage["rc"] != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])}... failed: {proc.stderr[-1000:]}")
        return wall, usage["maxrss_kib"] / 1024.0, proc.stdout


def child_crowdkit_cli(a: argparse.Namespace) -> dict[str, Any]:
    """crowd-kit's side of the end-to-end line: pandas reads the CSV, DawidSkene, CSV out."""
    t0 = time.perf_counter()
    import pandas as pd

    df = pd.read_csv(a.cli_csv, dtype=str)[["worker", "task", "label"]]
    read_s = time.perf_counter() - t0
    if a.child_methods == "pandas-only":
        return {"read_seconds": read_s}
    from crowdkit import aggregation as agg

    pred = agg.DawidSkene(n_iter=100).fit_predict(df)
    pred.to_csv(a.cli_out)
    return {"read_seconds": read_s}


def cli_part(a: argparse.Namespace, ck_python: Path | None) -> list[dict[str, Any]]:
    import tempfile

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "labels.csv", Path(tmp) / "answers.csv"
        n = write_string_csv(path, a)
        size = path.stat().st_size / 2**20
        print(f"cli: {n:,} labels with string ids, {size:.0f} MiB CSV", flush=True)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        for m in a.cli_methods.split(","):
            cmd = [sys.executable, "-m", "steelyard.cli.main", "aggregate", str(path)]
            cmd += ["--method", m, "--out", str(out), "--json"]
            runs = []
            for _ in range(a.cli_repeats):
                wall, rss, stdout = timed_process(cmd, env)
                report = json.loads(stdout.strip().splitlines()[-1])
                runs.append((wall, rss, report["seconds"], report["total_seconds"]))
            wall, rss, fit_s, inner = (statistics.median(x) for x in zip(*runs, strict=True))
            rows.append(
                {"side": "steelyard", "method": m, "labels": n, "wall": wall, "rss": rss}
                | {"fit": fit_s, "inside": inner, "all_walls": [r[0] for r in runs]}
            )
            print(f"cli steelyard {m}: {wall:.2f}s (fit {fit_s:.2f}s) {rss:.0f} MiB", flush=True)
        python = str(ck_python) if ck_python is not None else sys.executable
        what = "ds" if ck_python is not None else "pandas-only"
        cmd = [python, __file__, "--crowdkit-child", "cli", "--child-methods", what]
        cmd += ["--cli-csv", str(path), "--cli-out", str(out)]
        runs = []
        for _ in range(a.cli_repeats if ck_python is None else 1):
            try:
                wall, rss, stdout = timed_process(cmd)
            except RuntimeError as exc:
                print(f"cli crowd-kit: {exc}", flush=True)
                break
            runs.append((wall, rss, json.loads(stdout.strip().splitlines()[-1])["read_seconds"]))
        if runs:
            wall, rss, read_s = (statistics.median(x) for x in zip(*runs, strict=True))
            rows.append(
                {"side": "crowd-kit" if ck_python else "pandas", "method": what, "labels": n}
                | {"wall": wall, "rss": rss, "read": read_s}
            )
            print(f"cli {what}: {wall:.2f}s (pandas read {read_s:.2f}s) {rss:.0f} MiB", flush=True)
    return rows


def cli_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| command | labels | wall s (whole process) | fit s | peak RSS MiB | ratio |",
        "|---|---|---|---|---|---|",
    ]
    ref = next((r for r in rows if r["side"] != "steelyard"), None)
    for r in rows:
        if r["side"] == "steelyard":
            ratio = f"{ref['wall'] / r['wall']:.1f}x" if ref else "—"
            out.append(
                f"| steelyard aggregate --method {r['method']} | {r['labels']:,} | "
                f"{r['wall']:.2f} | {r['fit']:.2f} | {r['rss']:.0f} | {ratio} |"
            )
        elif r["side"] == "crowd-kit":
            out.append(
                f"| crowd-kit DawidSkene, pandas read_csv | {r['labels']:,} | {r['wall']:.2f} | "
                f"— | {r['rss']:.0f} | 1x |"
            )
        else:
            out.append(
                f"| pandas read_csv alone (crowd-kit not installed; its fit would add to this) | "
                f"{r['labels']:,} | {r['wall']:.2f} (read {r['read']:.2f}) | — | "
                f"{r['rss']:.0f} | 1x (a lower bound for crowd-kit) |"
            )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# held-out evaluation
# ---------------------------------------------------------------------------------------------
def acc_matrix(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(dataset, column) -> accuracy; crowd-kit's results as columns ``ck-<method>``."""
    m: dict[tuple[str, str], float] = {}
    for r in rows:
        m[r["dataset"], r["method"]] = r["accuracy"]
        if r.get("ck_accuracy") is not None:
            m[r["dataset"], f"ck-{r['method']}"] = r["ck_accuracy"]
    return m


def family_means(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(family, column) -> mean accuracy over the family's seeds."""
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        acc.setdefault((r["family"], r["method"]), []).append(r["accuracy"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def loo_choice(
    mat: dict[tuple[str, str], float], datasets: list[str], candidates: list[str]
) -> dict[str, tuple[str, float]]:
    """Leave one dataset out: for each dataset, the candidate with the best mean accuracy on
    the *other* datasets, and that candidate's accuracy on the held-out one."""
    out = {}
    for d in datasets:
        others = [o for o in datasets if SAME_DATA.get(o, o) != SAME_DATA.get(d, d)]
        usable = [c for c in candidates if all((o, c) in mat for o in [*others, d])]
        best = max(usable, key=lambda c: (np.mean([mat[o, c] for o in others]), -usable.index(c)))
        out[d] = (best, mat[d, best])
    return out


def heldout_table(
    mat: dict[tuple[str, str], float], datasets: list[str], columns: list[str], title: str
) -> str:
    """Per dataset accuracy of every column, each column's mean, the LOO-selected method, and
    the checks of issue 11 for ``default`` (above every other mean; never 0.02 below the best)."""
    cols = [c for c in columns if all((d, c) in mat for d in datasets)]
    ours = [c for c in cols if not c.startswith("ck-") and c not in ("ebcc", "bwa")]
    choice = loo_choice(mat, datasets, ours)
    head = "| dataset | " + " | ".join(cols) + " | LOO choice (ours) |"
    out = [f"**{title}**", "", head, "|" + "---|" * (len(cols) + 2)]
    for d in datasets:
        best = max(mat[d, c] for c in cols)
        cells = [
            (f"**{mat[d, c]:.4f}**" if mat[d, c] >= best - 1e-12 else f"{mat[d, c]:.4f}")
            for c in cols
        ]
        out.append(f"| {d} | " + " | ".join(cells) + f" | {choice[d][0]} {choice[d][1]:.4f} |")
    means = {c: float(np.mean([mat[d, c] for d in datasets])) for c in cols}
    loo_mean = float(np.mean([choice[d][1] for d in datasets]))
    out.append(
        "| **mean** | "
        + " | ".join(f"**{means[c]:.4f}**" for c in cols)
        + f" | **{loo_mean:.4f}** |"
    )
    if "default" in cols and len(cols) > 1:
        others = [c for c in cols if c != "default"]
        top = max(others, key=lambda c: means[c])
        worst = min(
            ((mat[d, "default"] - max(mat[d, c] for c in others), d) for d in datasets),
        )
        wtl = []
        for c in others:
            diffs = [mat[d, "default"] - mat[d, c] for d in datasets]
            w = sum(x > 0.0005 for x in diffs)
            lo = sum(x < -0.0005 for x in diffs)
            wtl.append(f"{c} {w}/{len(diffs) - w - lo}/{lo}")
        out += [
            "",
            f"default mean {means['default']:.4f} vs best other {top} {means[top]:.4f}: "
            + ("ABOVE" if means["default"] > means[top] else "NOT above")
            + f"; worst gap to the best per dataset {worst[0]:+.4f} ({worst[1]}): "
            + ("within 0.02" if worst[0] >= -0.02 else "MORE than 0.02 below"),
            "default wins/ties/losses: " + ", ".join(wtl),
        ]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# orchestration
# ---------------------------------------------------------------------------------------------
def fmt(x: float | None, spec: str = ".4f") -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def real_part(
    a: argparse.Namespace,
    ck_python: Path | None,
    peers: dict[str, Callable[[np.ndarray], np.ndarray]],
) -> list[dict[str, Any]]:
    methods = a.methods.split(",")
    rows: list[dict[str, Any]] = []
    for folder in dataset_folders(a.data_dir, [d for d in a.datasets.split(",") if d]):
        cols, truth = load_dataset(folder)
        ours = ours_real(folder.name, cols, truth, methods, a.repeats)
        for name, r in peers_real(cols, truth, peers).items():
            ours.append({"dataset": folder.name, "method": name, **r, "n_iter": ""})
        ck: dict[str, dict[str, Any]] = {}
        ck_methods = [m for m in methods if m in CK_NAME]
        for m in ck_methods if ck_python is not None else []:
            # one process per method, so that a time-out loses one cell only
            spec = json.dumps({"folder": str(folder), "methods": [m]})
            res = run_child(
                [str(ck_python), __file__, "--crowdkit-child", "real"], a.ck_timeout, spec
            )
            for r in (res or {"results": [{"method": m, "error": "failed or timed out"}]})[
                "results"
            ]:
                ck[r["method"]] = r
        for r in ours:
            c = ck.get(r["method"], {})
            r["ck_accuracy"] = c.get("accuracy")
            r["ck_seconds"] = c.get("seconds")
            r["ck_error"] = c.get("error")
            r["ck_n_iter"] = c.get("n_iter")
            rows.append(r)
            ratio = (r["ck_seconds"] / r["seconds"]) if r["ck_seconds"] else None
            print(
                f"{folder.name:16s} {r['method']:8s} acc={r['accuracy']:.4f} "
                f"t={r['seconds']:.4f}s  crowd-kit acc={fmt(r['ck_accuracy'])} "
                f"t={fmt(r['ck_seconds'], '.3f')}s  x{fmt(ratio, '.0f')}",
                flush=True,
            )
    return rows


def real_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| dataset | method | accuracy | seconds | crowd-kit accuracy | crowd-kit seconds "
        "| Δ accuracy | speed-up | EM iterations (ours / crowd-kit) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ck_acc, ck_s = r.get("ck_accuracy"), r.get("ck_seconds")
        delta = r["accuracy"] - ck_acc if ck_acc is not None else None
        flag = " ⚠" if delta is not None and delta < -0.005 else ""
        ratio = ck_s / r["seconds"] if ck_s else None
        ck_cell = fmt(ck_acc) if not r.get("ck_error") else "error"
        out.append(
            f"| {r['dataset']} | {r['method']} | {r['accuracy']:.4f} | "
            f"{r['seconds']:.4f} | {ck_cell} | {fmt(ck_s, '.2f')} | "
            f"{fmt(delta, '+.4f')}{flag} | {fmt(ratio, '.0f')}x | "
            f"{r.get('n_iter', '')} / {r.get('ck_n_iter') or '—'} |"
        )
    return "\n".join(out)


def summary_table(rows: list[dict[str, Any]]) -> str:
    datasets = sorted({r["dataset"] for r in rows})
    by = {(r["dataset"], r["method"]): r for r in rows}
    methods = [m for m in OUR_METHODS if any(r["method"] == m for r in rows)]
    out = [
        "| method | our mean accuracy (all sets) | crowd-kit mean (sets it finished) "
        "| our mean on those sets | our default on those sets |",
        "|---|---|---|---|---|",
    ]
    for m in methods:
        ours = [by[d, m]["accuracy"] for d in datasets if (d, m) in by]
        ck_sets = [d for d in datasets if (d, m) in by and by[d, m].get("ck_accuracy") is not None]
        ck = [by[d, m]["ck_accuracy"] for d in ck_sets]
        ours_on = [by[d, m]["accuracy"] for d in ck_sets]
        dflt = [by[d, "default"]["accuracy"] for d in ck_sets if (d, "default") in by]
        out.append(
            f"| {m} | {np.mean(ours):.4f} ({len(ours)}) | "
            f"{fmt(float(np.mean(ck)) if ck else None)} ({len(ck)}) | "
            f"{fmt(float(np.mean(ours_on)) if ours_on else None)} | "
            f"{fmt(float(np.mean(dflt)) if dflt and len(dflt) == len(ck_sets) else None)} |"
        )
    return "\n".join(out)


def synthetic_part(a: argparse.Namespace, ck_python: Path | None) -> list[dict[str, Any]]:
    """Each method on the synthetic set in its own process (ours, then crowd-kit's)."""
    runs = [
        ("steelyard", sys.executable, "--child", "ours-synthetic", m) for m in a.methods.split(",")
    ]
    if ck_python is not None:
        runs += [
            ("crowd-kit", str(ck_python), "--crowdkit-child", "synthetic", m)
            for m in a.syn_ck_methods.split(",")
            if m
        ]
    rows = []
    for side, python, flag, child, m in runs:
        cmd = [python, __file__, flag, child, "--child-methods", m]
        cmd += [*syn_args(a, a.syn_tasks, a.syn_workers), "--child-repeats", str(a.syn_repeats)]
        res = run_child(cmd, a.ck_timeout)
        if not res:
            continue
        f = res["fits"][0]
        rows.append(
            {
                "side": side,
                "method": m,
                **f,
                "labels": res["labels"],
                "peak_rss_before_fit_mib": res["peak_rss_before_fit_mib"],
            }
        )
        print(
            f"synthetic {side} {m:8s} acc={f['accuracy']:.4f} t={f['seconds']:.3f}s "
            f"peak={f['peak_rss_mib']:.0f}MiB",
            flush=True,
        )
    return rows


def synthetic_table(rows: list[dict[str, Any]]) -> str:
    ck = {r["method"]: r for r in rows if r["side"] == "crowd-kit"}
    out = [
        "| method | labels | accuracy | fit s | peak RSS MiB (before fit) | crowd-kit accuracy "
        "| crowd-kit fit s | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["side"] != "steelyard":
            continue
        c = ck.get(r["method"], {})
        ratio = c["seconds"] / r["seconds"] if c else None
        out.append(
            f"| {r['method']} | {r['labels']:,} | {r['accuracy']:.4f} | "
            f"{r['seconds']:.3f} | {r['peak_rss_mib']:.0f} "
            f"({r['peak_rss_before_fit_mib']:.0f}) | {fmt(c.get('accuracy'))} | "
            f"{fmt(c.get('seconds'), '.2f')} | {fmt(ratio, '.0f')}x |"
        )
    return "\n".join(out)


def memory_part(a: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for m in a.big_methods.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "ours-synthetic",
            "--child-methods",
            m,
            *syn_args(a, a.big_tasks, a.big_workers),
        ]
        res = run_child(cmd, a.ck_timeout)
        if res:
            f = res["fits"][0]
            out.append(
                {
                    **f,
                    "labels": res["labels"],
                    "peak_rss_before_fit_mib": res["peak_rss_before_fit_mib"],
                }
            )
            print(
                f"10M labels: {m:8s} acc={f['accuracy']:.4f} t={f['seconds']:.2f}s "
                f"peak RSS={f['peak_rss_mib']:.0f}MiB",
                flush=True,
            )
    return out


def find_ck_python(a: argparse.Namespace) -> Path | None:
    if a.no_crowdkit:
        return None
    cand = a.crowdkit_python or REPO / ".venv-ck" / "bin" / "python"
    if cand.exists():
        return Path(cand)
    print(f"crowd-kit interpreter not found at {cand}; crowd-kit columns left empty", flush=True)
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--datasets", default="", help="comma list of dataset folders (default all)")
    p.add_argument("--methods", default=",".join(OUR_METHODS))
    p.add_argument("--repeats", type=int, default=3, help="timed runs per method (median)")
    p.add_argument("--crowdkit-python", type=Path, default=None)
    p.add_argument("--no-crowdkit", action="store_true")
    p.add_argument("--ck-timeout", type=float, default=1800.0, help="per child process")
    p.add_argument("--no-real", action="store_true")
    p.add_argument("--no-synthetic", action="store_true")
    p.add_argument("--no-10m", action="store_true")
    p.add_argument("--syn-ck-methods", default=SYN_CK_DEFAULT)
    p.add_argument("--syn-tasks", type=int, default=200_000)
    p.add_argument("--syn-workers", type=int, default=2_000)
    p.add_argument("--syn-per-task", type=int, default=5)
    p.add_argument("--syn-classes", type=int, default=5)
    p.add_argument("--syn-seed", type=int, default=12345)
    p.add_argument("--big-tasks", type=int, default=2_000_000)
    p.add_argument("--big-workers", type=int, default=20_000)
    p.add_argument("--big-methods", default="default,ds")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--crowdkit-child", default="", help=argparse.SUPPRESS)
    p.add_argument("--child-methods", default="", help=argparse.SUPPRESS)
    p.add_argument("--child-repeats", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--syn-repeats", type=int, default=3, help="timed fits per synthetic run")
    p.add_argument("--peers-dir", type=Path, default=PEERS_DIR, help="EBCC / BWA reference code")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--no-sim", action="store_true", help="skip the simulated crowds")
    p.add_argument("--families", default="", help="comma list of simulated families (all)")
    p.add_argument("--sim-seeds", type=int, default=3)
    p.add_argument("--no-cli", action="store_true", help="skip the end-to-end CSV timing")
    p.add_argument("--cli-methods", default="ds,default")
    p.add_argument("--cli-repeats", type=int, default=3)
    p.add_argument("--no-gold", action="store_true", help="skip the few-gold comparison")
    p.add_argument("--gold-fraction", type=float, default=0.05, help="share of gold tasks given")
    p.add_argument("--gold-methods", default="default,ds")
    p.add_argument("--cli-csv", default="", help=argparse.SUPPRESS)
    p.add_argument("--cli-out", default="", help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.crowdkit_child:
        fn: Callable[[argparse.Namespace], dict[str, Any]] = {
            "real": child_crowdkit_real,
            "synthetic": child_crowdkit_synthetic,
            "cli": child_crowdkit_cli,
        }[a.crowdkit_child]
        print(json.dumps(fn(a)))
        return
    if a.child:
        sys.path.insert(0, str(REPO / "src"))
        print(json.dumps(child_synthetic_ours(a)))
        return

    sys.path.insert(0, str(REPO / "src"))
    ck_python = find_ck_python(a)
    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "crowd-kit": str(ck_python),
    }
    print("env:", env, flush=True)
    print("start:", load_line(), flush=True)
    peers = {} if a.no_peers else load_peers(a.peers_dir)
    real = [] if a.no_real else real_part(a, ck_python, peers)
    sims = [] if a.no_sim else simulated_part(a, peers)
    folders = dataset_folders(a.data_dir, [d for d in a.datasets.split(",") if d])
    gold = [] if a.no_gold or a.no_real else gold_part(a, folders, a.gold_methods.split(","))
    syn = [] if a.no_synthetic else synthetic_part(a, ck_python)
    big = [] if a.no_10m else memory_part(a)
    # last: generating the 10^6-row CSV grows this process, and children forked from a large
    # process report its pages in their own peak RSS (the synthetic and 10M lines use that)
    cli = [] if a.no_cli else cli_part(a, ck_python)
    print("end:", load_line(), flush=True)
    print()
    columns = [*a.methods.split(","), *peers, *(f"ck-{m}" for m in CK_NAME)]
    if real:
        print(real_table(real))
        print()
        print(summary_table(real))
        print()
        mat = acc_matrix(real)
        names = sorted({r["dataset"] for r in real})
        print(heldout_table(mat, names, columns, "Real datasets (accuracy on gold)"))
        print()
    if sims:
        fam_mat = family_means(sims)
        fams = list(dict.fromkeys(r["family"] for r in sims))
        print(
            heldout_table(
                acc_matrix(sims),
                [r["dataset"] for r in sims if r["method"] == sims[0]["method"]],
                columns,
                "Simulated crowds, per crowd",
            )
        )
        print()
        print(heldout_table(fam_mat, fams, columns, "Simulated crowds, mean per family"))
        print()
        if real:
            both = {**acc_matrix(real), **fam_mat}
            print(heldout_table(both, names + fams, columns, "Real datasets and families"))
            print()
    if gold:
        print(gold_table(gold))
        print()
    if cli:
        print(cli_table(cli))
        print()
    if syn:
        print(synthetic_table(syn))
        print()
    for f in big:
        print(
            f"memory: {f['labels']:,} labels, {f['method']}: peak RSS "
            f"{f['peak_rss_mib']:.0f} MiB (after generating the data: "
            f"{f['peak_rss_before_fit_mib']:.0f} MiB), fit {f['seconds']:.2f} s, "
            f"accuracy {f['accuracy']:.4f}"
            + (
                "  (target ≤ 2048 MiB: met)"
                if f["peak_rss_mib"] <= 2048
                else "  (target ≤ 2048 MiB: MISSED)"
            )
        )
    if a.json:
        a.json.write_text(
            json.dumps(
                {"env": env, "real": real, "simulated": sims, "gold": gold, "cli": cli}
                | {"synthetic": syn, "big": big},
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
