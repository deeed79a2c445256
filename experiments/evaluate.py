r"""Evaluates a checkpoint on the benchmarks of `coderl_jax.evals` and writes every sample.

    python experiments/evaluate.py --checkpoint=runs/tiny_cpu --benchmarks=synthetic,humaneval
    python experiments/evaluate.py --checkpoint=/ckpt/Qwen2.5-Coder-7B-Instruct \
        --benchmarks=humaneval,code_reasoning,test_output --manual_dir=~/lcb_data
    python experiments/evaluate.py --checkpoint=DIR --benchmarks=humaneval \
        --n_samples=10 --k=1,5,10 --temperature=0.8
    python experiments/evaluate.py --oracle --benchmarks=humaneval,code_reasoning

--checkpoint is a run workdir (orbax checkpoints; its config gives the data settings) or an
HF directory (config.json + safetensors). The default is the paper's protocol: greedy
decoding, pass@1; --temperature > 0 with --n_samples=n gives sampled pass@k for each --k.
--oracle feeds the reference solutions / labels instead of a model (no checkpoint needed):
every benchmark that ships references must score 1.0, a check of the harness itself.

Writes <output_dir>/results.json (metrics, item counts, sources left out; the full config:
every flag of this script and, for a run workdir, the run's config; and provenance: git
commit, package versions, command line) and <output_dir>/samples_<benchmark>.jsonl
(prompt, completion, extracted code/answer, verdict per sample), and prints a table. An
output directory that is not empty is left alone unless --overwrite. A run workdir's
params are read without its optimizer state. --output_dir and a run workdir may be local
or any etils.epath path (gs://bucket/...); an HF directory is read from local disk.

Errors (bad flags, a missing checkpoint, benchmarks whose manual files are missing) stop
the run before any model loads, with one line (exit status 2). Library INFO logs are off;
--verbosity=0 turns them on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import script_setup
from absl import app, flags

from coderl_jax import config as config_lib
from coderl_jax import storage

F = flags
_OTHER_FLAGS = frozenset(flags.FLAGS)
F.DEFINE_string(
    "checkpoint", None, "Run workdir (orbax) or HF directory; not needed with --oracle."
)
F.DEFINE_list("benchmarks", ["humaneval"], "Benchmarks (coderl_jax.evals.BENCHMARKS).")
F.DEFINE_bool("oracle", False, "Score reference solutions / labels instead of a model.")
F.DEFINE_integer("n_samples", 1, "Completions per problem (n of pass@k).")
F.DEFINE_list("k", ["1"], "k values of pass@k (each <= --n_samples).")
F.DEFINE_float("temperature", 0.0, "Sampling temperature (0: greedy, needs --n_samples=1).")
F.DEFINE_float("top_p", 1.0, "Nucleus sampling mass (1: off).")
F.DEFINE_integer("max_new_tokens", 1024, "Completion length limit.")
F.DEFINE_list(
    "prompt_buckets",
    ["256", "512", "1024", "2048", "4096"],
    "Prompt widths that compile; longer prompts are not sampled (scored wrong, counted).",
)
F.DEFINE_integer(
    "num_problems", 0, "First N problems per benchmark (reasoning: per source); 0: all."
)
F.DEFINE_string("output_dir", "runs/eval", "Where results.json and samples_*.jsonl go.")
F.DEFINE_bool("overwrite", False, "Write into --output_dir even if it is not empty.")
F.DEFINE_string("data_dir", None, "TFDS data_dir (default: the run's, else the library default).")
F.DEFINE_string("manual_dir", None, "Manual LiveCodeBench / LeetCode files (default: the run's).")
F.DEFINE_list("synthetic_sizes", None, "coderl_synthetic train,validation,test,heldout sizes.")
F.DEFINE_list("synthetic_families", None, "coderl_synthetic trained families (default: the run's).")
F.DEFINE_bool("skip_bad_rows", False, "Skip (count) malformed manual rows instead of failing.")
F.DEFINE_integer("seed", 0, "Sampling seed.")
F.DEFINE_integer("prompts_per_call", 16, "Prompts per sampler call.")
F.DEFINE_float("exec_timeout_s", 5.0, "Sandbox wall-clock limit per test.")
F.DEFINE_integer("num_sandbox_workers", None, "Sandbox worker processes (default: CPU count).")
FLAGS = F.FLAGS
EVALUATE_FLAGS = frozenset(FLAGS) - _OTHER_FLAGS  # recorded in results.json
F.declare_key_flag("verbosity")  # absl's: -1 (default here) warnings, 0 info, 1 debug


def _is_run_workdir(path: str) -> bool:
    return (storage.as_path(path) / "checkpoints").is_dir()


def _run_config(path: str):
    """The run's Config when ``path`` is a run workdir, else None."""
    if not _is_run_workdir(path):
        return None
    from coderl_jax.learner import saved_config

    return saved_config(path)


def _load_model(path: str):
    """(params, model_config, tokenizer, special tokens, mesh) of a run workdir (its
    latest params, no optimizer state) or an HF dir."""
    from coderl_jax.learner import load_policy
    from coderl_jax.models import hf_io
    from coderl_jax.models import tokenizer as tokenizer_lib
    from coderl_jax.models.config import ModelConfig
    from coderl_jax.parallel import mesh as mesh_lib

    if _is_run_workdir(path):
        policy = load_policy(path)
        return policy.params, policy.model_config, policy.tokenizer, policy.special, policy.mesh
    mesh = mesh_lib.make_mesh(-1, 1, 1)
    shardings = mesh_lib.param_shardings(ModelConfig.from_hf(hf_io.read_hf_config(path)), mesh)
    model_config, params = hf_io.load_pretrained(path, shardings=shardings)
    tokenizer = tokenizer_lib.load_tokenizer(path)
    special = tokenizer_lib.special_tokens(tokenizer, path, model_config.eos_token_id)
    return params, model_config, tokenizer, special, mesh


def _data_options(run_config):
    from coderl_jax.data.builders import synthetic_config
    from coderl_jax.evals import DataOptions
    from coderl_jax.rl.alignment import AlignmentConfig

    data = run_config.data if run_config else config_lib.DataConfig()
    sizes = FLAGS.synthetic_sizes or data.synthetic_sizes
    families = (
        data.synthetic_families if FLAGS.synthetic_families is None else FLAGS.synthetic_families
    )
    manual_dir = FLAGS.manual_dir or data.manual_dir
    return DataOptions(
        data_dir=os.path.expanduser(FLAGS.data_dir or data.data_dir),
        manual_dir=os.path.expanduser(manual_dir) if manual_dir else None,
        synthetic=synthetic_config(*(int(n) for n in sizes), families=tuple(families)),
        skip_bad_rows=FLAGS.skip_bad_rows,
        num_problems=FLAGS.num_problems,
        timeout_s=FLAGS.exec_timeout_s,
        # synthetic_alignment: the run's task conversion and prompt style (as trained)
        alignment=run_config.alignment.conversion if run_config else AlignmentConfig(),
    )


def _completer(params, model_config, tokenizer, special, mesh):
    from coderl_jax.evals import ModelCompleter
    from coderl_jax.models.sampler import Sampler, SamplingConfig
    from coderl_jax.parallel import mesh as mesh_lib

    sampling = SamplingConfig(
        max_new_tokens=FLAGS.max_new_tokens,
        temperature=FLAGS.temperature,
        top_p=FLAGS.top_p,
        greedy=FLAGS.temperature == 0,
        stop_ids=special.stop_ids,
        pad_id=special.pad_id,
        prompt_buckets=tuple(int(b) for b in FLAGS.prompt_buckets),
    )
    divisor = mesh_lib.batch_divisor(mesh)
    per_call = max(divisor, FLAGS.prompts_per_call // divisor * divisor)
    sampler = Sampler(model_config, sampling, mesh)
    return ModelCompleter(params, sampler, tokenizer, FLAGS.n_samples, per_call)


def _check_flags() -> list[int]:
    """The k values; every flag checked (each error is one line naming the flag)."""
    try:
        ks = [int(k) for k in FLAGS.k]
    except ValueError:
        script_setup.fail(f"--k={','.join(FLAGS.k)}: must be integers")
    if not FLAGS.oracle and not FLAGS.checkpoint:
        script_setup.fail(
            "--checkpoint is required (a run workdir or an HF directory), or --oracle"
        )
    checkpoint = storage.as_path(FLAGS.checkpoint or "")
    if FLAGS.checkpoint and not checkpoint.is_dir():
        script_setup.fail(f"--checkpoint={FLAGS.checkpoint}: no such directory")
    if FLAGS.checkpoint and not (
        _is_run_workdir(checkpoint) or any(checkpoint.glob("*.safetensors"))
    ):
        script_setup.fail(
            f"--checkpoint={FLAGS.checkpoint}: neither a run workdir (checkpoints/) nor an HF "
            "directory (config.json + *.safetensors)"
        )
    if any(k < 1 or k > FLAGS.n_samples for k in ks):
        script_setup.fail(
            f"--k={','.join(FLAGS.k)}: each k must be in [1, --n_samples={FLAGS.n_samples}]"
        )
    if FLAGS.temperature == 0 and FLAGS.n_samples > 1:
        script_setup.fail("--n_samples: greedy decoding (--temperature=0) gives one answer: use 1")
    if FLAGS.n_samples < 1 or FLAGS.num_problems < 0:
        script_setup.fail("--n_samples must be >= 1 and --num_problems >= 0")
    output = storage.as_path(FLAGS.output_dir)
    if output.is_dir() and any(output.iterdir()) and not FLAGS.overwrite:
        script_setup.fail(
            f"--output_dir={output} is not empty; pass --overwrite to write into it, or give "
            "another --output_dir"
        )
    if output.exists() and not output.is_dir():
        script_setup.fail(f"--output_dir={output} is a file")
    return ks


def _table(results: dict) -> str:
    rows = [("benchmark", "items", "metric", "value", "seconds")]
    for name, result in results.items():
        if "skipped" in result:
            rows.append((name, "-", "skipped", result["skipped"][:60], "-"))
            continue
        scores = {k: v for k, v in result["metrics"].items() if "pass@" in k}
        for i, (metric, value) in enumerate(scores.items()):
            first = i == 0
            rows.append(
                (
                    name if first else "",
                    str(result["num_items"]) if first else "",
                    metric,
                    f"{value:.4f}",
                    f"{result['seconds']:.1f}" if first else "",
                )
            )
    widths = [max(len(str(row[c])) for row in rows) for c in range(5)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows)


def main(argv: list[str]) -> None:
    script_setup.setup_logging()
    script_setup.check_no_arguments(argv)
    ks = _check_flags()
    import jax

    from coderl_jax.data.builders import ManualDataMissingError
    from coderl_jax.evals import NoReferenceError, check_names, evaluate, load_benchmark
    from coderl_jax.execution import SandboxPool
    from coderl_jax.preflight import missing_benchmark_data

    try:
        check_names(FLAGS.benchmarks)
    except ValueError as e:
        script_setup.fail(f"--benchmarks={','.join(FLAGS.benchmarks)}: {e}")
    checkpoint = os.fspath(storage.as_path(FLAGS.checkpoint)) if FLAGS.checkpoint else None
    run_config = _run_config(checkpoint) if checkpoint else None
    data = _data_options(run_config)
    missing = missing_benchmark_data(FLAGS.benchmarks, data.data_dir, data.manual_dir)
    if missing:  # before the sandbox starts or any dataset builds
        script_setup.fail(f"--benchmarks={','.join(FLAGS.benchmarks)}: {'; '.join(missing)}")
    output_dir = storage.as_path(FLAGS.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with SandboxPool(num_workers=FLAGS.num_sandbox_workers) as pool:
        try:  # every benchmark's data first: a missing file stops the run before the model
            loaded = [load_benchmark(name, data, pool.run_batch) for name in FLAGS.benchmarks]
        except ManualDataMissingError as e:
            script_setup.fail(f"--benchmarks: {e}")
        complete = None if FLAGS.oracle else _completer(*_load_model(checkpoint))
        for i, benchmark in enumerate(loaded):
            start = time.perf_counter()
            key = jax.random.key(FLAGS.seed + i)
            try:
                metrics, records = evaluate(
                    benchmark, complete, pool.check_batch, key, ks if complete else [1],
                    FLAGS.exec_timeout_s,
                )  # fmt: skip
            except NoReferenceError as e:
                results[benchmark.name] = {"skipped": str(e)}
                continue
            samples_path = os.path.join(FLAGS.output_dir, f"samples_{benchmark.name}.jsonl")
            lines = "".join(json.dumps(record) + "\n" for record in records)
            storage.write_atomically(output_dir / f"samples_{benchmark.name}.jsonl", lines)
            results[benchmark.name] = {
                "metrics": metrics,
                "num_items": len(benchmark.items),
                "counts": benchmark.counts,
                "missing_sources": benchmark.missing,
                "seconds": time.perf_counter() - start,
                "samples": samples_path,
            }
    settings = {name: FLAGS[name].value for name in sorted(EVALUATE_FLAGS)}
    settings["data"] = dataclasses.asdict(data)
    results_json = {
        "settings": settings,
        "run_config": run_config.to_json() if run_config else None,
        "provenance": script_setup.provenance(),
        "benchmarks": results,
    }
    text = json.dumps(results_json, indent=2, default=str)
    storage.write_atomically(output_dir / "results.json", text)
    print(_table(results))
    for name, result in results.items():
        for source, why in result.get("missing_sources", {}).items():
            print(f"note: {name} left out {source}: {why}")
    print(f"wrote {os.path.join(FLAGS.output_dir, 'results.json')}")


if __name__ == "__main__":
    app.run(main, flags_parser=script_setup.parse_flags)
