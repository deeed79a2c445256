"""coderl_jax: CodeRL+ (RL for code LLMs with execution semantics alignment) in JAX/Flax.

Subpackages follow the data path (see README): ``models`` (decoder, HF checkpoints, tiny
model), ``execution`` (sandbox, test runner, tracer), ``rl`` (rewards, advantages, losses,
alignment), ``data`` (problems, datasets), ``train`` (state and jitted step).
"""

__version__ = "0.1.0"
