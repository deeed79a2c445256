"""`TrainBatch`: the fixed-shape device batch of one rollout, and its transfer to the mesh.

Rows are sampled sequences (prompt + response, B = prompts x G); columns are token
positions. Every per-token array is aligned with ``tokens``: entry ``[i, t]`` concerns the
prediction of ``tokens[i, t]`` from ``tokens[i, :t]``. Column 0 has no prediction, so
``loss_mask[:, 0]`` must be 0, and the log-prob arrays hold anything (ignored) there.

``advantages`` are per sequence ``[B]`` (GRPO, RLOO) or per token ``[B, T]``
(REINFORCE++); ``rewards`` ``[B]`` and ``task_kind`` ``[B]`` only feed metrics.
``old_logprobs`` are the behaviour policy's (sampler's or recomputed) and are needed only
when one rollout batch makes several optimizer updates; ``ref_logprobs`` only when the KL
coefficient is non-zero. A field that is not needed may be ``None`` (a distinct pytree
structure, compiled once).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import numpy as np
from jax.sharding import Mesh

from coderl_jax import mesh as mesh_lib

TASK_CODE = 0  # code-generation rollouts (pass/fail reward)
TASK_ALIGNMENT = 1  # execution-semantics alignment rollouts
TASK_KINDS = {"code": TASK_CODE, "alignment": TASK_ALIGNMENT}


@flax.struct.dataclass
class TrainBatch:
    """One rollout batch on device; see the module docstring for the alignment convention."""

    tokens: Any  # [B, T] int32 token ids
    attention_mask: Any  # [B, T] int32, 1 = real token, 0 = padding (left or right)
    positions: Any  # [B, T] int32 RoPE positions (0 at each row's first real token)
    loss_mask: Any  # [B, T] float32, 1 = response token that counts in the loss
    advantages: Any  # [B] or [B, T] float32
    rewards: Any  # [B] float32 (metrics only)
    task_kind: Any  # [B] int32: TASK_CODE or TASK_ALIGNMENT (metrics only)
    old_logprobs: Any = None  # [B, T] float32 behaviour log-probs, or None
    ref_logprobs: Any = None  # [B, T] float32 reference log-probs, or None

    @property
    def shape(self) -> tuple[int, int]:
        """(B, T)."""
        return tuple(self.tokens.shape)

    def validate(self) -> None:
        """Raises ValueError naming the field whose shape or dtype is wrong (host-side)."""
        if len(np.shape(self.tokens)) != 2:
            raise ValueError(f"TrainBatch.tokens must be [B, T], got shape {np.shape(self.tokens)}")
        b, t = np.shape(self.tokens)
        expected = {
            "attention_mask": [(b, t)],
            "positions": [(b, t)],
            "loss_mask": [(b, t)],
            "advantages": [(b,), (b, t)],
            "rewards": [(b,)],
            "task_kind": [(b,)],
            "old_logprobs": [(b, t), None],
            "ref_logprobs": [(b, t), None],
        }
        for name, shapes in expected.items():
            value = getattr(self, name)
            shape = None if value is None else tuple(np.shape(value))
            if shape not in shapes:
                raise ValueError(f"TrainBatch.{name} has shape {shape}; expected one of {shapes}")
        for name in ("tokens", "positions", "task_kind"):
            if not np.issubdtype(np.asarray(getattr(self, name)).dtype, np.integer):
                raise ValueError(
                    f"TrainBatch.{name} must be integer, got {getattr(self, name).dtype}"
                )
        if np.any(np.asarray(self.loss_mask)[:, 0] != 0):
            raise ValueError(
                "TrainBatch.loss_mask[:, 0] must be 0: the first token has no prediction"
            )


def batch_shardings(batch: TrainBatch, mesh: Mesh) -> TrainBatch:
    """A TrainBatch of NamedShardings: every array's rows over the (data, fsdp) axes."""
    return jax.tree.map(lambda x: mesh_lib.batch_sharding(mesh, np.ndim(x)), batch)


def device_put_batch(batch: TrainBatch, mesh: Mesh) -> TrainBatch:
    """Places a host batch on the mesh. Single process: ``batch`` is the global batch;
    multi-process: ``batch`` is this process's contiguous share of rows (see
    `coderl_jax.mesh.global_batch_array`)."""
    batch.validate()
    return jax.tree.map(lambda x: mesh_lib.global_batch_array(np.asarray(x), mesh), batch)
