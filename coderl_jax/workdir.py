"""A run's directory: what it records about the run, and whether a restart may resume it.

::

    <workdir>/config.json       the resolved `Config` (every setting, derived ones included)
    <workdir>/flags.txt         the command line that started it, flagfiles expanded
                                (experiments/run.py; ``--flagfile=<workdir>/flags.txt``
                                starts the same run again)
    <workdir>/checkpoints/<s>/  `coderl_jax.checkpoint`
    <workdir>/metrics.jsonl, tensorboard/, samples.txt    `coderl_jax.metrics`
    <workdir>/reference_hf/     the KL term's reference policy (after the warm start)
    <workdir>/summary.md, curves.png, hf/    end-of-run reports and the HF export

A run started on a workdir that holds a checkpoint resumes it, so it must be the same run:
`check_resume` compares the new config with the saved ``config.json`` and raises
`ConfigChangedError` listing every setting that changed, unless the change leaves the
steps already run as they were (`RESUMABLE`: the run's length, its cadences, where data
lives) or ``run.allow_config_change`` is set. `record` writes both files, each atomically;
when the config changed, the earlier files are kept as ``config.before_step_<s>.json`` and
``flags.before_step_<s>.txt`` (``s``: the checkpoint resumed from).

The workdir may be any ``etils.epath`` path, e.g. ``gs://bucket/runs/x`` (shared by the
hosts of a pod); `coderl_jax.storage` says how files are written there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from coderl_jax import storage
from coderl_jax.settings import ConfigError, fields_of

if TYPE_CHECKING:
    from coderl_jax.config import Config

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
FLAGS_FILE = "flags.txt"
CHECKPOINTS_DIR = "checkpoints"
# Settings a resumed run may change: none of them changes a step already run.
RESUMABLE = frozenset(
    {
        "run.workdir",
        "run.steps",  # the learning-rate schedule's length follows (train.decay_steps)
        "run.log_every",
        "run.samples_every",
        "run.checkpoint_every",
        "run.keep_checkpoints",
        "run.keep_period",
        "run.export_hf",
        "run.allow_config_change",
        "eval.every_steps",
        "rollout.num_sandbox_workers",
        "data.data_dir",
        "data.manual_dir",
        "model.tiny_dir",
    }
)


class ConfigChangedError(ConfigError):
    """A restart's config differs from the one its workdir's run was saved with.

    ``changes`` lists ``(setting path, saved value, new value)``."""

    def __init__(self, workdir: str, changes: list[tuple[str, Any, Any]]):
        shown = "; ".join(f"{path} {old!r} -> {new!r}" for path, old, new in changes)
        super().__init__(
            "run.workdir",
            f"{workdir} holds a run saved with another config ({shown}); set "
            "allow_config_change to resume it with the new settings, or use another workdir",
        )
        self.workdir, self.changes = workdir, changes


def checkpoint_steps(workdir: str | os.PathLike) -> list[int]:
    """The finished checkpoint steps in ``workdir``, ascending: the step directories that
    orbax finalised (a save cut short is a temporary directory, or on an object store one
    without orbax's ``commit_success.txt``, and is not listed)."""
    directory = storage.as_path(workdir) / CHECKPOINTS_DIR
    if not directory.is_dir():
        return []
    from orbax.checkpoint import utils as orbax_utils  # only where there are checkpoints

    return sorted(
        int(path.name)
        for path in directory.iterdir()
        if path.name.isdigit() and orbax_utils.is_checkpoint_finalized(path)
    )


def settings(config: Config) -> dict[str, Any]:
    """``{setting path: value}`` of every setting of ``config``."""
    return {s.path: s.default for s in fields_of(config)}


def config_changes(saved: Config, new: Config) -> list[tuple[str, Any, Any]]:
    """``(path, saved value, new value)`` of every setting that differs, except the
    `RESUMABLE` ones (and a learning-rate schedule length that follows ``run.steps``)."""
    old, now = settings(saved), settings(new)
    changes = [(p, old[p], now[p]) for p in now if old.get(p) != now[p] and p not in RESUMABLE]
    if _decay_follows_steps(old) and _decay_follows_steps(now):
        changes = [c for c in changes if c[0] != "train.decay_steps"]
    return changes


def _decay_follows_steps(values: dict[str, Any]) -> bool:
    updates = values["run.steps"] * values["train.ppo_epochs"] * values["train.num_mini_batches"]
    return values["train.decay_steps"] == max(1, updates)


def check_resume(config: Config) -> None:
    """Raises `ConfigChangedError` if ``config`` would resume a checkpoint of its workdir
    that was saved with other settings (see the module docstring), or `ConfigError` if the
    saved config cannot be read; with ``run.allow_config_change`` it logs them instead."""
    from coderl_jax.config import Config

    workdir = storage.as_path(config.run.workdir)
    path = workdir / CONFIG_FILE
    if not checkpoint_steps(workdir) or not path.exists():
        return
    allow = config.run.allow_config_change
    try:
        saved = Config.load(path)
    except (OSError, ValueError, TypeError) as e:
        if not allow:
            raise ConfigError(
                "run.workdir",
                f"{path} cannot be read ({e}), so whether this run's config matches the "
                "saved run's is unknown; set allow_config_change to resume anyway, or use "
                "another workdir",
            ) from None
        log.warning("resuming %s although its %s cannot be read: %s", workdir, CONFIG_FILE, e)
        return
    changes = config_changes(saved, config)
    if changes and not allow:
        raise ConfigChangedError(os.fspath(workdir), changes)
    if changes:
        log.warning("resuming %s with changed settings: %s", workdir, changes)


def record(config: Config, flags: Sequence[str] | None = None, command: str | None = None) -> None:
    """Writes ``config.json`` (and, given ``flags``, ``flags.txt``: one flag a line, after a
    comment with ``command``, the command line as typed) into the run's workdir."""
    workdir = storage.as_path(config.run.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / CONFIG_FILE
    text = json.dumps(config.to_json(), indent=2) + "\n"
    steps = checkpoint_steps(workdir)
    if steps and config_path.exists() and storage.read_text(config_path) != text:
        for name in (CONFIG_FILE, FLAGS_FILE):
            stem, ext = os.path.splitext(name)
            if (workdir / name).exists():  # an object store copies and deletes (no rename)
                (workdir / name).replace(workdir / f"{stem}.before_step_{steps[-1]}{ext}")
    storage.write_atomically(config_path, text)
    if flags is not None:
        header = [
            "# experiments/run.py flags of this run, flagfiles expanded (later ones win).",
            f"# Started as: {command}" if command else None,
            f"# Run it again with --flagfile={workdir / FLAGS_FILE}",
        ]
        lines = [line for line in header if line] + list(flags)
        storage.write_atomically(workdir / FLAGS_FILE, "\n".join(lines) + "\n")
