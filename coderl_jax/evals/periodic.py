"""The trainer's periodic evaluation: `EvalConfig` and `PeriodicEvaluation`.

Before RL, every ``every_steps`` steps and after RL the loop calls a `PeriodicEvaluation`
built once per run: the benchmarks are loaded once, and the policy is scored greedily (the
paper's protocol) as ``eval/<benchmark>/<metric>`` and, when configured, with
``sampled_num_samples`` samples per problem at ``sampled_temperature`` as
``eval/<benchmark>/sampled/<metric>``. Every evaluation uses the same PRNG key, so two
evaluations of the same parameters give the same numbers. Multi-process: every process
evaluates all the problems (each call's prompts are its share of the sampler's rows), so
every process gets the same metrics.
"""

from __future__ import annotations

import dataclasses
import time

import jax

from coderl_jax.evals.benchmarks import DataOptions, check_names, evaluate, load_benchmark
from coderl_jax.evals.completions import ModelCompleter
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.sampler import Sampler, SamplingConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.settings import ConfigError, require


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Periodic evaluation (`coderl_jax.evals`)."""

    every_steps: int = 0  # evaluate every N RL steps (0: only before and after RL)
    # Evaluate the initial policy before RL (off: e.g. runs that start from another run's
    # params, evaluated there with the same seed; a run with no RL steps always evaluates).
    at_start: bool = True
    # Names in coderl_jax.evals.BENCHMARKS, e.g. ("synthetic", "synthetic_reasoning").
    benchmarks: tuple[str, ...] = ("synthetic",)
    num_problems: int = 200  # problems per benchmark (reasoning: items per source; 0: all)
    max_new_tokens: int | None = None  # generation limit (None: the rollout's)
    # Besides greedy pass@1 (the paper's protocol): pass@1 of this many samples per problem
    # at `sampled_temperature`, as `eval/<benchmark>/sampled/pass@1` (0: off).
    sampled_num_samples: int = 0
    sampled_temperature: float = 1.0  # temperature of the sampled evaluation

    def __post_init__(self):
        require(self.every_steps >= 0, "every_steps", "must be >= 0")
        require(self.num_problems >= 0, "num_problems", "must be >= 0 (0: all)")
        require(
            self.max_new_tokens is None or self.max_new_tokens >= 1,
            "max_new_tokens",
            "must be >= 1 or None",
        )
        require(self.sampled_num_samples >= 0, "sampled_num_samples", "must be >= 0")
        require(self.sampled_temperature > 0, "sampled_temperature", "must be > 0")
        try:
            check_names(self.benchmarks)
        except ValueError as e:
            raise ConfigError("benchmarks", str(e)) from None


class PeriodicEvaluation:
    """``evaluation(params) -> {metric: value}`` on the run's benchmarks (module docstring)."""

    def __init__(
        self,
        config: EvalConfig,
        data: DataOptions,
        model_config: ModelConfig,
        rollout_sampling: SamplingConfig,
        mesh: jax.sharding.Mesh,
        tokenizer,
        pool,
        seed: int,
        timeout_s: float,
    ):
        """
        Args:
          config: what to evaluate and how.
          data: where the benchmarks' data is (`coderl_jax.evals.DataOptions`).
          model_config: the policy's model config.
          rollout_sampling: the run's sampling config with the tokenizer's stop and pad ids
            (`coderl_jax.learner.Learner.sampling`): evaluation decodes with its prompt
            buckets and completion length.
          mesh: the run's mesh.
          tokenizer: renders the benchmarks' conversations.
          pool: a `SandboxPool` (labels of derived sets, running generated programs).
          seed: the evaluation's PRNG seed.
          timeout_s: sandbox limit per program.
        """
        self.tokenizer, self.pool, self.mesh = tokenizer, pool, mesh
        self.key, self.timeout_s = jax.random.key(seed), timeout_s
        self.benchmarks = [load_benchmark(name, data, pool.run_batch) for name in config.benchmarks]
        greedy = dataclasses.replace(
            rollout_sampling,
            greedy=True,
            max_new_tokens=config.max_new_tokens or rollout_sampling.max_new_tokens,
        )
        # {metric prefix: (sampler, samples per problem)}
        self.samplers = {"": (Sampler(model_config, greedy, mesh), 1)}
        if config.sampled_num_samples:
            sampled = dataclasses.replace(
                greedy, greedy=False, temperature=config.sampled_temperature
            )
            self.samplers["sampled/"] = (
                Sampler(model_config, sampled, mesh),
                config.sampled_num_samples,
            )

    def __call__(self, params) -> dict[str, float]:
        divisor = mesh_lib.batch_divisor(self.mesh)
        out: dict[str, float] = {}
        for prefix, (sampler, num_samples) in self.samplers.items():
            complete = ModelCompleter(
                params,
                sampler,
                self.tokenizer,
                num_samples=num_samples,
                prompts_per_call=max(divisor, (32 // divisor) * divisor),
            )
            for loaded in self.benchmarks:
                start = time.perf_counter()
                metrics, _ = evaluate(
                    loaded, complete, self.pool.check_batch, self.key, timeout_s=self.timeout_s
                )
                name = f"eval/{loaded.name}/{prefix}"
                out.update({f"{name}{k}": v for k, v in metrics.items()})
                out[f"{name}seconds"] = time.perf_counter() - start
        return out
