"""`Config`: a whole CodeRL+ run, composed of the sections that the modules own.

Each section is a frozen dataclass defined by the module that uses it, with a comment on
every field (`coderl_jax.settings`):

| section | class | owner |
| --- | --- | --- |
| ``run`` | `RunConfig` | `coderl_jax.loop` (lifecycle: workdir, steps, cadences) |
| ``model`` | `ModelSourceConfig` | `coderl_jax.learner` (where the policy comes from) |
| ``data`` | `DataConfig` | `coderl_jax.data.sources` |
| ``rollout`` | `RolloutConfig` (with `SamplingConfig`) | `coderl_jax.rl.rollout` |
| ``alignment`` | `AlignmentTaskConfig` (`MixtureConfig`, `AlignmentConfig`) | `coderl_jax.rl.mixture` |
| ``train`` | `TrainConfig` | `coderl_jax.train.config` |
| ``warm_start`` | `WarmStartConfig` | `coderl_jax.train.warmstart` |
| ``eval`` | `EvalConfig` | `coderl_jax.evals.periodic` |

This module composes them, derives the settings that follow from other sections
(`Config.__post_init__`: a field left at ``None`` below takes its value from the one named)
and checks what spans sections. `flag_names` names every setting's command-line flag:
`experiments/config_flags.py` generates the flags from the dataclasses, so a setting is
written once, where its section defines it. The config is saved as JSON in the workdir
(`to_json`) and read back by `coderl_jax.loop.load`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from typing import Any

from coderl_jax import storage
from coderl_jax.data.sources import DataConfig
from coderl_jax.evals.periodic import EvalConfig
from coderl_jax.learner import ModelSourceConfig
from coderl_jax.loop import RunConfig
from coderl_jax.models.sampler import SamplingConfig
from coderl_jax.models.tiny import TinyModelSpec
from coderl_jax.rl.alignment import AlignmentConfig
from coderl_jax.rl.mixture import AlignmentTaskConfig, MixtureConfig
from coderl_jax.rl.rollout import RolloutConfig
from coderl_jax.settings import ConfigError, Semantics, check_choices, fields_of, require
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.warmstart import WarmStartConfig

__all__ = [
    "AlignmentConfig",
    "AlignmentTaskConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "MixtureConfig",
    "ModelSourceConfig",
    "RolloutConfig",
    "RunConfig",
    "SamplingConfig",
    "TinyModelSpec",
    "TrainConfig",
    "WarmStartConfig",
    "flag_names",
]

# Settings that follow from others, and where they come from. "derived" ones are always
# overwritten; "default" ones only when left at None (they are settings of their own).
DERIVED = {
    "rollout.semantics": "semantics",
    "alignment.conversion.semantics": "semantics",
    "alignment.mixture.semantics": "semantics",
    "train.temperature": "the sampling temperature (1 when greedy), so the loss scores the "
    "distribution the sampler draws from",
    "rollout.sampling.stop_ids": "the tokenizer's end-of-turn ids, set at start-up",
    "rollout.sampling.pad_id": "the tokenizer's pad id, set at start-up",
}
DEFAULTS_FROM = {
    "rollout.alignment_reward_mode": "semantics",
    "data.seed": "run.seed",
    "train.decay_steps": "all the run's optimizer updates (steps x ppo_epochs x num_mini_batches)",
    "alignment.conversion.max_prompt_tokens": "data.max_prompt_tokens",
}

# Command-line flag names: a setting's field name, after its section's prefix; the names
# below are kept from before the flags were generated (flagfiles use them).
FLAG_PREFIXES = {"model.tiny": "tiny_", "alignment": "alignment_", "warm_start": "warm_start_"}
FLAG_PREFIXES |= {"eval": "eval_", "alignment.mixture": "", "alignment.conversion": ""}
FLAG_NAMES = {
    "data.seed": "data_seed",
    "eval.every_steps": "eval_every",
    "alignment.buffer_capacity": "buffer_capacity",
    "alignment.mixture.sampling": "buffer_sampling",
    "alignment.conversion.prompt_style": "alignment_prompt_style",
    "alignment.conversion.max_prompt_tokens": "alignment_max_prompt_tokens",
}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole CodeRL+ run (see the module docstring for the sections)."""

    run: RunConfig = RunConfig()
    model: ModelSourceConfig = ModelSourceConfig()
    data: DataConfig = DataConfig()
    rollout: RolloutConfig = RolloutConfig()
    alignment: AlignmentTaskConfig = AlignmentTaskConfig()
    train: TrainConfig = TrainConfig()
    warm_start: WarmStartConfig = WarmStartConfig()
    eval: EvalConfig = EvalConfig()
    # Rules that decide rewards and alignment tasks: "official" (the official CodeRL+ code,
    # quirks included) or "improved" (this project's; README, "Fidelity").
    semantics: Semantics = "improved"

    def __post_init__(self):
        check_choices(self)
        sampling = self.rollout.sampling
        updates = self.run.steps * self.train.ppo_epochs * self.train.num_mini_batches
        train = self.train.replace(
            temperature=1.0 if sampling.is_greedy else sampling.temperature,
            decay_steps=self.train.decay_steps or max(1, updates),
        )
        conversion = dataclasses.replace(self.alignment.conversion, semantics=self.semantics)
        if conversion.max_prompt_tokens is None:
            conversion = dataclasses.replace(
                conversion, max_prompt_tokens=self.data.max_prompt_tokens
            )
        data = self.data
        if data.seed is None:
            data = dataclasses.replace(data, seed=self.run.seed)
        object.__setattr__(self, "train", train)
        object.__setattr__(self, "data", data)
        mixture = dataclasses.replace(self.alignment.mixture, semantics=self.semantics)
        object.__setattr__(
            self,
            "alignment",
            dataclasses.replace(self.alignment, conversion=conversion, mixture=mixture),
        )
        mode = self.rollout.alignment_reward_mode or self.semantics
        rollout = dataclasses.replace(
            self.rollout, semantics=self.semantics, alignment_reward_mode=mode
        )
        object.__setattr__(self, "rollout", rollout)
        require(
            (mode == "official") == (self.semantics == "official"),
            "rollout.alignment_reward_mode",
            f"{mode} does not score the labels that semantics={self.semantics} makes "
            "(official labels need the official reward; leave it unset to follow --semantics)",
        )
        chunks = self.rollout.overlap_chunks
        require(
            self.rollout.prompts_per_step % chunks == 0,
            "rollout.overlap_chunks",
            f"must divide prompts_per_step ({self.rollout.prompts_per_step}), got {chunks}",
        )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the config as JSON to ``path`` (local or ``gs://...``: `coderl_jax.storage`)."""
        storage.write_atomically(path, json.dumps(self.to_json(), indent=2))

    @classmethod
    def from_json(cls, d: dict) -> Config:
        d = json.loads(json.dumps(d))  # a copy to adapt
        rollout = d.get("rollout", {})
        if "semantics" not in d and rollout.get("alignment_reward_mode") == "official":
            # Saved before the official semantics existed: "official" then meant the
            # official formula over this project's parser and comparator, today "improved".
            rollout["alignment_reward_mode"] = "improved"
        return from_dict(cls, d)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Config:
        """Reads a config `save` wrote (local or ``gs://...``)."""
        return cls.from_json(json.loads(storage.read_text(path)))


def flag_names() -> dict[str, str]:
    """``{setting path: flag name}`` for every setting a user sets (the derived ones above
    are not flags). Raises if two settings would share a flag."""
    names: dict[str, str] = {}
    for setting in fields_of(Config):
        if setting.path in DERIVED:
            continue
        section = setting.path.rpartition(".")[0]
        prefix = next(
            (p for s, p in sorted(FLAG_PREFIXES.items(), key=lambda i: -len(i[0])) if
             section == s or section.startswith(s + ".")),
            "",
        )  # fmt: skip
        names[setting.path] = FLAG_NAMES.get(setting.path, prefix + setting.name)
    clashes = {n for n in names.values() if list(names.values()).count(n) > 1}
    if clashes:
        raise RuntimeError(f"settings share the flags {sorted(clashes)}: add them to FLAG_NAMES")
    return names


def from_dict(cls, d: dict, path: str = ""):
    """Rebuilds nested frozen dataclasses from `dataclasses.asdict` output (lists become
    tuples). A bad value raises `ConfigError` with the setting's dotted path."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    for field in dataclasses.fields(cls):
        if field.name not in d:
            continue
        value, hint = d[field.name], hints[field.name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{path}{field.name}.")
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[field.name] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise e.within(path.rstrip(".")) if path and "." not in e.field else e from None
