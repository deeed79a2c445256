"""Run metrics: TensorBoard events, ``metrics.jsonl``, console progress, sample logs, reports.

Everything a run writes goes under its workdir:

- ``metrics.jsonl``: one JSON object per :meth:`MetricsWriter.write` call, ``{"step": s,
  "train/loss": ..., ...}``. Keys are namespaced (``train/``, ``rollout/code/``,
  ``rollout/align/``, ``eval/synthetic/``, ...). Non-finite values are written as
  ``null`` (strict JSON). A step may have several lines (e.g. train metrics, then eval
  metrics); `coderl_jax.reports.read_metrics` merges them.
- ``tensorboard/``: event files written through ``tensorboardX`` (no TensorFlow needed).
  Each scalar's tag is its ``metrics.jsonl`` key, character for character (``pass@1``
  included): TensorBoard takes any string as a tag, and the renaming that
  ``tensorboardX.add_scalar`` does (``pass@1`` -> ``pass_1``, with an INFO line each time)
  is a rule for TensorFlow op names, which these tags are not.
- ``samples.txt``: human-readable generations per kind, every ``samples_every`` steps.
- the console: one line per finished step (`ConsoleProgress`) and one per evaluation.

Storage: the workdir may be any ``etils.epath`` path (``gs://bucket/run``): the files go
through `coderl_jax.storage.AppendFile`, which on an object store keeps each file in
memory and writes it again at most every 30 seconds (always at a checkpoint's
`MetricsWriter.positions` and at `MetricsWriter.close`), and the event files through it
too (`_EventFiles`), not through tensorboardX's own GCS and S3 writers.

Resume: a run restarted from a checkpoint re-runs the steps after it. The loop stores
:meth:`MetricsWriter.positions` (the byte sizes of ``metrics.jsonl`` and ``samples.txt``,
flushed) with every checkpoint; a :class:`MetricsWriter` opened with ``resume_at=`` those
positions cuts both files back to them, so they hold exactly what was written before that
checkpoint (a line torn by a crash, or written after the checkpoint, is gone). Without
positions (checkpoints of older runs), it drops the ``metrics.jsonl`` lines with
``step >= start_step`` and a torn last line instead. TensorBoard is asked to purge events
from ``start_step`` on, and the kept records of those steps are written again. Only process
0 of a multi-host run writes anything.

Reading the file back (aligned columns, the end-of-run summary table and plot) is
`coderl_jax.reports`.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from coderl_jax import storage

METRICS_FILENAME = "metrics.jsonl"
SAMPLES_FILENAME = "samples.txt"
TENSORBOARD_DIRNAME = "tensorboard"
DEFAULT_CONSOLE_KEYS = (
    "train/loss",
    "rollout/code/reward_mean",
    "rollout/align/reward_mean",
)
# Evaluation metrics on the console's evaluation line.
_EVAL_KEY = re.compile(r"^eval/[^/]+/(sampled/)?(pass@1|reward)$")


def _scalar(key: str, value: Any) -> float:
    if not isinstance(key, str) or "/" not in key:
        raise ValueError(f"metric key {key!r} must be namespaced like 'train/loss'")
    array = np.asarray(value)
    is_real = np.issubdtype(array.dtype, np.number) or array.dtype == bool
    if array.size != 1 or not is_real or np.iscomplexobj(array):
        raise ValueError(
            f"metric {key!r} must be a real scalar, got {type(value).__name__} "
            f"with shape {array.shape} and dtype {array.dtype}"
        )
    return float(array.reshape(()))


def _truncate_jsonl(path: str, start_step: int) -> int:
    """Keeps lines with step < start_step; a torn (unparseable) last line is dropped.

    Returns the number of lines dropped. Any other malformed line raises ValueError.
    """
    if not storage.as_path(path).exists():
        return 0
    lines = storage.read_text(path).splitlines()
    kept = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            step = record["step"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            if number == len(lines):
                break  # a write cut short by a crash
            raise ValueError(f"{path}: line {number} is not a metrics record ({e})") from e
        if step < start_step:
            kept.append(line)
    storage.write_atomically(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)


def format_duration(seconds: float) -> str:
    """``3725.4 -> '1h02m05s'``, ``134 -> '2m14s'``, ``16.3 -> '16s'``."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ConsoleProgress:
    """The console: one line per finished step and one per evaluation.

    A step's metrics may arrive in several parts (the trainer writes a step's host metrics
    when it ends and its device metrics one step later): `add` collects them and
    `end_step` prints the step's line once they are all in, every ``every`` steps and for
    the last step::

        step 4 (5/30, 17%) | 2.10 s/step, ETA 52s | train/loss 0.031 | rollout/code/reward_mean 0.25

    ``step 4`` is the step's ``metrics.jsonl`` step, ``5/30`` the steps done. A record
    with ``eval/`` keys is an evaluation: it prints its own line at once, with its duration
    (``time/eval``) and its pass@1 and reward metrics.

    The step time is the mean of the last ``window`` intervals between `end_step` calls,
    each less the evaluation time logged within it, so evaluations never inflate it;
    ETA = step time * steps left (evaluations not included). Lines are plain ``print``s
    (no carriage returns), so they read well in CI and batch logs.
    """

    def __init__(
        self,
        total_steps: int,
        every: int = 1,
        keys: Sequence[str] = DEFAULT_CONSOLE_KEYS,
        window: int = 20,
        clock: Callable[[], float] = time.monotonic,
        print_fn: Callable[[str], None] = print,
    ):
        if total_steps < 1 or every < 1 or window < 1:
            raise ValueError(
                f"total_steps, every and window must be >= 1, got {total_steps}, {every}, {window}"
            )
        self.total_steps, self.every, self.keys = total_steps, every, tuple(keys)
        self._clock, self._print = clock, print_fn
        self._step_times: collections.deque[float] = collections.deque(maxlen=window)
        self._pending: dict[int, dict[str, float]] = {}
        self._last_end: float | None = None  # clock at the last end_step
        self._excluded = 0.0  # evaluation seconds since then

    def seconds_per_step(self) -> float | None:
        """Moving-average step time (evaluations excluded), or None before two steps."""
        return sum(self._step_times) / len(self._step_times) if self._step_times else None

    def add(self, step: int, metrics: Mapping[str, float]) -> str | None:
        """Collects ``metrics`` of ``step``; prints and returns an evaluation's line."""
        if not any(key.startswith("eval/") for key in metrics):
            self._pending.setdefault(step, {}).update(metrics)
            return None
        seconds = metrics.get("time/eval")
        self._excluded += seconds or 0.0
        parts = [f"eval at step {step}" + (f" ({format_duration(seconds)})" if seconds else "")]
        parts += [f"{key} {value:.4g}" for key, value in metrics.items() if _EVAL_KEY.match(key)]
        line = " | ".join(parts)
        self._print(line)
        return line

    def end_step(self, step: int) -> str | None:
        """Marks ``step`` finished (all its metrics added); prints and returns its line if
        it is due."""
        now = self._clock()
        if self._last_end is not None:
            self._step_times.append(max(now - self._last_end - self._excluded, 0.0))
        self._last_end, self._excluded = now, 0.0
        metrics = self._pending.pop(step, {})
        self._pending = {s: m for s, m in self._pending.items() if s > step}
        done = step + 1
        if done % self.every != 0 and done != self.total_steps:
            return None
        parts = [f"step {step} ({done}/{self.total_steps}, {100 * done / self.total_steps:.0f}%)"]
        per_step = self.seconds_per_step()
        if per_step is None:
            parts.append("ETA ?")
        else:
            eta = format_duration(per_step * max(self.total_steps - done, 0))
            parts.append(f"{per_step:.2f} s/step, ETA {eta}")
        parts += [f"{key} {metrics[key]:.4g}" for key in self.keys if key in metrics]
        line = " | ".join(parts)
        self._print(line)
        return line


class MetricsWriter:
    """Writes a run's metrics to TensorBoard, ``metrics.jsonl``, the console and samples.

    Usage::

        with MetricsWriter(workdir, total_steps=200) as mw:
            mw.write(step, {"train/loss": loss, "rollout/code/reward_mean": r})
            mw.end_step(step)  # all of step's metrics are written: its console line
            mw.write_samples(step, "code", [(prompt, completion, reward, {"passed": 3})])
            extras["metrics"] = mw.positions()  # with a checkpoint; resume_at= on restart
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        total_steps: int,
        start_step: int = 0,
        console_every: int = 1,
        samples_every: int = 10,
        console_keys: Sequence[str] = DEFAULT_CONSOLE_KEYS,
        clock: Callable[[], float] = time.monotonic,
        print_fn: Callable[[str], None] = print,
        resume_at: Mapping[str, int] | None = None,
    ):
        """Opens the run's metric files for appending.

        Args:
          workdir: the run directory (created if missing).
          total_steps: steps in the whole run, for the progress line and ETA.
          start_step: first step this process will write: TensorBoard events from it on
            are purged. Use 0 for a fresh run and the checkpoint's next step on resume.
          console_every: print a progress line every this many steps (and the last one).
          samples_every: :meth:`write_samples` writes only on multiples of this.
          console_keys: metrics shown on the progress line when present.
          clock, print_fn: injectable for tests.
          resume_at: `positions` saved with the checkpoint resumed from: the files are cut
            back to them. None: drop ``metrics.jsonl`` lines with ``step >= start_step``.
        """
        if samples_every < 1:
            raise ValueError(f"samples_every must be >= 1, got {samples_every}")
        self.workdir = os.fspath(storage.as_path(workdir))
        self.samples_every = samples_every
        self.is_writer = jax.process_index() == 0
        self.progress = ConsoleProgress(
            total_steps,
            console_every,
            console_keys,
            clock=clock,
            print_fn=print_fn if self.is_writer else lambda line: None,
        )
        self._jsonl = self._tensorboard = self._samples = None
        if not self.is_writer:
            return
        workdir = storage.as_path(self.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        metrics_path, samples_path = workdir / METRICS_FILENAME, workdir / SAMPLES_FILENAME
        if resume_at is not None:
            for name, path in ((METRICS_FILENAME, metrics_path), (SAMPLES_FILENAME, samples_path)):
                _cut(path, int(resume_at.get(name, 0)))
        else:
            _truncate_jsonl(metrics_path, start_step)
        self._jsonl = storage.AppendFile(metrics_path)
        self._samples = storage.AppendFile(samples_path)
        if start_step > 0:
            self._samples.write(f"##### resumed at step {start_step} #####\n")
        # Imported here so processes other than 0 never load it.
        import tensorboardX

        if not storage.is_local(workdir):
            from tensorboardX import record_writer

            scheme = self.workdir.split("://")[0]
            record_writer.register_writer_factory(scheme, _EventFiles())
        self._tensorboard = tensorboardX.SummaryWriter(
            os.fspath(workdir / TENSORBOARD_DIRNAME),
            purge_step=start_step if start_step > 0 else None,
            flush_secs=30,
            # Event file names carry only whole seconds and the host: a quick restart would
            # otherwise overwrite the previous file.
            filename_suffix=f".pid{os.getpid()}.from{start_step}",
        )
        if start_step > 0 and self._jsonl.tell():  # kept records the purge drops
            for line in storage.read_text(metrics_path).splitlines():
                record = json.loads(line)
                step = record.pop("step")
                if step >= start_step:
                    self._add_scalars(step, {k: v for k, v in record.items() if v is not None})

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Logs scalar ``metrics`` (namespaced keys -> numbers / 0-d arrays) for ``step``.

        Also feeds the console (`ConsoleProgress.add`). Non-scalar values raise ValueError.
        """
        values = {key: _scalar(key, value) for key, value in metrics.items()}
        self.progress.add(step, values)
        if not self.is_writer:
            return
        self._check_open()
        record = {"step": int(step)}
        record.update({k: (v if math.isfinite(v) else None) for k, v in values.items()})
        self._jsonl.write(json.dumps(record, allow_nan=False) + "\n")
        self._jsonl.flush_soon()
        self._add_scalars(int(step), values)

    def end_step(self, step: int) -> None:
        """Says every metric of ``step`` is written: prints its console line when due."""
        self.progress.end_step(step)

    def _add_scalars(self, step: int, values: Mapping[str, float]) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        summary = Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
        self._tensorboard._get_file_writer().add_summary(summary, global_step=step)

    def positions(self) -> dict[str, int]:
        """Flushes every file and returns the byte sizes of ``metrics.jsonl`` and
        ``samples.txt`` (``resume_at`` of a restart from a checkpoint saved now)."""
        if not self.is_writer:
            return {}
        self._check_open()
        self.flush()
        return {METRICS_FILENAME: self._jsonl.tell(), SAMPLES_FILENAME: self._samples.tell()}

    def write_samples(
        self,
        step: int,
        kind: str,
        samples: Iterable[tuple[str, str, float, Mapping[str, Any] | None]],
        max_chars: int = 4000,
    ) -> bool:
        """Appends ``(prompt, completion, reward, extra)`` samples of one prompt kind to
        ``samples.txt`` if ``step`` is a multiple of ``samples_every``; texts longer than
        ``max_chars`` are cut in the middle. Returns whether anything was written."""
        if not self.is_writer or step % self.samples_every != 0:
            return False
        self._check_open()
        samples = list(samples)
        out = [f"===== step {step} | {kind} | {len(samples)} samples =====\n"]
        for i, (prompt, completion, reward, extra) in enumerate(samples):
            extra_text = f" | {json.dumps(extra, default=str)}" if extra else ""
            out.append(f"--- {kind} sample {i} | reward {reward:.4g}{extra_text} ---\n")
            out.append(f"[prompt]\n{_clip(prompt, max_chars)}\n")
            out.append(f"[completion]\n{_clip(completion, max_chars)}\n")
        self._samples.write("".join(out))
        self._samples.flush_soon()
        return True

    def flush(self) -> None:
        """Pushes every file to storage: buffered TensorBoard events, and on an object
        store ``metrics.jsonl`` and ``samples.txt`` (local ones are flushed on every
        write)."""
        if self.is_writer and self._jsonl is not None:
            self._jsonl.flush()
            self._samples.flush()
            self._tensorboard.flush()

    def _check_open(self) -> None:
        if self._jsonl is None:
            raise RuntimeError(f"MetricsWriter for {self.workdir} is already closed")

    def close(self) -> None:
        """Flushes and closes all files; later writes raise."""
        if self.is_writer and self._jsonl is not None:
            self._jsonl.close()
            self._samples.close()
            self._tensorboard.close()
            self._jsonl = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _cut(path, size: int) -> None:
    """Cuts ``path`` back to its first ``size`` bytes (what a checkpoint recorded)."""
    if not path.exists():
        if size:
            raise ValueError(
                f"{path} is missing; the checkpoint resumed from recorded {size} bytes"
            )
        return
    have = path.stat().length
    if have < size:
        raise ValueError(
            f"{path} has {have} bytes, fewer than the {size} its checkpoint "
            "recorded: the file was replaced or cut since"
        )
    storage.cut(path, size)


class _EventFiles:
    """tensorboardX's writer factory for a workdir on an object store: event files are
    `storage.AppendFile` objects (written again on each of tensorboardX's flushes, every
    ``flush_secs``), so they need no google-cloud-storage or boto3."""

    def open(self, path: str) -> storage.AppendFile:
        return storage.AppendFile(path)

    def directory_check(self, path: str) -> None:
        pass  # an object store has no directories to create


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} chars cut ...]\n{text[-half:]}"
