"""The learner: everything a run or a notebook works with, built from a `Config`.

`setup(config)` makes the device mesh, loads the policy (an HF checkpoint, or the embedded
tiny model, built and cached on first use) onto its shardings, the tokenizer, the rollout
sampler and the alignment buffer, and restores the latest checkpoint of the run's workdir
if there is one (otherwise the state starts from the initial weights, or from another
run's params with ``init_from``). `load(workdir)` does the same, read-only, from a saved
run's config: the notebook entry (`coderl_jax.loop.load` re-exports it).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import jax
import numpy as np

from coderl_jax.checkpoint import Checkpointer
from coderl_jax.config import Config
from coderl_jax.data import sources
from coderl_jax.data.builders import synthetic_config
from coderl_jax.evals.benchmarks import DataOptions, check_names
from coderl_jax.models import hf_io, tiny
from coderl_jax.models import tokenizer as tokenizer_lib
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.sampler import Sampler
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.parallel import multihost
from coderl_jax.rl.alignment_buffer import AlignmentBuffer
from coderl_jax.train import state as state_lib

log = logging.getLogger(__name__)

REFERENCE_DIR = "reference_hf"  # initial policy (after warm start / init_from), for the KL
CONFIG_FILE = "config.json"


@dataclasses.dataclass
class Learner:
    """Everything a run (or a notebook) works with. Built by `setup`; `load` restores it."""

    config: Config
    mesh: jax.sharding.Mesh
    model_config: object  # coderl_jax.models.config.ModelConfig (the checkpoint's)
    hf_dir: str  # where the initial weights came from
    tokenizer: object
    special: tokenizer_lib.SpecialTokens
    sampler: Sampler
    state: object  # TrainState
    buffer: AlignmentBuffer
    checkpointer: Checkpointer
    next_step: int = 0  # first RL step still to run
    iterator_state: dict | None = None

    @property
    def workdir(self) -> str:
        return self.config.run.workdir


def check_config(config: Config, num_devices: int) -> None:
    """Errors that must surface before any compile (each names the flag to change)."""
    rows = config.rollout.prompts_per_step * config.rollout.num_samples
    data, fsdp, tensor = config.run.mesh
    known = np.prod([s for s in (data, fsdp, tensor) if s != -1])
    if num_devices % known:
        raise ValueError(f"--mesh {config.run.mesh} does not fit {num_devices} devices")
    batch_devices = num_devices // tensor if -1 in (data, fsdp) else data * fsdp
    splits = config.train.num_mini_batches * config.train.num_micro_batches
    if rows % (batch_devices * splits):
        raise ValueError(
            f"--prompts_per_step x --num_samples = {rows} rows must divide over "
            f"{batch_devices} data-parallel devices x {splits} mini/micro-batches"
        )
    if config.model.hf_dir and not os.path.isdir(os.path.expanduser(config.model.hf_dir)):
        raise FileNotFoundError(f"--hf_dir {config.model.hf_dir} does not exist")
    try:
        check_names(config.eval.benchmarks)
    except ValueError as e:
        raise ValueError(f"--eval_benchmarks: {e}") from e


def _model_dir(config: Config) -> str:
    if config.model.hf_dir:
        return os.path.expanduser(config.model.hf_dir)
    return multihost.on_process_zero_first(
        lambda: tiny.build_tiny_model(os.path.expanduser(config.model.tiny_dir), config.model.tiny),
        "tiny model built",
    )


def model_overrides(config: Config) -> dict:
    """ModelConfig fields set by the run rather than the checkpoint."""
    overrides = {
        "scan_unroll": config.model.scan_unroll,
        "attention_impl": config.model.attention_impl,
    }
    if config.model.param_dtype:
        overrides["param_dtype"] = config.model.param_dtype
    if config.model.compute_dtype:
        overrides["compute_dtype"] = config.model.compute_dtype
    return overrides


def load_problems(config: Config, split: str) -> list:
    data = config.data
    builder_config = None
    if data.dataset == "coderl_synthetic":
        builder_config = synthetic_config(*data.synthetic_sizes, families=data.synthetic_families)
    problems = multihost.on_process_zero_first(
        lambda: sources.load_problems(
            data.dataset,
            split,
            os.path.expanduser(data.data_dir),
            manual_dir=os.path.expanduser(data.manual_dir) if data.manual_dir else None,
            config=builder_config,
            skip_bad_rows=data.skip_bad_rows,
        ),
        f"dataset {data.dataset}/{split} prepared",
    )
    if not problems:
        raise ValueError(f"dataset {data.dataset} split {split} is empty")
    return problems


def eval_data_options(config: Config) -> DataOptions:
    """Where the run's evaluation benchmarks find their data (``config.data``), and how many
    problems each uses (``config.eval.num_problems``)."""
    data = config.data
    return DataOptions(
        data_dir=os.path.expanduser(data.data_dir),
        manual_dir=os.path.expanduser(data.manual_dir) if data.manual_dir else None,
        synthetic=synthetic_config(*data.synthetic_sizes, families=data.synthetic_families),
        skip_bad_rows=data.skip_bad_rows,
        num_problems=config.eval.num_problems,
        timeout_s=config.rollout.exec_timeout_s,
        alignment=config.alignment.conversion,
    )


def setup(config: Config, for_training: bool = True) -> Learner:
    """Mesh, model, tokenizer, sampler, state (restored from the workdir when it has a
    checkpoint, else fresh from the initial weights) and the alignment buffer."""
    check_config(config, jax.device_count())
    mesh = mesh_lib.make_mesh(*config.run.mesh)
    hf_dir = _model_dir(config)
    shardings = mesh_lib.param_shardings(
        ModelConfig.from_hf(hf_io.read_hf_config(hf_dir), **model_overrides(config)), mesh
    )
    model_config, params = hf_io.load_pretrained(
        hf_dir, shardings=shardings, **model_overrides(config)
    )
    tokenizer = tokenizer_lib.load_tokenizer(hf_dir)
    special = tokenizer_lib.special_tokens(tokenizer, hf_dir, model_config.eos_token_id)
    width = config.rollout.sampling.bucket_for(config.data.max_prompt_tokens)
    sampling = dataclasses.replace(
        config.rollout.sampling,
        stop_ids=special.stop_ids,
        pad_id=special.pad_id,
        prompt_buckets=(width,),
    )
    sampler = Sampler(model_config, sampling, mesh)
    checkpointer = Checkpointer(
        os.path.join(config.run.workdir),
        save_every=config.run.checkpoint_every,
        keep_last=config.run.keep_checkpoints,
        read_only=not for_training,
    )
    buffer = AlignmentBuffer(config.alignment.buffer_capacity)
    learner = Learner(
        config, mesh, model_config, hf_dir, tokenizer, special, sampler, None, buffer, checkpointer
    )
    if checkpointer.latest_step() is not None:
        del params
        _restore(learner)
    else:
        if config.model.init_from:
            params = _params_of_run(config.model.init_from, model_config, config, mesh)
        learner.state = state_lib.create_train_state(params, model_config, config.train, mesh)
    return learner


def _abstract_state(model_config, config: Config, mesh):
    train_model_config = state_lib.training_model_config(model_config, config.train)
    abstract = state_lib.abstract_train_state(model_config, config.train)
    shardings = state_lib.state_shardings(train_model_config, config.train, mesh)
    return jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
    )


def _restore(learner: Learner) -> None:
    restored = learner.checkpointer.restore(
        _abstract_state(learner.model_config, learner.config, learner.mesh)
    )
    learner.state = restored.state
    learner.next_step = int(restored.extras["next_step"])
    learner.iterator_state = restored.extras.get("iterator")
    if restored.buffer_path:
        learner.buffer = AlignmentBuffer.load_jsonl(
            restored.buffer_path, learner.config.alignment.buffer_capacity
        )
    log.info("resumed %s at step %d", learner.workdir, learner.next_step)


def _params_of_run(workdir: str, model_config, config: Config, mesh):
    """Latest params of another run (`--init_from`)."""
    other = Checkpointer(os.path.expanduser(workdir), read_only=True)
    if other.latest_step() is None:
        raise FileNotFoundError(f"--init_from {workdir}: no checkpoint found there")
    return other.restore(_abstract_state(model_config, config, mesh)).state.params


def load(workdir: str) -> Learner:
    """Notebook entry: the config, latest state, sampler, tokenizer and buffer of a run."""
    config = Config.load(os.path.join(workdir, CONFIG_FILE))
    config = dataclasses.replace(config, run=dataclasses.replace(config.run, workdir=workdir))
    return setup(config, for_training=False)
