"""α sweeps: the grid of runs, their launch commands, and the results table and plot.

`experiments/sweep_alpha.py` is the command line; this module holds what it does so tests
and notebooks can use it without flags.

A sweep is a grid of α values x seeds over one base flagfile. Each run is
``experiments/run.py --flagfile=BASE [overrides] --alpha=A --seed=S --workdir=SWEEP/NAME``
with NAME ``alpha_<A>_seed_<S>`` (``alignment_only_seed_<S>`` for the alignment-only
baseline, which is α = 0 in `run.py`). A run is finished once ``loop.run`` has written its
end-of-run ``summary.md`` (after the final evaluation); reruns of a sweep skip those.

The warm start does not depend on α, so a sweep can share it (``shared_warm_start``): per
seed, one warm-start-only run (``warm_start_seed_<S>``: ``--steps=0``) whose policy every
α run of that seed starts from (``--init_from=... --warm_start_steps=0``). That gives the
same runs (the warm start is deterministic in the seed; the RL phase starts with a fresh
optimizer and iterator either way) for one warm start per seed instead of one per run.

Collecting reads each finished run's ``metrics.jsonl`` and takes the last logged value of
every requested metric (the final evaluation). Per α it reports the mean and the sample
standard deviation (ddof = 1) over the seeds that have the metric, and how many did; a
metric no run has is shown as "n/a". Outputs: a Markdown table, a CSV file and a PNG
(metric vs α with ±1 std error bars), like the ablation table of the CodeRL+ paper.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np

from coderl_jax.metrics import METRICS_FILENAME, read_metrics

ALIGNMENT_ONLY = "alignment_only"  # the α token for the alignment-only baseline (α = 0)
FINISHED_MARKER = "summary.md"  # written by loop.run after the final evaluation
# Code generation (greedy and sampled pass@1) and code reasoning in the trained format (the
# final output of held-out programs: evals.alignment); see the tiny default's flagfile.
DEFAULT_METRICS = (
    "eval/synthetic/pass@1",
    "eval/synthetic/sampled/pass@1",
    "eval/synthetic_alignment/output_accuracy",
    "eval/synthetic_alignment/variable_accuracy",
)
_RESERVED_FLAGS = ("--alpha", "--seed", "--workdir", "--flagfile", "--init_from")
WARM_START_PREFIX = "warm_start_seed_"


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One run of the grid: its α token (``"0.6"`` or ``"alignment_only"``) and seed."""

    alpha_token: str | None  # None: the seed's shared warm start (no RL steps)
    seed: int
    sweep_dir: str

    @property
    def alpha(self) -> float:
        return 0.0 if self.alpha_token == ALIGNMENT_ONLY else float(self.alpha_token)

    @property
    def name(self) -> str:
        if self.alpha_token is None:
            return f"{WARM_START_PREFIX}{self.seed}"
        if self.alpha_token == ALIGNMENT_ONLY:
            return f"{ALIGNMENT_ONLY}_seed_{self.seed}"
        return f"alpha_{self.alpha_token}_seed_{self.seed}"

    @property
    def workdir(self) -> str:
        return os.path.join(self.sweep_dir, self.name)

    def is_finished(self) -> bool:
        return os.path.isfile(os.path.join(self.workdir, FINISHED_MARKER))


def parse_alphas(tokens: Sequence[str]) -> list[str]:
    """Validates α tokens: numbers in [0, 1] (kept as written) or ``alignment_only``.

    Raises:
      ValueError: a token that is neither, or two tokens that mean the same α.
    """
    seen: dict[float, str] = {}
    out = []
    for token in tokens:
        token = token.strip()
        if token != ALIGNMENT_ONLY:
            try:
                value = float(token)
            except ValueError:
                raise ValueError(
                    f"--alphas: {token!r} is neither a number nor {ALIGNMENT_ONLY!r}"
                ) from None
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"--alphas: {token} is outside [0, 1]")
        value = 0.0 if token == ALIGNMENT_ONLY else float(token)
        if value in seen:
            raise ValueError(f"--alphas: {seen[value]!r} and {token!r} are the same α")
        seen[value] = token
        out.append(token)
    return out


def plan(alpha_tokens: Sequence[str], seeds: Sequence[int], sweep_dir: str) -> list[SweepRun]:
    """The grid, α-major (every seed of the first α, then the next α)."""
    return [SweepRun(a, int(s), sweep_dir) for a in parse_alphas(alpha_tokens) for s in seeds]


def warm_start_runs(runs: Sequence[SweepRun]) -> list[SweepRun]:
    """The shared warm-start run of each seed of ``runs``, in seed order of appearance."""
    seeds = dict.fromkeys((r.seed, r.sweep_dir) for r in runs)
    return [SweepRun(None, seed, sweep_dir) for seed, sweep_dir in seeds]


def run_flags(
    run: SweepRun,
    base_flagfile: str,
    overrides: Sequence[str] = (),
    shared_warm_start: bool = False,
) -> list[str]:
    """`experiments/run.py` flags of one run: the flagfile, the overrides, then the sweep's
    own (later flags win, so those cannot be overridden by accident): α, seed and workdir;
    with ``shared_warm_start``, ``--init_from`` the seed's warm-start run (whose own flags
    are ``--steps=0``)."""
    for flag in overrides:
        if flag.split("=", 1)[0] in _RESERVED_FLAGS:
            raise ValueError(f"--overrides may not set {flag.split('=', 1)[0]}: the sweep sets it")
        if not flag.startswith("--"):
            raise ValueError(f"--overrides: {flag!r} is not a --flag=value")
    flags = [f"--flagfile={base_flagfile}", *overrides]
    if run.alpha_token is None:
        return [*flags, "--steps=0", f"--seed={run.seed}", f"--workdir={run.workdir}"]
    flags += [f"--alpha={run.alpha}", f"--seed={run.seed}", f"--workdir={run.workdir}"]
    if shared_warm_start:
        warm = SweepRun(None, run.seed, run.sweep_dir)
        flags += [f"--init_from={warm.workdir}", "--warm_start_steps=0"]
    return flags


# --- Collecting --------------------------------------------------------------------------


def final_values(workdir: str, metrics: Sequence[str]) -> dict[str, float | None]:
    """The last logged value of each metric in a run's ``metrics.jsonl`` (None if never)."""
    columns = read_metrics(os.path.join(workdir, METRICS_FILENAME))
    out: dict[str, float | None] = {}
    for name in metrics:
        values = [v for v in columns.get(name, []) if v is not None]
        out[name] = float(values[-1]) if values else None
    return out


@dataclasses.dataclass(frozen=True)
class Aggregate:
    """One metric at one α over seeds: mean, sample std (None below 2 values), count."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Aggregate:
        present = np.asarray([v for v in values if v is not None], np.float64)
        if present.size == 0:
            return cls(None, None, 0)
        std = float(present.std(ddof=1)) if present.size > 1 else None
        return cls(float(present.mean()), std, int(present.size))

    def text(self, digits: int = 3) -> str:
        if self.mean is None:
            return "n/a"
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclasses.dataclass(frozen=True)
class AlphaRow:
    """The table row of one α: finished runs and the aggregate of each metric."""

    alpha_token: str
    alpha: float
    runs: int
    metrics: Mapping[str, Aggregate]

    @property
    def label(self) -> str:
        if self.alpha_token == ALIGNMENT_ONLY:
            return "alignment only (α=0)"
        if self.alpha == 1.0:
            return f"{self.alpha_token} (GRPO)"
        return self.alpha_token


def collect(runs: Sequence[SweepRun], metrics: Sequence[str]) -> tuple[list[AlphaRow], list[dict]]:
    """Aggregates the finished runs per α (in the order of ``runs``).

    Returns:
      (rows, per_run): one `AlphaRow` per α, and one dict per finished run with its name,
      α token, seed and final metric values (None where missing).
    """
    per_run = []
    by_alpha: dict[str, list[dict]] = {}
    for run in runs:
        by_alpha.setdefault(run.alpha_token, [])
        if not run.is_finished():
            continue
        record = {"run": run.name, "alpha": run.alpha_token, "seed": run.seed}
        record.update(final_values(run.workdir, metrics))
        per_run.append(record)
        by_alpha[run.alpha_token].append(record)
    rows = []
    for token, records in by_alpha.items():
        aggregates = {m: Aggregate.of([r[m] for r in records]) for m in metrics}
        alpha = 0.0 if token == ALIGNMENT_ONLY else float(token)
        rows.append(AlphaRow(token, alpha, len(records), aggregates))
    return rows, per_run


def markdown_table(rows: Sequence[AlphaRow], metrics: Sequence[str]) -> str:
    """``| α | runs | metric ... |`` with mean ± std (over seeds) per cell."""
    lines = [
        "| α | runs | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for row in rows:
        cells = [row.metrics[m].text() for m in metrics]
        lines.append(f"| {row.label} | {row.runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[AlphaRow], metrics: Sequence[str], path: str) -> None:
    """One line per α: ``alpha, alpha_value, runs`` then ``<metric>_mean/_std/_n``; empty
    cells where a value is missing."""
    header = ["alpha", "alpha_value", "runs"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_n"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            line: list = [row.alpha_token, row.alpha, row.runs]
            for m in metrics:
                agg = row.metrics[m]
                line += ["" if agg.mean is None else agg.mean, "" if agg.std is None else agg.std]
                line.append(agg.n)
            writer.writerow(line)


def plot(rows: Sequence[AlphaRow], metrics: Sequence[str], out_png: str) -> str:
    """One panel per metric: mean vs α with ±1 std error bars; the alignment-only baseline
    is a separate marker at α = 0. Uses matplotlib's Agg canvas (no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * len(metrics), 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(1, len(metrics), squeeze=False)[0]
    for axes, metric in zip(axes_list, metrics):
        for only, style, label in ((False, "o-", "CodeRL+ / GRPO"), (True, "s", "alignment only")):
            points = sorted(
                (r.alpha, r.metrics[metric])
                for r in rows
                if (r.alpha_token == ALIGNMENT_ONLY) == only and r.metrics[metric].mean is not None
            )
            if points:
                axes.errorbar(
                    [a for a, _ in points],
                    [agg.mean for _, agg in points],
                    yerr=[0.0 if agg.std is None else agg.std for _, agg in points],
                    fmt=style,
                    capsize=4,
                    label=label,
                )
        if not any(r.metrics[metric].mean is not None for r in rows):
            axes.text(0.5, 0.5, "n/a", ha="center", va="center", transform=axes.transAxes)
        axes.set_title(metric)
        axes.set_xlabel("α (fraction of code-generation prompts)")
        axes.set_xlim(-0.05, 1.05)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    figure.savefig(out_png, dpi=100)
    return out_png


def write_results(
    runs: Sequence[SweepRun], metrics: Sequence[str], results_dir: str, name: str
) -> dict[str, str]:
    """Collects ``runs`` and writes ``NAME.md``, ``NAME.csv``, ``NAME_runs.csv`` and
    ``NAME.png`` under ``results_dir``; returns their paths by kind."""
    rows, per_run = collect(runs, metrics)
    os.makedirs(results_dir, exist_ok=True)
    paths = {
        kind: os.path.join(results_dir, name + suffix)
        for kind, suffix in (("md", ".md"), ("csv", ".csv"), ("runs_csv", "_runs.csv"))
    }
    paths["png"] = os.path.join(results_dir, name + ".png")
    finished = sum(r.runs for r in rows)
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write(
            f"Final evaluation per α: mean ± std (ddof 1) over seeds; {finished} of "
            f"{len(runs)} runs finished.\n\n"
        )
        f.write(markdown_table(rows, metrics))
    write_csv(rows, metrics, paths["csv"])
    with open(paths["runs_csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["run", "alpha", "seed", *metrics])
        writer.writeheader()
        for record in per_run:
            writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
    plot(rows, metrics, paths["png"])
    return paths
