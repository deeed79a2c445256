"""Rollout sampling speed: our sampler vs transformers' PyTorch ``generate`` (and Tunix).

CPU (default), on the same weights, prompts and lengths for every implementation:

    python experiments/benchmarks/sampling.py            # tiny model and a ~100M Qwen2 config
    python experiments/benchmarks/sampling.py --quick    # smoke run (seconds)

For (a) the embedded tiny model and (b) a ~100M-parameter Qwen2-shaped random config:
8 prompts x G=8 samples, 256 new tokens at temperature 1 with no stop ids (every row runs
the full length). Prints prefill and decode tokens/s and the ratio ours/theirs. Ours runs
the static decoder (``--decoder``), the right one for equal lengths; long-tailed lengths
and the continuous decoder are measured by sampling_long_tail.py.

* prefill time = a run with ``max_new_tokens=1``; prefill tokens/s = real prompt tokens
  (P prompts, each counted once) / that time. transformers prefills each prompt G times
  (``num_return_sequences``); we prefill it once and share its cache, which is the point.
* decode tokens/s = N * (M - 1) / (time of the full run - prefill time), N = P * G rows.
* Our timings exclude compilation (one warm-up call per shape); each figure is the best of
  ``--repeats`` runs (transformers: ``--hf_repeats``, default 1: it is the slow one).

GPU (``--gpu``): a Qwen2.5-Coder-0.5B-shaped random config in bf16 (no download), ours
only. Reports decode tokens/s and the fraction of the HBM roofline reached: bytes read per
decode step (all weights + the whole preallocated KV cache, which every step's attention
reads) / step time, vs the device's copy bandwidth measured here with a large array copy.
The "useful" fraction counts only the filled part of the cache on average.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models import hf_io, transformer
from coderl_jax.models.config import PRESETS, ModelConfig
from coderl_jax.models.sampler import Sampler, SamplingConfig


@dataclasses.dataclass(frozen=True)
class Workload:
    num_prompts: int  # P
    num_samples: int  # G
    new_tokens: int  # M
    min_prompt: int  # prompt lengths are spread over [min_prompt, max_prompt]
    max_prompt: int


@dataclasses.dataclass
class Timing:
    prefill_s: float
    total_s: float
    prompt_tokens: int
    rows: int
    new_tokens: int

    @property
    def prefill_tps(self) -> float:
        return self.prompt_tokens / self.prefill_s

    @property
    def decode_tps(self) -> float:
        return self.rows * (self.new_tokens - 1) / max(self.total_s - self.prefill_s, 1e-9)


def qwen2_100m() -> ModelConfig:
    """~98M parameters, Qwen2 layout (q/k/v biases, GQA, tied embeddings)."""
    return ModelConfig(
        vocab_size=32768,
        hidden_size=768,
        intermediate_size=2048,
        num_layers=12,
        num_heads=12,
        num_kv_heads=2,
        head_dim=64,
        rope_theta=1000000.0,
        attention_bias=True,
        tie_word_embeddings=True,
    )


def make_prompts(work: Workload, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    lengths = np.linspace(work.min_prompt, work.max_prompt, work.num_prompts).astype(int)
    return [list(rng.integers(3, vocab, n)) for n in lengths]


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_ours(
    config, params, prompts, work: Workload, repeats: int, decoder: str = "static"
) -> Timing:
    bucket = max(map(len, prompts))
    runs = {}
    for new in (1, work.new_tokens):
        cfg = SamplingConfig(new, temperature=1.0, prompt_buckets=(bucket,), decoder=decoder)
        sampler = Sampler(config, cfg)
        key = jax.random.key(0)
        out = sampler.sample(params, prompts, work.num_samples, key)
        assert int(np.asarray(out.completion_lengths).min()) == new, "a row stopped early"

        def call(sampler=sampler, key=key):
            jax.block_until_ready(sampler.sample(params, prompts, work.num_samples, key))

        runs[new] = best_of(repeats, call)
    return Timing(
        runs[1],
        runs[work.new_tokens],
        sum(map(len, prompts)),
        len(prompts) * work.num_samples,
        work.new_tokens,
    )


def time_transformers(hf_dir, prompts, work: Workload, repeats: int) -> Timing:
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    # Forced length: no eos, so both implementations decode exactly M tokens per row.
    model.generation_config.eos_token_id = None
    model.config.eos_token_id = None
    width = max(map(len, prompts))
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p)
        mask[row, width - len(p) :] = 1
    runs = {}
    for new in (1, work.new_tokens):

        def call(new=new):
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=new,
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    num_return_sequences=work.num_samples,
                    pad_token_id=0,
                )
            assert out.shape[1] == width + new, out.shape

        if new == 1:
            call()  # warm-up (torch has nothing to compile; this loads kernels and caches)
        runs[new] = best_of(repeats, call)
    return Timing(
        runs[1],
        runs[work.new_tokens],
        sum(map(len, prompts)),
        len(prompts) * work.num_samples,
        work.new_tokens,
    )


def report(name: str, ours: Timing, others: dict[str, Timing | str]) -> None:
    print(f"\n== {name}")
    print(
        f"{'impl':<14}{'prefill tok/s':>16}{'decode tok/s':>16}{'ours/theirs prefill':>22}"
        f"{'ours/theirs decode':>20}"
    )
    print(f"{'ours (jax)':<14}{ours.prefill_tps:>16.1f}{ours.decode_tps:>16.1f}")
    for impl, t in others.items():
        if isinstance(t, str):
            print(f"{impl:<14}{t}")
            continue
        print(
            f"{impl:<14}{t.prefill_tps:>16.1f}{t.decode_tps:>16.1f}"
            f"{ours.prefill_tps / t.prefill_tps:>22.2f}{ours.decode_tps / t.decode_tps:>20.2f}"
        )


def tunix_status() -> str:
    try:
        import tunix  # noqa: F401
    except ImportError:
        return "skipped: google-tunix is not installed"
    return "see sampling_long_tail.py (Tunix's sampler on long-tailed lengths)"


def cpu_benchmark(args) -> None:
    if args.quick:
        work = Workload(2, 2, 16, 8, 16)
    else:
        work = Workload(8, 8, args.new_tokens, args.prompt_len // 2, args.prompt_len)
    print(f"workload: {work}, devices: {jax.devices()}")
    cases = []
    if "tiny" in args.models:
        from coderl_jax.models.tiny import build_tiny_model

        cases.append(("tiny", build_tiny_model(os.path.join(args.workdir, "tiny_model"))))
    if "100m" in args.models:
        cases.append(("qwen2-100m", write_random_hf(qwen2_100m(), args.workdir, "qwen2_100m")))
    for name, hf_dir in cases:
        config, params = hf_io.load_pretrained(
            hf_dir, param_dtype="float32", compute_dtype="float32"
        )
        prompts = make_prompts(work, config.vocab_size)
        print(f"\n{name}: {config.num_params / 1e6:.1f}M params, timing ours ...", flush=True)
        ours = time_ours(config, params, prompts, work, args.repeats, args.decoder)
        print("timing transformers ...", flush=True)
        theirs = time_transformers(hf_dir, prompts, work, args.hf_repeats)
        report(name, ours, {"transformers": theirs, "tunix": tunix_status()})


def write_random_hf(config: ModelConfig, workdir: str, name: str) -> str:
    """A HF directory with random weights (torch init: fast) in ``workdir/name``."""
    import torch
    import transformers

    path = os.path.join(workdir, name)
    if not os.path.isfile(os.path.join(path, "config.json")):
        torch.manual_seed(0)
        hf_config = transformers.Qwen2Config(
            **{k: v for k, v in config.to_hf().items() if k not in ("architectures", "torch_dtype")}
        )
        transformers.Qwen2ForCausalLM(hf_config).save_pretrained(path)
    return path


def copy_bandwidth(num_bytes: int = 2 << 30) -> float:
    """Bytes/s of a device array copy (read + write counted), best of 10."""
    x = jnp.ones((num_bytes // 4,), jnp.float32)
    copy = jax.jit(lambda a: a + 1.0)
    jax.block_until_ready(copy(x))
    seconds = best_of(10, lambda: jax.block_until_ready(copy(x)))
    return 2 * num_bytes / seconds


def gpu_benchmark(args) -> None:
    config = PRESETS["qwen2.5-coder-0.5b"]
    work = Workload(8, 8, args.new_tokens, args.prompt_len // 2, args.prompt_len)
    if args.quick:
        work = dataclasses.replace(work, new_tokens=32)
    print(f"device: {jax.devices()[0]}, config qwen2.5-coder-0.5b (bf16), workload {work}")
    params = jax.jit(transformer.init_params, static_argnums=0)(config, jax.random.key(0))
    prompts = make_prompts(work, config.vocab_size)
    ours = time_ours(config, params, prompts, work, args.repeats, args.decoder)
    bandwidth = copy_bandwidth()
    bucket = max(map(len, prompts))
    n, m = work.num_prompts * work.num_samples, work.new_tokens
    kv_token_bytes = 2 * config.num_layers * config.num_kv_heads * config.head_dim * 2
    weight_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
    cache_bytes = kv_token_bytes * (work.num_prompts * bucket + n * (m - 1))
    mean_filled = kv_token_bytes * (sum(map(len, prompts)) + n * (m - 1) / 2)
    step_s = (ours.total_s - ours.prefill_s) / (m - 1)
    print(
        f"prefill tok/s {ours.prefill_tps:.0f}, decode tok/s {ours.decode_tps:.0f}, "
        f"step {step_s * 1e3:.2f} ms"
    )
    print(
        f"copy bandwidth {bandwidth / 1e9:.0f} GB/s; weights {weight_bytes / 1e9:.3f} GB, "
        f"KV cache {cache_bytes / 1e9:.3f} GB"
    )
    print(
        f"roofline fraction (weights + whole cache): "
        f"{(weight_bytes + cache_bytes) / step_s / bandwidth:.3f}"
    )
    print(
        f"roofline fraction (weights + mean filled cache): "
        f"{(weight_bytes + mean_filled) / step_s / bandwidth:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny shapes")
    parser.add_argument("--gpu", action="store_true", help="Qwen2.5-Coder-0.5B shape, bf16")
    parser.add_argument("--models", default="tiny,100m", help="CPU models: tiny,100m")
    parser.add_argument("--new_tokens", type=int, default=256, help="M, tokens per sample")
    parser.add_argument("--prompt_len", type=int, default=128, help="longest prompt")
    parser.add_argument(
        "--decoder",
        default="static",
        choices=("static", "continuous"),
        help="SamplingConfig.decoder; the roofline figures assume static (whole cache read)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per figure (best)")
    parser.add_argument("--hf_repeats", type=int, default=1, help="timed transformers runs")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "coderl_bench"))
    args = parser.parse_args()
    if args.gpu:
        gpu_benchmark(args)
    else:
        cpu_benchmark(args)


if __name__ == "__main__":
    main()
