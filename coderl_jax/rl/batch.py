"""`TrainBatch`: the contract between RL and the train step, its packing, and its transfer.

RL produces a `TrainBatch` from a step's rollouts (`coderl_jax.rl.rollout`); the train step
(`coderl_jax.train.step`) consumes it. `Sequences` is its token part alone: what a scorer
(`coderl_jax.train.step.make_logprobs_fn`) reads, e.g. the reference policy before the
rewards are known.

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

``response_start`` (static, not an array) says that no row has loss before that column:
the train step then skips the vocabulary projection for the prompt columns, as verl and
Tunix slice their logits to the response. `with_response_start` sets it from the loss
mask, rounded down so that a run compiles only a few variants.

Rows may be padded on both sides (the sampler left-pads prompts and right-pads
completions); `left_align` moves each row's tokens to the left edge (padding only on the
right), the layout that fused (cuDNN) attention requires. In that layout the columns after a row's last real token
are padding, so a micro-batch of short rows can be cut short (`trim_columns`, used by the
train step with ``TrainConfig.micro_batch_width_multiple``); `group_rows_by_length` orders
rows so that each micro-batch holds rows of similar length.
"""

from __future__ import annotations

import enum
from typing import Any

import flax.struct
import jax
import numpy as np
from jax.sharding import Mesh

from coderl_jax.parallel import multihost


class TaskKind(enum.IntEnum):
    """The two prompt kinds of a CodeRL+ batch; the value is `TrainBatch.task_kind`'s."""

    CODE = 0  # code generation: pass/fail reward from running the tests
    ALIGNMENT = 1  # execution semantics alignment: per-variable reward

    @property
    def metric_name(self) -> str:
        """The kind's segment of metric keys: ``rollout/code/...``, ``rollout/align/...``."""
        return "code" if self is TaskKind.CODE else "align"


@flax.struct.dataclass
class Sequences:
    """Packed token rows (prompt + response): what a log-prob scorer reads."""

    tokens: Any  # [B, T] int32 token ids
    attention_mask: Any  # [B, T] int32, 1 = real token, 0 = padding
    positions: Any  # [B, T] int32 RoPE positions (0 at each row's first real token)
    # Static: no row has loss before this column, so log-probs there are not computed.
    response_start: int = flax.struct.field(pytree_node=False, default=0)


@flax.struct.dataclass
class TrainBatch:
    """One rollout batch on device; see the module docstring for the alignment convention."""

    tokens: Any  # [B, T] int32 token ids
    attention_mask: Any  # [B, T] int32, 1 = real token, 0 = padding (left or right)
    positions: Any  # [B, T] int32 RoPE positions (0 at each row's first real token)
    loss_mask: Any  # [B, T] float32, 1 = response token that counts in the loss
    advantages: Any  # [B] or [B, T] float32
    rewards: Any  # [B] float32 (metrics only)
    task_kind: Any  # [B] int32 `TaskKind` values (metrics only)
    old_logprobs: Any = None  # [B, T] float32 behaviour log-probs, or None
    ref_logprobs: Any = None  # [B, T] float32 reference log-probs, or None
    # Static: loss_mask[:, :response_start] is 0, so log-probs there are not computed.
    response_start: int = flax.struct.field(pytree_node=False, default=0)

    @property
    def shape(self) -> tuple[int, int]:
        """(B, T)."""
        return tuple(self.tokens.shape)

    @property
    def sequences(self) -> Sequences:
        """The token part (what a scorer reads)."""
        return Sequences(self.tokens, self.attention_mask, self.positions, self.response_start)

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
        if not 0 <= self.response_start < max(t, 1):
            raise ValueError(f"TrainBatch.response_start={self.response_start} outside [0, {t})")
        if np.any(np.asarray(self.loss_mask)[:, : self.response_start] != 0):
            raise ValueError(
                f"TrainBatch.loss_mask has loss before response_start={self.response_start}"
            )


def shared_response_start(first_column: int, multiple: int = 32) -> int:
    """A ``response_start`` valid for every process's rows: the minimum over processes of
    ``first_column`` (each process's first column with loss), rounded down to a multiple of
    ``multiple`` so that a run compiles only a few variants.

    All processes must compile the same program, so this is a collective with several
    JAX processes (every process calls it)."""
    first = -multihost.max_over_processes(-int(first_column))
    return first // multiple * multiple


def with_response_start(batch: TrainBatch, multiple: int = 32) -> TrainBatch:
    """``batch`` with ``response_start`` set from its loss mask (`shared_response_start` of
    the first column where any row has loss; 0 when none has). Host-side."""
    columns = np.flatnonzero(np.asarray(batch.loss_mask).any(axis=0))
    first = int(columns[0]) if columns.size else 0
    return batch.replace(response_start=shared_response_start(first, multiple))


# Fields with one entry per token ([B, T]); `left_align` moves them together.
_PER_TOKEN_FIELDS = (
    "tokens",
    "attention_mask",
    "positions",
    "loss_mask",
    "advantages",
    "old_logprobs",
    "ref_logprobs",
)


def left_align_columns(attention_mask_BxT: np.ndarray) -> np.ndarray:
    """Gather indices [B, T] that move each row left by its number of leading pad tokens.

    Row ``b`` of the result is ``(arange(T) + lead_b) % T``: its real tokens land in
    columns ``[0, length_b)`` and its leading padding wraps to the end. Raises ValueError
    naming the first row whose real tokens are not contiguous (padding between them),
    which no shift can left-align.
    """
    real_BxT = np.asarray(attention_mask_BxT) != 0
    if real_BxT.ndim != 2:
        raise ValueError(f"attention_mask must be [B, T], got shape {real_BxT.shape}")
    t = real_BxT.shape[1]
    lead_B = np.where(real_BxT.any(axis=1), real_BxT.argmax(axis=1), 0)
    columns_BxT = (np.arange(t)[None, :] + lead_B[:, None]) % t
    aligned_BxT = np.take_along_axis(real_BxT, columns_BxT, axis=1)
    expected_BxT = np.arange(t)[None, :] < real_BxT.sum(axis=1)[:, None]
    bad = np.flatnonzero((aligned_BxT != expected_BxT).any(axis=1))
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"attention_mask row {row} has padding between real tokens "
            f"({real_BxT[row].astype(int).tolist()}); expected [pad..., real..., pad...]"
        )
    return columns_BxT


def left_align(batch: TrainBatch | Sequences) -> TrainBatch | Sequences:
    """The same rows with each row's real tokens moved to columns ``[0, length)``.

    Every per-token field (tokens, attention_mask, positions, loss_mask, per-token
    advantages, old/ref log-probs) is shifted left by the row's number of leading pad
    tokens, which wrap to the end of the row; per-row fields are unchanged. The values are
    moved, not recomputed, so positions stay 0..length-1 and the causal prefix of every
    token is the same: a decoder gives the same log-prob for each real token, and the
    loss is unchanged. Fused attention (``ModelConfig.attention_impl`` "cudnn") requires
    this layout because cuDNN takes padding as row lengths. Rows must be
    [pad..., real..., pad...] (see `left_align_columns`). Host-side (numpy).
    """
    columns_BxT = left_align_columns(batch.attention_mask)
    b, t = columns_BxT.shape
    moved = {}
    for name in _PER_TOKEN_FIELDS:
        value = getattr(batch, name, None)
        if value is not None and np.shape(value) == (b, t):
            moved[name] = np.take_along_axis(np.asarray(value), columns_BxT, axis=1)
    return batch.replace(**moved)


def row_ends(attention_mask_BxT: np.ndarray) -> np.ndarray:
    """[B] one past each row's last real token (0 for a row of padding). Host-side."""
    real_BxT = np.asarray(attention_mask_BxT) != 0
    t = real_BxT.shape[1]
    return np.where(real_BxT.any(axis=1), t - real_BxT[:, ::-1].argmax(axis=1), 0)


def group_rows_by_length(
    batch: TrainBatch, num_mini_batches: int, num_micro_batches: int
) -> TrainBatch:
    """The same rows, reordered so that micro-batch ``i`` of every mini-batch holds the
    ``i``-th length quantile of the rows (by `row_ends`). Host-side, per process.

    The train step splits rows by interleaving (`coderl_jax.train.step.split_rows`): with
    M mini- and m micro-batches, row ``p`` lands in mini-batch ``p % M`` and micro-batch
    ``(p // M) % m``. Ranking rows by length and placing rank ``s`` (quantile
    ``i = s // (B / m)``, rank ``r`` inside it) at ``p = (r // M) * M * m + i * M + r % M``
    fills micro-batch ``i`` of every mini-batch from quantile ``i`` alone. Each
    mini-batch keeps an equal share of every quantile, and every block of ``M * m``
    consecutive rows holds one row per (mini, micro) pair (a device's share of rows is a
    whole number of such blocks, which the train step checks). Rows are
    independent in the loss once advantages are computed, so the order changes no value.
    """
    rows = batch.tokens.shape[0]
    splits = num_mini_batches * num_micro_batches
    if rows % splits:
        raise ValueError(f"batch of {rows} rows does not split into {splits} equal parts")
    per_quantile = rows // num_micro_batches
    ranked = np.argsort(row_ends(batch.attention_mask), kind="stable")
    rank = np.arange(rows)
    quantile, inner = rank // per_quantile, rank % per_quantile
    position = (
        (inner // num_mini_batches) * splits
        + quantile * num_mini_batches
        + inner % num_mini_batches
    )
    order = np.empty(rows, np.int64)
    order[position] = ranked
    return jax.tree.map(lambda x: np.asarray(x)[order], batch)


def trim_columns(batch: TrainBatch, width: int) -> TrainBatch:
    """The batch's first ``width`` columns (every [B, T] field; per-row fields as they are).
    Exact when every column from ``width`` on is padding in every row, as after
    `left_align` (``width`` >= the largest `row_ends`): causal attention never lets a
    real token see a later column. Works on host and traced arrays."""
    b, t = batch.tokens.shape
    if not batch.response_start < width <= t:
        raise ValueError(f"width {width} must be in (response_start={batch.response_start}, {t}]")
    cut = {}
    for name in _PER_TOKEN_FIELDS:
        value = getattr(batch, name)
        if value is not None and value.shape == (b, t):
            cut[name] = value[:, :width]
    return batch.replace(**cut)


def device_put_batch(batch: TrainBatch | Sequences, mesh: Mesh) -> TrainBatch | Sequences:
    """Places a host batch on the mesh, rows over (data, fsdp). Single process: ``batch``
    is the global batch; multi-process: this process's contiguous share of rows (see
    `coderl_jax.parallel.multihost.global_batch_array`). A `TrainBatch` is validated first."""
    if isinstance(batch, TrainBatch):
        batch.validate()
    return jax.tree.map(lambda x: multihost.global_batch_array(np.asarray(x), mesh), batch)
