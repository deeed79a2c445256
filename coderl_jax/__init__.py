"""coderl_jax: CodeRL+ (RL for code LLMs with execution semantics alignment) in JAX/Flax.

The names a script or notebook needs, imported on first use (``import coderl_jax`` stays
light)::

    import coderl_jax as cj
    config = cj.Config()                      # a whole run's settings
    cj.run(config)                            # train (or resume) a run
    learner = cj.load("runs/tiny_cpu")        # its config, state, sampler, buffer
    cj.run_program("print(input())", stdin=b"hi")          # the sandbox
    cj.check_solution(code, tests)                          # the code judge
    cj.alignment_reward(completion, expected_output, expected_variables)

Packages follow the data path (README, "Layout"): ``data`` (problems, datasets),
``models`` (decoder, HF checkpoints, tiny model, sampler), ``execution`` (sandbox, judge,
tracer), ``rl`` (one RL step: rollouts, rewards, alignment tasks, advantages, losses),
``train`` (state, jitted step, warm start), ``evals``, ``parallel`` (mesh, multi-host).
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "Config": "coderl_jax.config",
    "run": "coderl_jax.loop",
    "load": "coderl_jax.loop",
    "run_program": "coderl_jax.execution",
    "check_solution": "coderl_jax.execution",
    "extract_code": "coderl_jax.execution.extract",
    "alignment_reward": "coderl_jax.rl.rewards",
    "generate_problems": "coderl_jax.data.synthetic",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'coderl_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
