r"""Compiled memory of loss+grad through chunked vs full-logits token logprobs.

For a Qwen2.5-0.5B-like head (D=896, V=151936) and a few B x T settings, compiles (does not
run) ``jax.value_and_grad`` of a policy-style objective (mean logprob plus entropy bonus,
gradients w.r.t. the hidden states and the unembedding) twice: through
``coderl_jax.train.logprobs.token_logprobs_and_entropy`` (chunked along the sequence) and
through ``token_logprobs_and_entropy_unchunked`` (full [B, T, V] fp32 logits). Inputs are
abstract ``jax.ShapeDtypeStruct``\s, so nothing is allocated; XLA's buffer assignment
reports the memory (``compiled.memory_analysis()``).

Prints, per setting, the temp (scratch) bytes and the total = arguments + outputs + temp -
aliased, for both versions, and the ratio naive / chunked of temp and total bytes.

Run from the repository root (CPU, seconds; on a GPU host the numbers are the GPU's buffer
assignment):

    python -m experiments.benchmarks.logprobs_memory
    python -m experiments.benchmarks.logprobs_memory --dtype=float32 --chunk_size=256

Measured on CPU (jax 0.10.2, bf16 inputs, chunk 128; temp = XLA scratch bytes):

       BxT   full logits   naive temp   chunked temp   temp ratio   total ratio
    1x1024     0.58 GiB     2.83 GiB      1.06 GiB         2.7          2.1
    4x2048     4.64 GiB    19.05 GiB      1.56 GiB        12.2          9.3
    8x4096    18.55 GiB    74.70 GiB      2.70 GiB        27.6         22.7

The naive path holds about four [B, T, V] fp32 buffers; the chunked one a few [B, C, V]
buffers plus the fp32 [D, V] gradient accumulator (0.5 GiB here), so its memory barely grows
with B * T. CPU numbers include fp32 copies XLA's CPU backend makes for bf16 matmuls.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from coderl_jax.train.logprobs import (
    token_logprobs_and_entropy,
    token_logprobs_and_entropy_unchunked,
)

_HIDDEN = flags.DEFINE_integer("hidden", 896, "Model width D (Qwen2.5-0.5B: 896).")
_VOCAB = flags.DEFINE_integer("vocab", 151936, "Vocabulary size V (Qwen2.5: 151936).")
_CHUNK = flags.DEFINE_integer("chunk_size", 128, "Sequence positions per chunk.")
_DTYPE = flags.DEFINE_enum(
    "dtype", "bfloat16", ["bfloat16", "float32"], "Dtype of hidden states and unembedding."
)
_SETTINGS = flags.DEFINE_list(
    "settings", ["1x1024", "4x2048", "8x4096"], "Batch x sequence-length settings, BxT."
)


def _objective(logprob_fn, hidden_BxTxD, unembed_DxV, targets_BxT):
    logp, entropy = logprob_fn(hidden_BxTxD, unembed_DxV, targets_BxT)
    return -jnp.mean(logp) - 0.01 * jnp.mean(entropy)


def compiled_memory(logprob_fn, batch: int, length: int, dtype) -> dict[str, int]:
    """Buffer sizes (bytes) XLA assigns to value_and_grad of the objective."""
    shapes = (
        jax.ShapeDtypeStruct((batch, length, _HIDDEN.value), dtype),
        jax.ShapeDtypeStruct((_HIDDEN.value, _VOCAB.value), dtype),
        jax.ShapeDtypeStruct((batch, length), jnp.int32),
    )
    step = jax.jit(jax.value_and_grad(functools.partial(_objective, logprob_fn), argnums=(0, 1)))
    stats = step.lower(*shapes).compile().memory_analysis()
    total = (
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )
    return {"temp": stats.temp_size_in_bytes, "total": total}


def _gib(num_bytes: int) -> str:
    return f"{num_bytes / 2**30:8.3f} GiB"


def main(argv):
    del argv
    dtype = jnp.dtype(_DTYPE.value)
    chunked_fn = functools.partial(token_logprobs_and_entropy, chunk_size=_CHUNK.value)
    print(
        f"device={jax.devices()[0].platform} D={_HIDDEN.value} V={_VOCAB.value} "
        f"dtype={dtype.name} chunk={_CHUNK.value}"
    )
    print(
        f"{'BxT':>8} {'full logits':>14} {'naive temp':>14} {'chunked temp':>14} "
        f"{'naive total':>14} {'chunked total':>14} {'temp ratio':>10} {'total ratio':>11}"
    )
    start = time.perf_counter()
    for setting in _SETTINGS.value:
        batch, length = (int(x) for x in setting.lower().split("x"))
        naive = compiled_memory(token_logprobs_and_entropy_unchunked, batch, length, dtype)
        chunked = compiled_memory(chunked_fn, batch, length, dtype)
        full_logits = batch * length * _VOCAB.value * 4
        print(
            f"{setting:>8} {_gib(full_logits):>14} {_gib(naive['temp']):>14} "
            f"{_gib(chunked['temp']):>14} {_gib(naive['total']):>14} "
            f"{_gib(chunked['total']):>14} {naive['temp'] / chunked['temp']:>10.1f} "
            f"{naive['total'] / chunked['total']:>11.1f}"
        )
        print(
            f"{'bytes':>8} {full_logits:>14} {naive['temp']:>14} {chunked['temp']:>14} "
            f"{naive['total']:>14} {chunked['total']:>14}"
        )
    print(f"compiled {2 * len(_SETTINGS.value)} programs in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    app.run(main)
