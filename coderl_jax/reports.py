"""Reading a run's ``metrics.jsonl`` back: aligned columns, the summary table and plot.

`read_metrics` gives notebooks and studies the metrics as columns; at the end of a run the
loop writes `summary_table` (Markdown first/last/best of the key metrics) to
``summary.md`` and `plot_curves` (the reward and evaluation curves) to ``curves.png``, and
``experiments/run.py`` prints `eval_before_after` (each evaluation score before and after RL).
Paths may be local or any ``etils.epath`` path (``gs://...``; `coderl_jax.storage`).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence

from coderl_jax import storage

_REWARD_KEY = re.compile(r"^rollout/[^/]+/reward_mean$")
# Metrics where smaller is better; everything else (rewards, pass@k, accuracy) is maximised.
_LOWER_IS_BETTER = re.compile(r"(loss|kl|time|_s)$")
# The evaluation's scores (not its outcome and parse counts or its timing).
_EVAL_SCORE = re.compile(r"^eval/.+/(pass@\d+|reward|output_accuracy|variable_accuracy)$")


def read_metrics(jsonl_path: str | os.PathLike) -> dict[str, list]:
    """Reads ``metrics.jsonl`` into aligned columns: ``{"step": [...], key: [...]}``.

    Steps are sorted and unique (lines of the same step are merged, later lines win);
    a key missing at a step is None there, so ``pandas.DataFrame(read_metrics(p))`` works.
    """
    by_step: dict[int, dict[str, float | None]] = {}
    for number, line in enumerate(storage.read_text(jsonl_path).splitlines(), start=1):
        try:
            record = json.loads(line)
            step = int(record.pop("step"))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{jsonl_path}: line {number} is not a metrics record ({e})") from e
        by_step.setdefault(step, {}).update(record)
    steps = sorted(by_step)
    keys = sorted({key for record in by_step.values() for key in record})
    columns: dict[str, list] = {"step": steps}
    for key in keys:
        columns[key] = [by_step[step].get(key) for step in steps]
    return columns


def _series(columns: Mapping[str, list], key: str) -> tuple[list[int], list[float]]:
    pairs = [(s, v) for s, v in zip(columns["step"], columns[key]) if v is not None]
    return [s for s, _ in pairs], [v for _, v in pairs]


def default_summary_keys(keys: Iterable[str]) -> list[str]:
    """The key metrics: ``train/loss``, every ``rollout/<kind>/reward_mean`` and ``eval/*``."""
    keys = sorted(keys)
    return (
        [k for k in keys if k == "train/loss"]
        + [k for k in keys if _REWARD_KEY.match(k)]
        + [k for k in keys if k.startswith("eval/")]
    )


def summary_table(jsonl_path: str | os.PathLike, keys: Sequence[str] | None = None) -> str:
    """Markdown table of the first, last and best value (and its step) of each metric.

    ``keys`` defaults to :func:`default_summary_keys`. "Best" is the minimum for losses,
    KL and times, the maximum otherwise (rewards, pass@k).
    """
    columns = read_metrics(jsonl_path)
    keys = default_summary_keys(k for k in columns if k != "step") if keys is None else keys
    rows = ["| metric | first | last | best | best step |", "|---|---|---|---|---|"]
    for key in keys:
        if key not in columns:
            raise KeyError(f"{jsonl_path}: no metric {key!r} (have {sorted(columns)[:20]})")
        steps, values = _series(columns, key)
        if not values:
            rows.append(f"| {key} | - | - | - | - |")
            continue
        pick = min if _LOWER_IS_BETTER.search(key) else max
        best_index = values.index(pick(values))
        rows.append(
            f"| {key} | {values[0]:.4g} (step {steps[0]}) | {values[-1]:.4g} (step {steps[-1]}) "
            f"| {values[best_index]:.4g} | {steps[best_index]} |"
        )
    return "\n".join(rows) + "\n"


def plot_curves(jsonl_path: str | os.PathLike, out_png: str | os.PathLike) -> str:
    """Writes a PNG with the rollout reward curves (one per prompt kind) and the eval
    metrics against step. Uses matplotlib's Agg canvas directly (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = read_metrics(jsonl_path)
    reward_keys = [k for k in columns if _REWARD_KEY.match(k)]
    eval_keys = [k for k in columns if k.startswith("eval/") and "pass@" in k]
    figure = Figure(figsize=(11, 4), layout="constrained")
    FigureCanvasAgg(figure)
    reward_axes, eval_axes = figure.subplots(1, 2)
    for axes, keys, title, marker in (
        (reward_axes, reward_keys, "rollout reward (mean)", None),
        (eval_axes, eval_keys, "evaluation", "o"),
    ):
        for key in keys:
            axes.plot(*_series(columns, key), label=key, marker=marker)
        axes.set_title(title)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
        if keys:
            axes.legend(fontsize="small")
        else:
            axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    image = io.BytesIO()
    figure.savefig(image, format=storage.as_path(out_png).suffix[1:] or "png", dpi=100)
    storage.write_atomically(out_png, image.getvalue())
    return os.fspath(out_png)


def eval_before_after(jsonl_path: str | os.PathLike) -> str:
    """Plain-text table of every evaluation score at the run's first evaluation (before RL,
    step 0 unless the first evaluation was skipped) and its last (after RL), with the change.

    Scores are pass@k, reward and the accuracies, greedy and ``sampled/``; one column when
    the run evaluated once. Empty text when it never evaluated.
    """
    columns = read_metrics(jsonl_path)
    keys = [k for k in columns if _EVAL_SCORE.match(k)]
    if not keys:
        return ""
    eval_steps = sorted({s for k in keys for s in _series(columns, k)[0]})
    first, last = eval_steps[0], eval_steps[-1]
    by_step = dict(zip(columns["step"], range(len(columns["step"]))))
    width = max(len(k) for k in keys)
    if first == last:
        lines = [f"{'evaluation':<{width}}  {f'step {first}':>9}"]
    else:
        lines = [
            f"{'evaluation':<{width}}  {f'step {first}':>9}  {f'step {last}':>9}  {'change':>7}"
        ]
    for key in keys:
        before, after = (columns[key][by_step[s]] for s in (first, last))
        cells = ["-" if v is None else f"{v:.4f}" for v in (before, after)]
        if first == last:
            lines.append(f"{key:<{width}}  {cells[0]:>9}")
            continue
        change = "-" if None in (before, after) else f"{after - before:+.4f}"
        lines.append(f"{key:<{width}}  {cells[0]:>9}  {cells[1]:>9}  {change:>7}")
    return "\n".join(lines) + "\n"
