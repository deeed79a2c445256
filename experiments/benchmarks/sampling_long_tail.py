r"""Rollout sampling on long-tailed completion lengths: continuous vs static decoding (and Tunix).

Code completions have long-tailed lengths: most well under 2k tokens, a few at the 8k cap.
Each sample's length is drawn from a log-normal (median ``--median``, log-space sigma
``--sigma``, capped at ``--cap``) and the sampler is made to stop there
(``Sampler.sample(max_lengths=...)``; no stop ids), so every implementation generates the
same useful tokens. Three samplers on the same weights, prompts and lengths, temperature 1:

* static: ``SamplingConfig(decoder="static")``, today's decoder: rows decode together
  until the longest ends, every step attending over the whole dense suffix. Its KV budget
  holds ``--budget_rows`` rows at the cap, so the P x G samples run in chunks of that many
  rows, one after the other.
* continuous: ``decoder="continuous"``: ``--slots`` decode slots refilled as samples finish,
  a paged KV pool of the SAME bytes as the static chunk's cache (prompt pages included),
  attention over the real lengths only.
* tunix: Tunix's sampler (google-tunix; ``--tunix_path`` may point at a ``pip install
  --target`` directory) in chunks of ``--budget_rows`` rows with a cache of the same size as
  the static one (see tunix_sampling.py).

Reported: useful tokens/s (sum of drawn lengths / wall time; compilation excluded by a
warm-up call of every shape) and peak KV bytes (static and Tunix: the allocated cache;
continuous: prompt pages + the most generated pages in use at once, and the pool size).
The last line is ``long_tail_speedup=<continuous/static useful tokens/s>``.

CPU (default): the tiny model's shape (random weights, fp32) and lengths scaled down 8x:
median 75, cap 1024 (the paper's 600 / 8192 / 8). GPU (``--gpu``): a Qwen2.5-Coder-0.5B
shape in bf16 and the unscaled lengths (median 600, cap 8192).

    python -m experiments.benchmarks.sampling_long_tail                  # CPU
    python -m experiments.benchmarks.sampling_long_tail --quick          # smoke run (seconds)
    python -m experiments.benchmarks.sampling_long_tail --tunix_path=/tmp/tunix_pkgs
    python -m experiments.benchmarks.sampling_long_tail --gpu --tunix_path=...

Tunix here: ``pip install --no-deps --target /tmp/tunix_pkgs google-tunix jaxtyping
wadler-lindig sentencepiece`` (google-tunix 0.1.7).

Measured on this project's 2-core VM (shared with other jobs; jax 0.10.2, fp32), 2026-12-03,
defaults (tiny shape 1.1M params, P=32 x G=8 = 256 samples, prompts 32-64 tokens, lengths
mean 104 / p90 184 / max 1024, 26,612 useful tokens; static budget 32 rows = 64.4 MiB;
continuous 64 slots, pages of 16, segments of 16 steps, 0 preemptions):

    sampler       useful tok/s  peak KV MiB  alloc KV MiB   time s
    static               328.7        64.44         64.44    80.96
    continuous          2416.3        15.31         64.44    11.01
    tunix                231.9        68.00         68.00   114.77
    long_tail_speedup=7.35            (continuous/tunix 10.4)

An earlier run under heavier load gave 8.63 (static 157.9, continuous 1363.2 with 64-pair
attention chunks). Every sample of the first static chunk drew the same tokens in both
decoders (the per-sample randomness).

Short equal lengths favour the static decoder: the tiny default's shape (32 x 8 samples,
prompts <= 128, max_new_tokens 64, 128-row chunks) with every row at 64 tokens: static
7,777-9,748 tok/s vs continuous 4,425-7,283 (0.57-0.75x); with log-normal lengths (median
35, sigma 0.5, cap 64) continuous is 1.12x static.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np

from coderl_jax.models import tiny, transformer
from coderl_jax.models.config import PRESETS
from coderl_jax.models.sampler import Sampler, SamplingConfig
from coderl_jax.models.sampler import prefill as prefill_lib
from coderl_jax.models.sampler import static as static_lib


def draw_lengths(n: int, median: float, sigma: float, cap: int, seed: int) -> np.ndarray:
    """[n] completion lengths: log-normal with the given median and log-space sigma, in [1, cap]."""
    rng = np.random.default_rng(seed)
    lengths = np.exp(np.log(median) + sigma * rng.standard_normal(n))
    return np.clip(np.round(lengths), 1, cap).astype(np.int32)


def make_prompts(num: int, vocab: int, shortest: int, longest: int, seed: int):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(3, vocab, int(n))) for n in np.linspace(shortest, longest, num)]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="0.5B shape, bf16, unscaled lengths")
    parser.add_argument("--quick", action="store_true", help="smoke run: small shapes")
    parser.add_argument("--prompts", type=int, default=32, help="P prompts")
    parser.add_argument("--samples", type=int, default=8, help="G samples per prompt")
    parser.add_argument(
        "--median", type=float, default=0, help="median length (0: 75 CPU / 600 GPU)"
    )
    parser.add_argument("--sigma", type=float, default=1.0, help="log-normal sigma (log space)")
    parser.add_argument("--cap", type=int, default=0, help="length cap M (0: 1024 CPU / 8192 GPU)")
    parser.add_argument("--prompt_len", type=int, default=64, help="longest prompt (bucket)")
    parser.add_argument("--budget_rows", type=int, default=32, help="static rows per chunk")
    parser.add_argument("--slots", type=int, default=64, help="continuous decode slots")
    parser.add_argument("--page_size", type=int, default=16)
    parser.add_argument("--segment_steps", type=int, default=16)
    parser.add_argument("--attention_chunk", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tunix", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tunix_path", default="", help="extra sys.path entry holding tunix")
    args = parser.parse_args()

    if args.gpu:
        config = PRESETS["qwen2.5-coder-0.5b"]
        median, cap = args.median or 600, args.cap or 8192
    else:
        config = tiny.model_config(tiny.TinyModelSpec(), 2048, 2)
        median, cap = args.median or 75, args.cap or 1024
    if args.quick:
        args.prompts, args.budget_rows, args.slots = 4, 8, 8
        median, cap = 12, 64
        config = config.replace(num_layers=min(config.num_layers, 2))
    p, g, rows = args.prompts, args.samples, args.budget_rows
    n = p * g
    if rows % g or n % rows:
        raise ValueError(f"--budget_rows={rows} must be a multiple of G={g} dividing P*G={n}")
    params = jax.jit(transformer.init_params, static_argnums=0)(config, jax.random.key(0))
    prompts = make_prompts(p, config.vocab_size, args.prompt_len // 2, args.prompt_len, args.seed)
    lengths = draw_lengths(n, median, args.sigma, cap, args.seed + 1)
    useful = int(lengths.sum())
    key = jax.random.key(args.seed)
    bucket = args.prompt_len
    print(
        f"{config.num_params / 1e6:.1f}M params ({'bf16' if args.gpu else 'fp32'}), "
        f"{jax.devices()[0].device_kind}; P={p} G={g}: {n} samples, prompts <= {bucket}"
    )
    print(
        f"lengths: log-normal median {median:g} sigma {args.sigma:g} cap {cap}: mean "
        f"{lengths.mean():.0f}, p90 {np.percentile(lengths, 90):.0f}, max {lengths.max()}; "
        f"useful tokens {useful}"
    )

    # -- static: chunks of `rows` rows, one KV cache of that size --------------------------
    static_cfg = SamplingConfig(cap, decoder="static", prompt_buckets=(bucket,))
    static = Sampler(config, static_cfg)
    per_chunk = rows // g

    def run_static():
        outs = []
        for c in range(0, p, per_chunk):
            limits = lengths[c * g : (c + per_chunk) * g]
            outs.append(
                static.sample(params, prompts[c : c + per_chunk], g, key, max_lengths=limits)
            )
        return jax.block_until_ready(outs)

    static.sample(params, prompts[:per_chunk], g, key, max_lengths=np.full(rows, 2))  # compile
    static_s, static_out = timed(run_static)
    static_bytes = static_lib.cache_bytes(config, per_chunk, bucket, rows, cap)

    # -- continuous: the same KV bytes as a page pool --------------------------------------
    page_bytes = prefill_lib.pool_bytes(config, 1, args.page_size)
    prompt_pages = p * -(-bucket // args.page_size)
    generated_pages = static_bytes // page_bytes - prompt_pages - 1
    cont_cfg = SamplingConfig(
        cap,
        prompt_buckets=(bucket,),
        num_slots=args.slots,
        page_size=args.page_size,
        num_pages=generated_pages,
        segment_steps=args.segment_steps,
        attention_chunk=args.attention_chunk,
    )
    cont = Sampler(config, cont_cfg)
    cont.sample(params, prompts, g, key, max_lengths=np.full(n, 2))  # compile
    cont_s, cont_out = timed(lambda: cont.sample(params, prompts, g, key, max_lengths=lengths))
    stats = cont.last_stats
    got = np.asarray(cont_out.completion_lengths)
    assert np.array_equal(got, lengths), "continuous: a sample did not stop at its length"
    static_lengths = np.concatenate([np.asarray(o.completion_lengths) for o in static_out])
    assert np.array_equal(static_lengths, lengths), "static: a sample did not stop at its length"
    # Chunk 0's rows are samples 0..rows-1 of both calls: the same per-sample randomness.
    first_static = np.asarray(static_out[0].completion_tokens)
    first_cont = np.asarray(cont_out.completion_tokens)[:rows]
    same = float(np.mean(np.all(first_static == first_cont, axis=1)))

    table = [
        ("static", useful / static_s, static_bytes, static_bytes, static_s),
        ("continuous", useful / cont_s, stats["sampler/kv_peak_bytes"],
         stats["sampler/kv_pool_bytes"], cont_s),
    ]  # fmt: skip

    # -- tunix -------------------------------------------------------------------------------
    tunix_note = ""
    if args.tunix:
        if args.tunix_path:
            sys.path.insert(0, args.tunix_path)
        try:
            from experiments.benchmarks import tunix_sampling
        except ImportError as error:
            tunix_note = f"tunix skipped: {error}"
        else:
            run_tunix = tunix_sampling.prepare(config, params, bucket, cap)
            chunks = [
                (
                    [prompts[i // g] for i in range(c, c + rows)],
                    int(lengths[c : c + rows].max()),
                )
                for c in range(0, n, rows)
            ]
            for chunk_rows, _ in chunks[:1]:
                run_tunix(chunk_rows, 2)  # compile (one shape for every chunk)
            tunix_s, _ = timed(lambda: [run_tunix(r, steps) for r, steps in chunks])
            tunix_bytes = tunix_sampling.cache_bytes(config, rows, bucket, cap)
            table.append(("tunix", useful / tunix_s, tunix_bytes, tunix_bytes, tunix_s))

    print(
        f"static KV budget {static_bytes / 2**20:.1f} MiB = {rows} rows x ({bucket} + {cap}) "
        f"positions; continuous: {args.slots} slots, {generated_pages} pages of "
        f"{args.page_size}, {stats['sampler/segments']} segments of <= {args.segment_steps} "
        f"steps, {stats['sampler/preemptions']} preemptions"
    )
    print(f"continuous vs static, first chunk: {same:.3f} of samples have identical tokens")
    print(
        f"{'sampler':<12}{'useful tok/s':>14}{'peak KV MiB':>13}{'alloc KV MiB':>14}{'time s':>9}"
    )
    for name, tps, peak, alloc, seconds in table:
        print(f"{name:<12}{tps:>14.1f}{peak / 2**20:>13.2f}{alloc / 2**20:>14.2f}{seconds:>9.2f}")
    if tunix_note:
        print(tunix_note)
    if len(table) == 3:
        print(f"continuous/tunix useful tokens/s: {table[1][1] / table[2][1]:.2f}")
    print(f"long_tail_speedup={table[1][1] / table[0][1]:.2f}")


if __name__ == "__main__":
    main()
