"""A study's results: final metrics of each run, statistics over seeds, table and plot.

Each finished run contributes the last logged value of every metric in its
``metrics.jsonl`` (its final evaluation: step 0 for the warm start and sft_continue, which
make no RL steps, the last RL step for the RL arms), and what its phase trained on:

* warm start and sft_continue: the supervised phase's totals (``warm_start/updates``,
  ``sequences``, ``alignment_sequences``, ``tokens``, ``tokens_total``);
* RL arms: the RL steps' ``train/updates``, and ``train/sequences``, ``rollout/align/count``,
  ``train/tokens`` (loss tokens) and ``train/tokens_total`` times ``ppo_epochs`` (each
  epoch trains on the batch again), summed over the steps.

Statistics over seeds (n = seeds with a value):

* per arm and metric: the mean and its standard error, s / sqrt(n) with s the sample
  standard deviation (ddof 1);
* per comparison (every arm vs sft_continue, coderl_plus vs grpo): the paired difference
  d_S = a_S - b_S over the seeds S that both arms have, its mean, standard error and 95%
  confidence interval mean ± t(0.975, n - 1) · se, with the t quantile computed exactly
  (`t_quantile`). An interval that excludes 0 is shown in bold.

Outputs under the results directory: ``NAME.md`` (the three tables and how the study was
run), ``NAME.csv`` (the same numbers, one line per row, metric and statistic),
``NAME_runs.csv`` (every run's values) and ``NAME.png`` (arms per metric, then the paired
differences with their intervals).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from study_plan import SFT_CONTINUE, WARM_START, Study, StudyRun

from coderl_jax.metrics import METRICS_FILENAME
from coderl_jax.reports import read_metrics

# Code generation on unseen programs (greedy; sampled at the policy's temperature) and on
# unseen families, then execution reasoning on unseen programs.
DEFAULT_METRICS = (
    "eval/synthetic/pass@1",
    "eval/synthetic/sampled/pass@1",
    "eval/synthetic_heldout/pass@1",
    "eval/synthetic_heldout/sampled/pass@1",
    "eval/synthetic_alignment/output_accuracy",
    "eval/synthetic_alignment/variable_accuracy",
    "eval/synthetic_alignment/reward",
    "eval/synthetic_reasoning/pass@1",
)
# What each phase trained on (per-run columns; the compute table).
COMPUTE = ("updates", "sequences", "alignment_sequences", "tokens", "tokens_total")
CONFIDENCE = 0.95


# --- Statistics ----------------------------------------------------------------------------


def t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` >= 1 degrees of freedom (an integer): the
    closed forms of Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df)."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    total, term = 0.0, (c if df % 2 else 1.0)
    for j in range(1, (df - 1) // 2 + 1 if df % 2 else df // 2 + 1):
        total += term
        term *= c * c * ((2 * j) / (2 * j + 1) if df % 2 else (2 * j - 1) / (2 * j))
    return 2 / math.pi * (theta + s * total) if df % 2 else s * total


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile (0.5 < q < 1) of Student's t with ``df`` degrees of freedom, by
    bisection on `t_two_sided_mass` to float precision."""
    if not 0.5 < q < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < q < 1 and df >= 1, got q={q}, df={df}")
    target, lo, hi = 2 * q - 1, 0.0, 1.0
    while t_two_sided_mass(hi, df) < target:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_mass(mid, df) < target else (lo, mid)
        if hi - lo <= 1e-15 * hi:
            break
    return (lo + hi) / 2


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean over n seeds, its standard error (None below 2 values) and, for a paired
    difference, its confidence interval (low, high)."""

    n: int
    mean: float | None = None
    se: float | None = None
    low: float | None = None
    high: float | None = None
    difference: bool = False  # shown with its sign

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        x = np.asarray(values, np.float64)
        if x.size == 0:
            return cls(0)
        se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None
        return cls(int(x.size), float(x.mean()), se)

    @classmethod
    def paired(cls, a: Mapping[int, float], b: Mapping[int, float]) -> Estimate:
        """a - b over the seeds both have, with its ``CONFIDENCE`` interval (t, n - 1 df)."""
        diff = dataclasses.replace(
            cls.of([a[s] - b[s] for s in sorted(set(a) & set(b))]), difference=True
        )
        if diff.se is None:
            return diff
        half = t_quantile(0.5 + CONFIDENCE / 2, diff.n - 1) * diff.se
        return dataclasses.replace(diff, low=diff.mean - half, high=diff.mean + half)

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)

    def text(self, digits: int = 3) -> str:
        if self.mean is None:
            return "n/a"
        if self.low is not None:
            out = f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"
            return f"**{out}** ({self.n})" if self.excludes_zero else f"{out} ({self.n})"
        sign = "+" if self.difference else ""
        se = "" if self.se is None else f" ± {self.se:.{digits}f}"
        return f"{self.mean:{sign}.{digits}f}{se} ({self.n})"


# --- Reading runs --------------------------------------------------------------------------


def run_record(run: StudyRun, metrics: Sequence[str]) -> dict:
    """A finished run's final metric values (None where never logged) and its phase's
    compute (``phase/<name>`` for each of `COMPUTE`)."""
    columns = read_metrics(os.path.join(run.workdir, METRICS_FILENAME))

    def values(key: str) -> list[float]:
        return [float(v) for v in columns.get(key, []) if v is not None]

    record = {"run": run.name, "arm": run.arm.name if run.arm else WARM_START, "seed": run.seed}
    for name in metrics:
        record[name] = values(name)[-1] if values(name) else None
    if run.arm is None or not run.arm.is_rl:
        for name in COMPUTE:
            record[f"phase/{name}"] = (values(f"warm_start/{name}") or [None])[-1]
        return record
    with open(os.path.join(run.workdir, "config.json"), encoding="utf-8") as f:
        epochs = json.load(f)["train"]["ppo_epochs"]
    rl_keys = {
        "updates": ("train/updates", 1),
        "sequences": ("train/sequences", epochs),
        "alignment_sequences": ("rollout/align/count", epochs),
        "tokens": ("train/tokens", epochs),
        "tokens_total": ("train/tokens_total", epochs),
    }
    for name, (key, factor) in rl_keys.items():
        record[f"phase/{name}"] = sum(values(key)) * factor if values(key) else None
    return record


def collect(study: Study, metrics: Sequence[str]) -> list[dict]:
    """The records (`run_record`) of the study's finished runs, in plan order."""
    return [run_record(run, metrics) for run in study.runs() if run.is_finished()]


# --- Tables --------------------------------------------------------------------------------


def row_names(study: Study) -> list[str]:
    return [WARM_START, *study.arms]


def comparisons(study: Study) -> list[tuple[str, str]]:
    """(a, b) pairs reported as a - b: each other arm vs sft_continue, coderl_plus vs grpo."""
    pairs = [(arm, SFT_CONTINUE) for arm in study.arms if arm != SFT_CONTINUE]
    pairs = pairs if SFT_CONTINUE in study.arms else []
    if {"coderl_plus", "grpo"} <= set(study.arms):
        pairs.append(("coderl_plus", "grpo"))
    return pairs


def by_seed(records: Sequence[dict], row: str, key: str) -> dict[int, float]:
    return {r["seed"]: r[key] for r in records if r["arm"] == row and r.get(key) is not None}


def arm_estimates(study: Study, records, metrics) -> dict[str, dict[str, Estimate]]:
    """{row (warm_start, then the arms): {metric: mean ± se over seeds}}."""
    return {
        row: {m: Estimate.of(list(by_seed(records, row, m).values())) for m in metrics}
        for row in row_names(study)
    }


def difference_estimates(study: Study, records, metrics) -> dict[str, dict[str, Estimate]]:
    """{"a - b": {metric: paired difference with its interval}}."""
    return {
        f"{a} - {b}": {
            m: Estimate.paired(by_seed(records, a, m), by_seed(records, b, m)) for m in metrics
        }
        for a, b in comparisons(study)
    }


def compute_estimates(study: Study, records) -> dict[str, dict[str, Estimate]]:
    keys = [f"phase/{name}" for name in COMPUTE]
    return arm_estimates(study, records, keys)


def markdown(study: Study, records, metrics, command: str) -> str:
    arms = arm_estimates(study, records, metrics)
    diffs = difference_estimates(study, records, metrics)
    compute = compute_estimates(study, records)
    finished = {r["run"] for r in records}
    runs = study.runs()
    overrides = " ".join(study.overrides) or "none"
    sft = ""
    if SFT_CONTINUE in study.arms:
        # The flags in effect: an --sft_overrides flag replaces the protocol's of that name.
        flags = {f"--{k}": f"--{k}={v}" for k, v in study.sft_settings.items()}
        flags.update((flag.split("=", 1)[0], flag) for flag in study.sft_overrides)
        sft = f"sft_continue: `{' '.join(flags.values())}` (plus `--steps=0` and its own data order). "
    lines = [
        f"# Study: {', '.join(study.arms)} from a shared warm start per seed",
        "",
        f"Base `{study.base_flagfile}`, overrides `{overrides}`; seeds "
        f"{', '.join(map(str, study.seeds))}; {len(finished)} of {len(runs)} runs finished "
        f"(warm starts included). {sft}Regenerate: `{command}`",
        "",
        "## Final evaluation: mean ± standard error over seeds (n)",
        "",
        "| metric | " + " | ".join(arms) + " |",
        "|---|" + "---|" * len(arms),
    ]
    for m in metrics:
        lines.append(f"| {m} | " + " | ".join(arms[row][m].text() for row in arms) + " |")
    if diffs:
        lines += [
            "",
            f"## Paired differences (same seed): mean [{CONFIDENCE:.0%} CI, t with n-1 df] (n)",
            "",
            "Bold: the interval excludes 0.",
            "",
            "| metric | " + " | ".join(diffs) + " |",
            "|---|" + "---|" * len(diffs),
        ]
        for m in metrics:
            lines.append(f"| {m} | " + " | ".join(diffs[d][m].text() for d in diffs) + " |")
    lines += [
        "",
        "## What each phase trained on (mean over seeds)",
        "",
        "| phase | optimizer updates | sequences | alignment share | loss tokens | all tokens |",
        "|---|---|---|---|---|---|",
    ]
    for row, values in compute.items():
        mean = {k.removeprefix("phase/"): v.mean for k, v in values.items()}
        if mean["updates"] is None:
            continue
        share = (mean["alignment_sequences"] or 0) / mean["sequences"] if mean["sequences"] else 0
        cells = [f"{mean[k]:,.0f}" if mean[k] is not None else "n/a" for k in COMPUTE]
        lines.append(f"| {row} | {cells[0]} | {cells[1]} | {share:.2f} | {cells[3]} | {cells[4]} |")
    rl_arm = next((a.name for a in study.parsed_arms() if a.alpha == study.coderl_plus_alpha), None)
    sft, rl = compute.get(SFT_CONTINUE), compute.get(rl_arm)
    if sft and rl and all(sft[k].mean and rl[k].mean for k in sft):
        ratios = ", ".join(
            f"{k.removeprefix('phase/').replace('_', ' ')} x{sft[k].mean / rl[k].mean:.2f}"
            for k in sft
        )
        lines += ["", f"sft_continue relative to {rl_arm} (same data mix): {ratios}."]
    return "\n".join(lines) + "\n"


def write_csv(study: Study, records, metrics, path: str) -> None:
    """One line per (section, row, metric): n, mean, se, ci_low, ci_high (empty: none)."""
    sections = {
        "arm": arm_estimates(study, records, metrics),
        "difference": difference_estimates(study, records, metrics),
        "compute": compute_estimates(study, records),
    }
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["section", "row", "metric", "n", "mean", "se", "ci_low", "ci_high"])
        for section, rows in sections.items():
            for row, estimates in rows.items():
                for metric, e in estimates.items():
                    cells = [e.mean, e.se, e.low, e.high]
                    cells = ["" if v is None else v for v in cells]
                    writer.writerow([section, row, metric, e.n, *cells])


def write_runs_csv(records: Sequence[dict], metrics, path: str) -> None:
    header = ["run", "arm", "seed", *metrics, *(f"phase/{name}" for name in COMPUTE)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        for record in records:
            writer.writerow({k: ("" if record[k] is None else record[k]) for k in header})


def plot(study: Study, records, metrics, out_png: str) -> str:
    """Top: per metric, each arm's seeds (dots) and mean ± se, the warm start's mean as a
    dashed line. Below: per metric, the paired differences with their 95% intervals."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    arms = arm_estimates(study, records, metrics)
    diffs = difference_estimates(study, records, metrics)
    cols = min(4, len(metrics))
    blocks = -(-len(metrics) // cols)
    panel_rows = blocks * (2 if diffs else 1)
    figure = Figure(figsize=(4.2 * cols, 3.6 * panel_rows), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(panel_rows, cols, squeeze=False)
    for block in (grid[:blocks], grid[blocks:]):  # the panels no metric uses
        for axes in block.flat[len(metrics) :]:
            axes.set_visible(False)
    for i, metric in enumerate(metrics):
        axes = grid[i // cols][i % cols]
        names = list(study.arms)
        for x, name in enumerate(names):
            seeds = list(by_seed(records, name, metric).values())
            axes.plot([x] * len(seeds), seeds, ".", color="0.6")
            e = arms[name][metric]
            if e.mean is not None:
                axes.errorbar([x], [e.mean], yerr=[e.se or 0.0], fmt="o", color="C0", capsize=4)
        if arms[WARM_START][metric].mean is not None:
            axes.axhline(arms[WARM_START][metric].mean, ls="--", color="C1", label="warm start")
            axes.legend(fontsize="small")
        axes.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize="small")
        axes.set_xlim(-0.5, len(names) - 0.5)
        axes.set_title(metric, fontsize="medium")
        axes.grid(alpha=0.3)
        if not diffs:
            continue
        axes = grid[blocks + i // cols][i % cols]
        names = list(diffs)
        for x, name in enumerate(names):
            e = diffs[name][metric]
            if e.mean is not None:
                err = [[e.mean - e.low], [e.high - e.mean]] if e.low is not None else None
                color = "C3" if e.excludes_zero else "C0"
                axes.errorbar([x], [e.mean], yerr=err, fmt="s", color=color, capsize=4)
        axes.axhline(0.0, color="0.3", lw=0.8)
        axes.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize="small")
        axes.set_xlim(-0.5, len(names) - 0.5)
        axes.set_title(f"{metric}\npaired difference, {CONFIDENCE:.0%} CI", fontsize="medium")
        axes.grid(alpha=0.3)
    figure.savefig(out_png, dpi=90)
    return out_png


def write_results(
    study: Study, metrics: Sequence[str], results_dir: str, name: str, command: str
) -> dict[str, str]:
    """Collects the study and writes ``NAME.md``, ``NAME.csv``, ``NAME_runs.csv`` and
    ``NAME.png`` under ``results_dir``; returns their paths by kind."""
    records = collect(study, metrics)
    os.makedirs(results_dir, exist_ok=True)
    paths = {
        kind: os.path.join(results_dir, name + suffix)
        for kind, suffix in (("md", ".md"), ("csv", ".csv"), ("runs_csv", "_runs.csv"))
    }
    paths["png"] = os.path.join(results_dir, name + ".png")
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write(markdown(study, records, metrics, command))
    write_csv(study, records, metrics, paths["csv"])
    write_runs_csv(records, metrics, paths["runs_csv"])
    plot(study, records, metrics, paths["png"])
    return paths
