r"""Training throughput of one GRPO update (`coderl_jax.train.step`), with Tunix alongside.

CPU mode (default): for the embedded tiny model and ~5M / ~100M-parameter Qwen2 configs
(random weights), times one jitted GRPO train step (PPO-clip loss, k3 KL against given
reference log-probs, one optimizer update, fp32) on a fixed batch and prints training
tokens/s = B * T / step time (every position is run forward and backward). When
``google-tunix`` is importable (``--tunix_path`` may point at a ``pip install --target``
directory) the same config, weights and batch go through Tunix's GRPO loss and an optax
update of its NNX Qwen2 model, and both numbers and their ratio are printed. Before each
config is timed, `tunix_grpo.cross_check` compares the two objectives' losses and
gradients (every leaf) on a batch where the policy term, both clips and the KL term all
act, and stops the script when they differ by more than float32 rounding
(``--cross_check_only``: that check alone).

GPU mode (``--gpu``): a Qwen2.5-Coder-0.5B-shaped random config, bf16 compute with fp32
master weights, sequences of 2048 tokens; reports tokens/s and

    MFU = model FLOPs per token * tokens/s / peak bf16 FLOP/s,

with model FLOPs per token (PaLM, Chowdhery et al. 2022, appendix B)

    6 * N + 12 * L * H * Dh * T,

N the parameters that take part in matmuls (decoder layers + the [D, V] unembedding; the
input embedding lookup is not a matmul), L layers, H query heads, Dh head dim, T sequence
length (attention over the full T x T, as PaLM counts it; causal masking is not
subtracted). Attention runs as cuDNN flash attention (``--attention_impl=cudnn``, the
default on a GPU) or as the masked einsum (``--attention_impl=xla``, for comparison); the
batch has no padding, so both see the same rows. Recomputation (remat, the chunked log-prob backward) is not counted. The peak
is measured here with a large bf16 matmul, not taken from a datasheet.

Timing: a compile call and a warm-up call, then ``--steps`` calls; ours and Tunix's calls
alternate so both see the same machine load, and each side's fastest call counts.

Run from the repository root:

    python -m experiments.benchmarks.train_step              # CPU: tiny, 5m, 100m
    python -m experiments.benchmarks.train_step --quick      # smoke run (seconds)
    python -m experiments.benchmarks.train_step --gpu        # GPU: 0.5B, seq 2048, MFU
    python -m experiments.benchmarks.train_step --gpu --attention_impl=xla  # einsum baseline
    python -m experiments.benchmarks.train_step --tunix_path=/tmp/tunix_pkgs  # see below
    python -m experiments.benchmarks.train_step --tunix_path=/tmp/tunix_pkgs --cross_check_only

Tunix here: ``pip install --no-deps --target /tmp/tunix_pkgs google-tunix jaxtyping
wadler-lindig`` (google-tunix 0.1.7; its full dependency set is not needed for the step).

Measured on this project's 2-core VM (jax 0.10.2, google-tunix 0.1.7, fp32, chunk 128,
layers unrolled), 2026-11-26, after the MLP's gate and up projections became one matmul
and RoPE half-width tables:

    run                          config   params     BxT  ours tok/s  tunix tok/s  ours/tunix
    --configs tiny,5m --steps 15   tiny     1.1M   8x256       7,879        6,895        1.14
                                     5m     5.2M   8x256       3,413        2,864        1.19
    default configs, --steps 10    tiny     1.1M   8x256       8,438        6,830        1.24
                                     5m     5.2M   8x256       2,599        2,485        1.05
                                   100m    97.7M   4x128         234          222        1.06

Before that change the two were at parity (0.93-1.13 for tiny over several runs that day).

Cross-check (``--cross_check_only``, 2026-12-03, 8 rows x 64 columns of unequal prompt
and completion lengths, 238 loss tokens, T=0.7, kl_coef 0.1, 38% of the tokens clipped,
0.8% dual-clipped): loss relative difference 3.0e-7 (tiny), 0 (5m), 3.0e-7 (100m), its policy
and KL terms within 3.7e-7; the
largest per-leaf gradient difference, relative to the leaf's largest entry, 1.3e-6,
2.3e-6, 4.4e-6 (tolerances 1e-5 and 1e-4).

GPU, one H100 80GB (jax 0.11.2), 2026-11-26, MFU against the best peak of the lease
(710.6 TFLOP/s): B=8 x 2048 in 2 micro-batches, cuDNN attention, 97.8k tokens/s = 45.3% MFU
(72.4k = 33.5% with ``--nounroll_layers``); ``--rows=16 --micro_batches=1``: 120.4k = 55.7%.
These predate the MLP/RoPE change above: a second lease's runs after it ended at their
100 s limits before printing (the script now prints progress as it goes).

History: with the decoder's ``nn.scan`` over layers rolled, ours was 0.91-0.94x Tunix under
load; unrolling (``--unroll_layers``, the default here) closed that gap.
"""

from __future__ import annotations

import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from coderl_jax.models import tiny, transformer
from coderl_jax.models.config import PRESETS, ModelConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import TrainBatch, device_put_batch, with_response_start
from coderl_jax.train import state as state_lib
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig

_GPU = flags.DEFINE_bool("gpu", False, "Qwen2.5-Coder-0.5B shape in bf16 with MFU.")
_QUICK = flags.DEFINE_bool("quick", False, "Smoke run: tiny shapes, one timed step.")
_CONFIGS = flags.DEFINE_list("configs", ["tiny", "5m", "100m"], "CPU configs to time.")
_ROWS = flags.DEFINE_integer("rows", 0, "Batch rows B (0: per-mode default).")
_SEQ = flags.DEFINE_integer("seq", 0, "Sequence length T (0: per-mode default).")
_MICRO = flags.DEFINE_integer("micro_batches", 0, "Gradient-accumulation steps (0: default).")
_STEPS = flags.DEFINE_integer(
    "steps", 5, "Timed steps (after a compile and a warm-up step); the fastest counts."
)
_UNROLL = flags.DEFINE_bool(
    "unroll_layers",
    True,
    "Unroll the decoder's layer scan (ModelConfig.scan_unroll=0, the default); "
    "--nounroll_layers compiles one layer (scan_unroll=1).",
)
_REMAT = flags.DEFINE_enum("remat", "none", ["none", "full", "dots"], "Remat policy.")
_CHUNK = flags.DEFINE_integer(
    "logprob_chunk_size", 128, "Positions per log-prob chunk (0: full [B, T, V] logits)."
)
_ATTENTION = flags.DEFINE_enum(
    "attention_impl",
    "default",
    ["default", "xla", "cudnn", "xla_fused"],
    "No-cache attention (ModelConfig.attention_impl). default: cudnn in --gpu mode on a GPU, "
    "else xla.",
)
_TUNIX = flags.DEFINE_bool("tunix", True, "Also time Tunix's GRPO step when importable.")
_TUNIX_PATH = flags.DEFINE_string("tunix_path", "", "Extra sys.path entry holding tunix.")
_CROSS_CHECK_ONLY = flags.DEFINE_bool(
    "cross_check_only",
    False,
    "Only the Tunix cross-check of loss and gradients (tunix_grpo.cross_check), no timing.",
)


def cpu_model_configs() -> dict[str, ModelConfig]:
    """The CPU benchmark's model shapes (Qwen2 layout, fp32)."""
    qwen2 = dict(model_type="qwen2", attention_bias=True, tie_word_embeddings=True)
    return {
        "tiny": tiny.model_config(tiny.TinyModelSpec(), 2048, 2),
        "5m": ModelConfig(
            **qwen2,
            vocab_size=8192,
            hidden_size=256,
            intermediate_size=768,
            num_layers=4,
            num_heads=4,
            num_kv_heads=2,
            head_dim=64,
        ),
        "100m": ModelConfig(
            **qwen2,
            vocab_size=32000,
            hidden_size=768,
            intermediate_size=2048,
            num_layers=12,
            num_heads=12,
            num_kv_heads=2,
            head_dim=64,
        ),
    }


# Rows x sequence length per CPU config: a few seconds per step on a laptop core.
CPU_BATCH = {"tiny": (8, 256), "5m": (8, 256), "100m": (4, 128)}


def attention_impl(gpu_mode: bool) -> str:
    """The --attention_impl flag, with "default" resolved (cudnn for --gpu on a GPU)."""
    if _ATTENTION.value != "default":
        return _ATTENTION.value
    return "cudnn" if gpu_mode and jax.default_backend() == "gpu" else "xla"


def flops_per_token(config: ModelConfig, seq_len: int, scored_fraction: float = 1.0) -> float:
    """Training FLOPs per token: 6 N + 12 L H Dh T (module docstring), with the [D, V]
    unembedding counted only on the ``scored_fraction`` of positions that are projected to
    the vocabulary (the response: `TrainBatch.response_start`)."""
    embedding = config.vocab_size * config.hidden_size
    # Tied: the one embedding matrix is also the unembedding matmul. Untied: drop the lookup.
    matmul_params = config.num_params - (0 if config.tie_word_embeddings else embedding)
    attention = 12 * config.num_layers * config.num_heads * config.head_dim * seq_len
    return 6 * (matmul_params - embedding) + 6 * embedding * scored_fraction + attention


def grpo_batch(rows: int, seq_len: int, vocab: int, seed: int = 0) -> TrainBatch:
    """A GRPO-shaped batch: prompt = first quarter, response = the rest, groups of 4."""
    rng = np.random.default_rng(seed)
    prompt = seq_len // 4
    mask = np.ones((rows, seq_len), np.int32)
    loss_mask = np.zeros((rows, seq_len), np.float32)
    loss_mask[:, prompt:] = 1.0
    rewards = (rng.random(rows) > 0.5).astype(np.float32)
    groups = rewards.reshape(-1, 4) if rows % 4 == 0 else rewards[None]
    advantages = (groups - groups.mean(-1, keepdims=True)) / (groups.std(-1, keepdims=True) + 1e-6)
    batch = TrainBatch(
        tokens=rng.integers(0, vocab, (rows, seq_len)).astype(np.int32),
        attention_mask=mask,
        positions=np.broadcast_to(np.arange(seq_len, dtype=np.int32), (rows, seq_len)).copy(),
        loss_mask=loss_mask,
        advantages=advantages.reshape(rows).astype(np.float32),
        rewards=rewards,
        task_kind=np.zeros(rows, np.int32),
        ref_logprobs=(-np.log(vocab) + 0.1 * rng.standard_normal((rows, seq_len))).astype(
            np.float32
        ),
    )
    # The prompt columns are not scored (the vocabulary projection starts at the response),
    # as in the trainer and in Tunix.
    return with_response_start(batch)


def prepare_ours(model_config, train_config, params, batch):
    """Compiles our jitted train step on all local devices and runs it twice.

    Returns:
      ``(compile_s, loss of the first step, run_once)``; ``run_once()`` makes one more
      update and blocks until it is done.
    """
    mesh = mesh_lib.make_mesh(-1, 1, 1)
    state = state_lib.create_train_state(params, model_config, train_config, mesh)
    step_fn = step_lib.make_train_step(model_config, train_config, mesh)
    device_batch = device_put_batch(batch, mesh)
    start = time.perf_counter()
    state, metrics = step_fn(state, device_batch)
    loss = float(metrics["train/loss"])
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def run_once():
        holder["state"], metrics = step_fn(holder["state"], device_batch)
        jax.block_until_ready(metrics)

    run_once()
    return compile_s, loss, run_once


def best_step_seconds(runners, steps: int) -> list[float]:
    """Fastest of ``steps`` calls of each runner, calls interleaved (ours, theirs, ours,
    ...) so that both see the same machine load; the minimum filters out other processes'
    interference."""
    best = [math.inf] * len(runners)
    for _ in range(steps):
        for i, run_once in enumerate(runners):
            start = time.perf_counter()
            run_once()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def measured_bf16_peak(n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of an n x n x n bf16 matmul (fp32 accumulation), best of ``repeats``."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.bfloat16)
    matmul = jax.jit(lambda a, b: a @ b)
    matmul(a, b).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def run_gpu() -> None:
    model_config = PRESETS["qwen2.5-coder-0.5b"].replace(
        remat_policy=_REMAT.value, attention_impl=attention_impl(gpu_mode=True)
    )
    if _QUICK.value:  # smoke run of the same code path (runs on CPU too)
        model_config = model_config.replace(num_layers=2)
    model_config = model_config.replace(scan_unroll=0 if _UNROLL.value else 1)
    rows = _ROWS.value or (8 if not _QUICK.value else 2)
    seq = _SEQ.value or (2048 if not _QUICK.value else 256)
    micro = _MICRO.value or (2 if rows >= 4 else 1)
    train_config = TrainConfig(
        learning_rate=1e-6, num_micro_batches=micro, logprob_chunk_size=_CHUNK.value
    )
    # Progress is printed as it happens, so a run cut short by a timeout shows how far it got.
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}", flush=True)
    print(
        f"qwen2.5-coder-0.5b shape, {model_config.num_params / 1e6:.0f}M params, bf16 compute,"
        f" fp32 master weights, B={rows} T={seq} micro-batches={micro} remat={_REMAT.value}"
        f" attention={model_config.attention_impl} layers unrolled={_UNROLL.value}",
        flush=True,
    )
    peak_matmul_n = 4096 if _QUICK.value else 8192
    peak_before = measured_bf16_peak(peak_matmul_n)
    print(f"bf16 matmul rate before the steps {peak_before / 1e12:.1f} TFLOP/s", flush=True)
    params = jax.jit(transformer.init_params, static_argnums=0)(model_config, jax.random.key(0))
    batch = grpo_batch(rows, seq, model_config.vocab_size)
    compile_s, loss, run_once = prepare_ours(model_config, train_config, params, batch)
    print(f"loss {loss:.4f}; compile {compile_s:.1f}s", flush=True)
    (step_s,) = best_step_seconds([run_once], _STEPS.value)
    tokens_per_s = batch.tokens.size / step_s
    # The card's clock drifts with temperature (633-711 TFLOP/s seen within one H100 lease),
    # so the peak is the best of a measurement before and one after the steps.
    peak = max(peak_before, measured_bf16_peak(peak_matmul_n))
    flops = flops_per_token(model_config, seq, (seq - batch.response_start) / seq)
    mfu = flops * tokens_per_s / peak
    print(f"step {step_s * 1e3:.1f} ms; tokens/s {tokens_per_s:,.0f}")
    print(
        f"model FLOPs/token {flops / 1e9:.3f} GFLOP (6N + 12 L H Dh T; unembedding on the"
        f" {seq - batch.response_start} response positions)"
    )
    print(f"measured bf16 matmul peak {peak / 1e12:.1f} TFLOP/s (best of before and after)")
    print(f"MFU {100 * mfu:.1f}%")
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        print(f"peak device memory {stats['peak_bytes_in_use'] / 2**30:.1f} GiB")


def run_cpu() -> None:
    if _TUNIX_PATH.value:
        sys.path.insert(0, _TUNIX_PATH.value)
    tunix_step = cross_check = None
    if _TUNIX.value or _CROSS_CHECK_ONLY.value:
        try:
            from experiments.benchmarks import tunix_grpo

            tunix_step, cross_check = tunix_grpo.prepare_tunix_grpo_step, tunix_grpo.cross_check
        except ImportError as error:
            if _CROSS_CHECK_ONLY.value:
                raise
            print(f"Tunix comparison skipped: {error}")
    steps = _STEPS.value
    train_config = TrainConfig(
        learning_rate=1e-6,
        num_micro_batches=_MICRO.value or 1,
        logprob_chunk_size=_CHUNK.value,
    )
    configs = cpu_model_configs()
    header = f"{'config':>6} {'params':>8} {'BxT':>8} {'ours tok/s':>11} {'compile':>8}"
    print(
        f"CPU, {jax.device_count()} device(s); one GRPO update per step, fp32, "
        f"attention={attention_impl(gpu_mode=False)}"
    )
    print(header + (f" {'tunix tok/s':>12} {'ours/tunix':>10}" if tunix_step else ""))
    for name in _CONFIGS.value:
        model_config = configs[name].replace(
            remat_policy=_REMAT.value, attention_impl=attention_impl(gpu_mode=False)
        )
        if _QUICK.value:
            model_config = model_config.replace(num_layers=min(model_config.num_layers, 2))
        model_config = model_config.replace(scan_unroll=0 if _UNROLL.value else 1)
        params = jax.device_get(
            jax.jit(transformer.init_params, static_argnums=0)(model_config, jax.random.key(0))
        )
        if cross_check is not None:  # raises when the two objectives disagree
            print(f"{name}: our GRPO loss and gradient vs Tunix's (float32)", flush=True)
            cross_check(model_config, train_config, params)
            print(f"{name}: loss and every gradient leaf agree to float32 rounding", flush=True)
            if _CROSS_CHECK_ONLY.value:
                continue
        rows, seq = (4, 64) if _QUICK.value else CPU_BATCH[name]
        rows, seq = _ROWS.value or rows, _SEQ.value or seq
        batch = grpo_batch(rows, seq, model_config.vocab_size)
        compile_s, _, run_ours = prepare_ours(model_config, train_config, params, batch)
        runners = [run_ours]
        if tunix_step is not None:
            _, _, run_tunix = tunix_step(model_config, train_config, params, batch)
            runners.append(run_tunix)
        seconds = best_step_seconds(runners, steps)
        tokens = batch.tokens.size
        line = (
            f"{name:>6} {model_config.num_params / 1e6:>7.1f}M {rows}x{seq:<5} "
            f"{tokens / seconds[0]:>11,.0f} {compile_s:>7.1f}s"
        )
        if tunix_step is not None:
            line += f" {tokens / seconds[1]:>12,.0f} {seconds[1] / seconds[0]:>10.2f}"
        print(line, flush=True)


def main(argv) -> None:
    del argv
    if _GPU.value:
        run_gpu()
    else:
        run_cpu()


if __name__ == "__main__":
    app.run(main)
