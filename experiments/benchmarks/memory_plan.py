r"""Per-device memory of a run, checked by compiling its programs at the run's exact shapes.

    python experiments/benchmarks/memory_plan.py \
        --flagfile=experiments/configs/coderl_plus_qwen25_coder_7b_a100x8.flags

Reads the run's flags (any of experiments/run.py's, later ones overriding the flagfile),
builds every device program of one RL step with abstract arrays (`jax.ShapeDtypeStruct`s
carrying the run's shardings; no weights, nothing allocated) and compiles each ahead of
time for the run's mesh on fake CPU devices (``--devices``, 8 by default). Per device:

* resident through the step: parameters and optimizer state (their shardings), and the
  frozen reference policy when the KL coefficient is non-zero;
* per program, from the compiled executable's memory analysis: its inputs and outputs
  beyond the resident ones (the KV pool of the sampler, the batch), and XLA's temporaries
  (activations kept for the backward, gathered weights, logits chunks, ...);
* the programs: the sampler's prefill and decode segment (continuous decoder; the static
  decoder's loop otherwise), the reference policy's and the behaviour policy's log-probs
  (the latter when a batch makes several updates), and the train step.

A phase's peak is the resident bytes plus its program's own; the plan's peak is the
largest. The last line is ``fits=<true|false> per_device_peak_gib=<f> budget_gib=<f>``
(fits: the peak is at most ``--budget_gib``, 80 = an A100/H100 80GB).

The model's shape comes from ``<hf_dir>/config.json`` when it exists, else from the preset
(`coderl_jax.models.config.PRESETS`) that ``--hf_dir``'s name contains, or ``--model_preset``.

What differs from the GPU run, and why the plan still holds:

* XLA:CPU compiles it, not XLA:GPU: buffer assignment and fusion differ somewhat, cuDNN's
  workspace is not counted, and XLA:CPU computes bf16 matmuls in float32, so some of its
  temporaries are twice a GPU's (the plan errs high there). Keep headroom: JAX also
  preallocates only 75% of a GPU unless XLA_PYTHON_CLIENT_MEM_FRACTION says otherwise.
* cuDNN flash attention cannot compile on CPU; ``attention_impl=cudnn`` is planned with
  "xla_blocked" (`coderl_jax.models.flash_attention`), which keeps exactly what cuDNN keeps
  for the backward (q, k, v, output, one log-sum-exp per query) and works in blocks.
* The layers compile as the run lays them out (``--scan_unroll``); the plan does not
  substitute a scan for unrolled layers, because the two differ: at the 7B shape with 4 of
  its 28 layers, the train step's temporaries are 24.8 GiB scanned one layer at a time,
  37.2 GiB two at a time and 65.2 GiB unrolled (``--plan_num_layers=4
  --plan_scan_unroll=1|2|-1``). The paper flagfiles scan one layer at a time.

Time: the 7B flagfile's plan compiles its five programs in about 90 s and takes about 2
minutes in all, under 1 GB of host memory (a shared 2-core VM, jax 0.10.2).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

_EXPERIMENTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(_EXPERIMENTS), _EXPERIMENTS]
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import config_flags  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

config_flags.define_config_flags()
flags.DEFINE_integer("devices", 8, "Fake CPU devices to compile for (the mesh's -1 fills them).")
flags.DEFINE_float("budget_gib", 80.0, "Memory of one device, GiB (A100/H100 80GB: 80).")
flags.DEFINE_string("model_preset", None, "PRESETS name of the model shape (default: from hf_dir).")
flags.DEFINE_integer(
    "plan_scan_unroll", -1, "Layers per scan iteration in the plan's compiles (-1: the run's)."
)
flags.DEFINE_bool("distributed", False, "Ignored (run.py's multi-host switch; one process here).")
flags.DEFINE_integer(
    "plan_num_layers", 0, "Compile with this many layers (0: the model's); to compare layouts."
)
FLAGS = flags.FLAGS
GIB = 2**30


def model_config_of(config):
    """The run's model config (checkpoint config.json or preset, with the run's overrides)."""
    from coderl_jax.learner import model_overrides
    from coderl_jax.models import hf_io
    from coderl_jax.models.config import PRESETS, ModelConfig

    hf_dir = os.path.expanduser(config.model.hf_dir or "")
    overrides = model_overrides(config)
    if not FLAGS.model_preset and os.path.exists(os.path.join(hf_dir, "config.json")):
        return ModelConfig.from_hf(hf_io.read_hf_config(hf_dir), **overrides), hf_dir
    name = FLAGS.model_preset
    if name is None:
        matches = [p for p in PRESETS if p in os.path.basename(hf_dir.rstrip("/")).lower()]
        if not matches:
            raise app.UsageError(
                f"--hf_dir={hf_dir} has no config.json and names no preset of "
                f"{sorted(PRESETS)}; pass --model_preset"
            )
        name = max(matches, key=len)
    return PRESETS[name].replace(**overrides), name


def shard_bytes(tree) -> int:
    """Bytes one device holds of a pytree of sharded `jax.ShapeDtypeStruct`s."""
    total = 0
    for x in jax.tree.leaves(tree):
        shape = x.sharding.shard_shape(x.shape) if x.sharding is not None else x.shape
        total += int(np.prod(shape)) * np.dtype(x.dtype).itemsize
    return total


def abstract(tree, shardings):
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


@dataclasses.dataclass
class Phase:
    name: str
    resident_inputs: int  # bytes of its inputs that are resident anyway
    kv_bytes: int = 0  # of its own inputs/outputs: the sampler's page pool
    seconds: float = 0.0
    stats: object = None

    @property
    def own_io(self) -> int:
        s = self.stats
        return (
            s.argument_size_in_bytes
            - self.resident_inputs
            + s.output_size_in_bytes
            - (s.alias_size_in_bytes)
        )

    @property
    def temp(self) -> int:
        return self.stats.temp_size_in_bytes


def compile_phase(name: str, lowered, resident_inputs: int, kv_bytes: int = 0) -> Phase:
    start = time.perf_counter()
    compiled = lowered.compile()
    phase = Phase(name, resident_inputs, kv_bytes, time.perf_counter() - start)
    phase.stats = compiled.memory_analysis()
    print(f"  compiled {name} in {phase.seconds:.1f} s", flush=True)
    return phase


def main(argv) -> None:
    del argv
    jax.config.update("jax_num_cpu_devices", FLAGS.devices)
    from coderl_jax.models import transformer
    from coderl_jax.models.sampler import Sampler
    from coderl_jax.parallel import mesh as mesh_lib
    from coderl_jax.rl.advantages import ADVANTAGE_ESTIMATORS
    from coderl_jax.rl.batch import Sequences, TrainBatch
    from coderl_jax.train import state as state_lib
    from coderl_jax.train import step as step_lib

    config = config_flags.config_from_flags()
    model_config, source = model_config_of(config)
    notes = []
    if model_config.attention_impl == "cudnn":
        model_config = model_config.replace(attention_impl="xla_blocked")
        notes.append("attention cudnn planned as xla_blocked (same saved tensors)")
    if FLAGS.plan_scan_unroll >= 0:
        notes.append(f"layers compiled as a scan of {FLAGS.plan_scan_unroll or 'all'}")
        model_config = model_config.replace(scan_unroll=FLAGS.plan_scan_unroll)
    if FLAGS.plan_num_layers:
        notes.append(f"{FLAGS.plan_num_layers} of the model's {model_config.num_layers} layers")
        model_config = model_config.replace(num_layers=FLAGS.plan_num_layers)
    mesh = mesh_lib.make_mesh(*config.run.mesh)
    train, rollout = config.train, config.rollout
    sampling = rollout.sampling
    width = sampling.bucket_for(config.data.max_prompt_tokens)
    p, g = rollout.prompts_per_step, rollout.num_samples
    rows, columns = p * g, width + sampling.max_new_tokens

    # -- resident: parameters, optimizer state, reference policy ----------------------------
    train_config = state_lib.training_model_config(model_config, train)
    state = abstract(
        state_lib.abstract_train_state(model_config, train),
        state_lib.state_shardings(train_config, train, mesh),
    )
    param_shardings = mesh_lib.param_shardings(train_config, mesh)
    reference = None
    if train.uses_reference:
        reference = abstract(
            jax.eval_shape(lambda: transformer.init_params(model_config, jax.random.key(0))),
            param_shardings,
        )
    resident = {
        f"parameters ({train_config.param_dtype})": shard_bytes(state.params),
        "optimizer state": shard_bytes(state.opt_state) + shard_bytes(state.step),
        f"reference policy ({model_config.param_dtype})": shard_bytes(reference or {}),
    }
    resident_total = sum(resident.values())
    params_bytes = shard_bytes(state.params)

    # -- the programs ---------------------------------------------------------------------
    print(f"memory plan: {rows} rows x {columns} columns on mesh {dict(mesh.shape)}", flush=True)
    phases = []
    sampler = Sampler(model_config, dataclasses.replace(sampling, prompt_buckets=(width,)), mesh)
    lowered = sampler.lower(state.params, p, g, width)
    kv = 0
    if sampler.decodes_continuously:
        plan = sampler.shard_plan(p, g, width)
        from coderl_jax.models.sampler import prefill as prefill_lib

        kv = prefill_lib.pool_bytes(model_config, plan.layout.num_pages, sampling.page_size)
        if model_config.num_kv_heads % mesh.shape["tensor"] == 0:  # kv heads split (paged_kv)
            kv //= mesh.shape["tensor"]
    for name, low in lowered.items():
        phases.append(compile_phase(f"rollout: {name}", low, params_bytes, kv))

    row_sharding = NamedSharding(mesh, PartitionSpec(mesh_lib.BATCH_AXES))
    as_rows = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=row_sharding)  # noqa: E731
    tokens = as_rows((rows, columns), np.int32)
    sequences = Sequences(tokens, tokens, tokens, 0)
    score = step_lib.make_logprobs_fn(model_config, train, mesh)
    if reference is not None:
        ref_lowered = score.lower(reference, sequences)
        phases.append(compile_phase("reference log-probs", ref_lowered, shard_bytes(reference)))
    if train.updates_per_batch > 1:
        old = score.lower(state.params, sequences)
        phases.append(compile_phase("behaviour log-probs", old, params_bytes))
    advantage_shape = np.shape(
        ADVANTAGE_ESTIMATORS[rollout.advantage_estimator](np.zeros(2 * g), g, np.ones((2 * g, 3)))
    )
    per_token = as_rows((rows, columns), np.float32)
    batch = TrainBatch(
        tokens=tokens,
        attention_mask=tokens,
        positions=tokens,
        loss_mask=per_token,
        advantages=per_token if len(advantage_shape) == 2 else as_rows((rows,), np.float32),
        rewards=as_rows((rows,), np.float32),
        task_kind=as_rows((rows,), np.int32),
        old_logprobs=per_token,
        ref_logprobs=per_token if reference is not None else None,
        response_start=0,  # the worst case: log-probs of every column
    )
    step = step_lib.make_train_step(model_config, train, mesh).lower(state, batch)
    phases.append(compile_phase("train step", step, shard_bytes(state)))

    # -- the table ------------------------------------------------------------------------
    print()
    print(f"model {source} ({model_config.num_params / 1e9:.2f}B parameters), mesh "
          f"data={mesh.shape['data']} fsdp={mesh.shape['fsdp']} tensor={mesh.shape['tensor']}")  # fmt: skip
    print(f"batch {p} prompts x {g} samples = {rows} rows x {columns} columns (prompts {width}); "
          f"{train.num_mini_batches} mini x {train.num_micro_batches} micro-batches; "
          f"remat {train_config.remat_policy}; layers per scan step "
          f"{model_config.scan_unroll or model_config.num_layers}")  # fmt: skip
    if sampler.decodes_continuously:
        print(f"sampler continuous: {plan.num_slots} slots and a pool of "
              f"{plan.layout.num_pages} pages of {sampling.page_size} tokens per batch shard "
              f"({plan.layout.first_generated} prompt pages)")  # fmt: skip
    for note in notes:
        print(f"note: {note}")
    peaks = {ph.name: resident_total + ph.own_io + ph.temp for ph in phases}
    peak_phase = max(peaks, key=peaks.get)
    peak = peaks[peak_phase]
    unit, scale = ("GiB", GIB) if peak >= GIB else ("MiB", 2**20)
    print()
    print(f"{'per device, ' + unit:<34}{'kv cache':>10}{'other io':>10}{'temps':>10}{'peak':>10}")
    for name, value in resident.items():
        print(f"  {name:<32}{'':>30}{value / scale:>10.2f}")
    print(f"  {'resident total':<32}{'':>30}{resident_total / scale:>10.2f}")
    for ph in phases:
        other = ph.own_io - ph.kv_bytes
        print(f"  {ph.name:<32}{ph.kv_bytes / scale:>10.2f}{other / scale:>10.2f}"
              f"{ph.temp / scale:>10.2f}{peaks[ph.name] / scale:>10.2f}")  # fmt: skip
    budget = FLAGS.budget_gib * GIB
    print(f"peak: {peak_phase}, {peak / GIB:.2f} GiB of {FLAGS.budget_gib:g} "
          f"(headroom {(budget - peak) / GIB:.2f} GiB, {100 * (budget - peak) / budget:.0f}%); "
          f"compiles {sum(ph.seconds for ph in phases):.0f} s")  # fmt: skip
    print(f"fits={str(peak <= budget).lower()} per_device_peak_gib={peak / GIB:.3f} "
          f"budget_gib={FLAGS.budget_gib:.2f}")  # fmt: skip


if __name__ == "__main__":
    app.run(main)
