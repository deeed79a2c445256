"""The learner: everything a run or a notebook works with, built from a `Config`.

`setup(config)` makes the device mesh, loads the policy (an HF checkpoint, or the embedded
tiny model, built and cached on first use) onto its shardings, the tokenizer, the rollout
sampler and the alignment buffer, and restores the latest checkpoint of the run's workdir
if there is one (otherwise the state starts from the initial weights, or from another
run's params with ``init_from``). `load(workdir)` does the same, read-only, from a saved
run's config: the notebook entry (`coderl_jax.loop.load` re-exports it). `load_policy`
reads only what sampling needs (params, model config, tokenizer, mesh), never the
optimizer state: evaluation and export use it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any, Literal

import jax

from coderl_jax import storage
from coderl_jax import workdir as workdir_lib
from coderl_jax.checkpoint import Checkpointer
from coderl_jax.data import sources
from coderl_jax.data.builders import synthetic_config
from coderl_jax.evals.benchmarks import DataOptions
from coderl_jax.models import hf_io, tiny
from coderl_jax.models import tokenizer as tokenizer_lib
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.sampler import Sampler, SamplingConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.parallel import multihost
from coderl_jax.rl.alignment_buffer import AlignmentBuffer
from coderl_jax.settings import require
from coderl_jax.train import state as state_lib

if TYPE_CHECKING:
    from coderl_jax.config import Config

log = logging.getLogger(__name__)

REFERENCE_DIR = "reference_hf"  # initial policy (after warm start / init_from), for the KL
CONFIG_FILE = workdir_lib.CONFIG_FILE


@dataclasses.dataclass(frozen=True)
class ModelSourceConfig:
    """Where the policy comes from."""

    # HF checkpoint directory (local: transformers reads it); None: build/use the tiny model
    hf_dir: str | None = None
    tiny_dir: str = os.path.join(sources.CACHE_DIR, "tiny_model")  # tiny model cache (local)
    tiny: tiny.TinyModelSpec = tiny.TinyModelSpec()  # shape and seed of the tiny model
    # Override the checkpoint's weight dtype.
    param_dtype: Literal["float32", "bfloat16"] | None = None
    # Override the compute dtype (default: from the weights).
    compute_dtype: Literal["float32", "bfloat16"] | None = None
    # Decoder layers per scan iteration: 0 unrolls all layers (faster steps on GPU and CPU,
    # longer compiles); 1 compiles a single layer.
    scan_unroll: int = 0
    # Training/scoring attention: "xla" (einsum with a mask; any device) or "cudnn" (fused
    # flash attention; GPU with bf16/fp16 compute; rows are left-aligned by the rollout).
    attention_impl: Literal["xla", "cudnn"] = "xla"
    init_from: str | None = None  # previous run's workdir: start from its latest params

    def __post_init__(self):
        require(self.scan_unroll >= 0, "scan_unroll", "must be >= 0 (0: all layers)")


@dataclasses.dataclass
class Learner:
    """Everything a run (or a notebook) works with. Built by `setup`; `load` restores it."""

    config: Config
    mesh: jax.sharding.Mesh
    model_config: ModelConfig  # the checkpoint's (training variant: state_lib)
    hf_dir: str  # where the initial weights came from
    tokenizer: Any  # a transformers tokenizer with a chat template
    special: tokenizer_lib.SpecialTokens
    sampling: SamplingConfig  # the run's sampling, with the tokenizer's stop and pad ids
    sampler: Sampler  # rollout sampler (prompts padded to the run's one prompt width)
    state: state_lib.TrainState
    buffer: AlignmentBuffer
    checkpointer: Checkpointer
    next_step: int = 0  # first RL step still to run
    iterator_state: dict | None = None
    metrics_positions: dict | None = None  # metric files' sizes at the restored checkpoint

    @property
    def workdir(self) -> str:
        return self.config.run.workdir


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


@dataclasses.dataclass
class Policy:
    """What sampling from a model needs: its params and how to read and run them."""

    params: Any
    model_config: ModelConfig
    tokenizer: Any
    special: tokenizer_lib.SpecialTokens
    mesh: jax.sharding.Mesh
    hf_dir: str  # where the initial weights (and the tokenizer) came from
    step: int | None = None  # the checkpoint's step; None: the initial weights


def _model_and_tokenizer(config: Config):
    """(mesh, hf_dir, model config, tokenizer, special tokens) of a run; no weights read."""
    mesh = mesh_lib.make_mesh(*config.run.mesh)
    hf_dir = _model_dir(config)
    model_config = ModelConfig.from_hf(hf_io.read_hf_config(hf_dir), **model_overrides(config))
    tokenizer = tokenizer_lib.load_tokenizer(hf_dir)
    special = tokenizer_lib.special_tokens(tokenizer, hf_dir, model_config.eos_token_id)
    return mesh, hf_dir, model_config, tokenizer, special


def setup(config: Config, for_training: bool = True) -> Learner:
    """Mesh, model, tokenizer, sampler, state (restored from the workdir when it has a
    checkpoint, else fresh from the initial weights) and the alignment buffer."""
    mesh, hf_dir, model_config, tokenizer, special = _model_and_tokenizer(config)
    sampling = dataclasses.replace(
        config.rollout.sampling, stop_ids=special.stop_ids, pad_id=special.pad_id
    )
    width = sampling.bucket_for(config.data.max_prompt_tokens)
    sampler = Sampler(model_config, dataclasses.replace(sampling, prompt_buckets=(width,)), mesh)
    checkpointer = Checkpointer(
        config.run.workdir,
        save_every=config.run.checkpoint_every,
        keep_last=config.run.keep_checkpoints,
        keep_period=config.run.keep_period,
        read_only=not for_training,
    )
    buffer = AlignmentBuffer(config.alignment.buffer_capacity)
    next_step, iterator_state, positions = 0, None, None
    if checkpointer.latest_step() is not None:
        restored = checkpointer.restore(_abstract_state(model_config, config, mesh))
        state = restored.state
        next_step = int(restored.extras["next_step"])
        iterator_state = restored.extras.get("iterator")
        positions = restored.extras.get("metrics")
        if restored.buffer_path:
            buffer = AlignmentBuffer.load_jsonl(
                restored.buffer_path, config.alignment.buffer_capacity
            )
        log.info("resumed %s at step %d", config.run.workdir, next_step)
    else:
        if config.model.init_from:
            params = _params_of_run(config.model.init_from, model_config, config, mesh)
        else:
            _, params = hf_io.load_pretrained(
                hf_dir,
                shardings=mesh_lib.param_shardings(model_config, mesh),
                **model_overrides(config),
            )
        state = state_lib.create_train_state(params, model_config, config.train, mesh)
    return Learner(
        config,
        mesh,
        model_config,
        hf_dir,
        tokenizer,
        special,
        sampling,
        sampler,
        state,
        buffer,
        checkpointer,
        next_step,
        iterator_state,
        positions,
    )


def reference_params(learner: Learner):
    """The frozen reference policy of the KL term: the run's ``reference_hf`` (the policy
    after its warm start or ``init_from``) if process 0 wrote one, else the initial weights."""
    multihost.sync_processes("reference_hf written")  # process 0 wrote it
    ref_dir = storage.as_path(learner.workdir) / REFERENCE_DIR
    ref_dir = ref_dir if ref_dir.is_dir() else learner.hf_dir
    _, params = hf_io.load_pretrained(
        ref_dir,
        shardings=mesh_lib.param_shardings(learner.model_config, learner.mesh),
        **model_overrides(learner.config),
    )
    return params


def _abstract_state(model_config, config: Config, mesh):
    train_model_config = state_lib.training_model_config(model_config, config.train)
    abstract = state_lib.abstract_train_state(model_config, config.train)
    shardings = state_lib.state_shardings(train_model_config, config.train, mesh)
    return jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
    )


def _abstract_params(model_config, config: Config, mesh):
    return _abstract_state(model_config, config, mesh).params


def _params_of_run(workdir: str, model_config, config: Config, mesh):
    """Latest params of another run (`--init_from`), without its optimizer state."""
    other = Checkpointer(os.path.expanduser(workdir), read_only=True)
    if other.latest_step() is None:
        raise FileNotFoundError(f"init_from {workdir}: no checkpoint found there")
    return other.restore_params(_abstract_params(model_config, config, mesh)).state


def saved_config(workdir: str) -> Config:
    """The config a run was saved with, its workdir set to where it is now."""
    from coderl_jax.config import Config

    config = Config.load(storage.as_path(workdir) / CONFIG_FILE)
    return dataclasses.replace(config, run=dataclasses.replace(config.run, workdir=workdir))


def load(workdir: str) -> Learner:
    """Notebook entry: the config, latest state, sampler, tokenizer and buffer of a run."""
    return setup(saved_config(workdir), for_training=False)


def load_policy(workdir: str, mesh: tuple[int, int, int] | None = None) -> Policy:
    """The latest params of a run (no optimizer state read) with its model config,
    tokenizer and a mesh (``mesh``: its (data, fsdp, tensor) sizes; default: the run's)."""
    config = saved_config(workdir)
    if mesh is not None:
        config = dataclasses.replace(config, run=dataclasses.replace(config.run, mesh=mesh))
    mesh_, hf_dir, model_config, tokenizer, special = _model_and_tokenizer(config)
    checkpointer = Checkpointer(workdir, read_only=True)
    try:
        restored = checkpointer.restore_params(_abstract_params(model_config, config, mesh_))
    finally:
        checkpointer.close()
    return Policy(restored.state, model_config, tokenizer, special, mesh_, hf_dir, restored.step)
