"""`Sampler`: the host front end. Pads prompts into buckets, picks the decoder, runs it.

Usage::

    sampler = Sampler(model_config, SamplingConfig(max_new_tokens=512, stop_ids=(eos,)))
    out = sampler.sample(params, prompt_token_lists, num_samples=8, key=jax.random.key(0))

``on_finished`` (continuous decoder) receives `FinishedSamples` between device segments,
while the next segment decodes, so a caller can start executing finished programs early;
the static decoder calls it once with every row at the end.

Decoder choice: ``SamplingConfig.decoder``. Both run on any mesh and any number of
processes, with the rows of a call split into equal contiguous blocks over the mesh's
batch axes (data x fsdp), block j on batch shard j, exactly as `multihost.global_batch_array`
lays out a batch; the weights keep their own sharding. The continuous decoder gives each
batch shard its own decode slots (``num_slots`` per shard), its own page pool (the prompts
of its rows plus ``num_pages`` generated pages) and its own queue of samples; each process
schedules the shards it holds (`scheduler.py`). Sample n of a call is global row n, so a
fixed key draws the same tokens on any mesh, with either decoder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from coderl_jax.models import paged_kv
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.sampler import continuous, prefill, scheduler, static
from coderl_jax.models.sampler.config import SamplingConfig, left_pad
from coderl_jax.models.sampler.output import FinishedSamples, SampleOutput, assemble
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.parallel import multihost


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """A continuous call's split over this process's batch shards (`Sampler.shard_plan`)."""

    shards: int  # batch shards this process holds (1 without a mesh)
    num_slots: int  # decode slots per shard
    layout: prefill.PoolLayout  # one shard's page pool
    prompt_rows: np.ndarray  # [shards * layout.num_prompts] prompt of each pool's prompt rows
    prompt_of: np.ndarray  # [N] each sample's prompt among its shard's prompts
    offset: int  # global row of this process's row 0


class Sampler:
    """Host-side front end (module docstring)."""

    def __init__(self, model_config: ModelConfig, config: SamplingConfig, mesh: Mesh | None = None):
        self.model_config = model_config
        self.config = config
        self.mesh = mesh
        self._compiles = 0
        # The last call's KV bytes (pool allocated, peak in use), segments and preemptions.
        self.last_stats: dict[str, float] = {}
        self._static = jax.jit(self._traced_static, static_argnames=("num_samples",))
        self._prefill = jax.jit(self._traced_prefill, static_argnames=("layout",))
        self._segment = jax.jit(
            functools.partial(
                continuous.decode_segment, model_config=model_config, config=config, mesh=mesh
            ),
            static_argnames=("layout",),
            donate_argnames=("cache",),
        )

    # -- layout: what callers need to know about the output's columns ---------------------

    def prompt_width(self, prompts: Sequence[Sequence[int]]) -> int:
        """The bucket width of a prompt list (the longest prompt over all processes)."""
        if not prompts:
            raise ValueError("no prompts to sample from")
        empty = [i for i, ids in enumerate(prompts) if len(ids) == 0]
        if empty:
            raise ValueError(f"prompts {empty[:5]} are empty; every prompt needs >= 1 token")
        return self.config.bucket_for(multihost.max_over_processes(max(map(len, prompts))))

    def pad_prompts(
        self, prompts: Sequence[Sequence[int]], width: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Left-pads token-id lists: ([P, width] int32 ids, [P, width] mask); width defaults
        to `prompt_width`."""
        width = width or self.prompt_width(prompts)
        return left_pad(prompts, width, self.config.pad_id)

    def metrics(self) -> dict[str, int]:
        """Counters over the sampler's life (``last_stats`` describes the last call)."""
        return {"sampler/compiles": self._compiles}

    # -- sampling ---------------------------------------------------------------------------

    def sample(
        self,
        params,
        prompts: Sequence[Sequence[int]],
        num_samples: int,
        key: jax.Array,
        *,
        on_finished: Callable[[FinishedSamples], None] | None = None,
        max_lengths: np.ndarray | None = None,
    ) -> SampleOutput:
        """G = ``num_samples`` completions for each prompt (lists of token ids)."""
        tokens, mask = self.pad_prompts(prompts)
        return self.sample_padded(
            params, tokens, mask, num_samples, key, on_finished=on_finished, max_lengths=max_lengths
        )

    def sample_padded(
        self,
        params,
        tokens_PxS,
        mask_PxS,
        num_samples: int,
        key: jax.Array,
        *,
        on_finished: Callable[[FinishedSamples], None] | None = None,
        max_lengths: np.ndarray | None = None,
    ) -> SampleOutput:
        """Like `sample` for prompts already left-padded to a fixed width.

        Args:
          max_lengths: optional [N] per-sample length limits (<= max_new_tokens), e.g. to
            make a benchmark stop each sample at a drawn length; a sample that reaches its
            limit ends with FINISH_LENGTH.

        Multi-process: each process passes its own prompts (the same number on every
        process) and reads its rows of the output with `multihost.local_rows`.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        n, m = len(tokens_PxS) * num_samples, self.config.max_new_tokens
        limits = np.full(n, m, np.int32) if max_lengths is None else np.asarray(max_lengths)
        if limits.shape != (n,) or limits.min() < 1 or limits.max() > m:
            raise ValueError(f"max_lengths must be [{n}] ints in [1, {m}], got {limits}")
        if self.decodes_continuously:
            return self._run_continuous(
                params, tokens_PxS, mask_PxS, num_samples, key, limits, on_finished
            )
        out = self._run_static(params, tokens_PxS, mask_PxS, num_samples, key, limits)
        if on_finished is not None:
            rows = jax.tree.map(multihost.local_rows, out)
            on_finished(
                FinishedSamples(
                    index=np.arange(len(rows.completion_lengths)),
                    completion_tokens=rows.completion_tokens,
                    completion_lengths=rows.completion_lengths,
                    logprobs=rows.logprobs,
                    finish_reason=rows.finish_reason,
                )
            )
        return out

    @property
    def decodes_continuously(self) -> bool:
        """Whether calls run the continuous decoder (module docstring): finished samples
        then reach ``on_finished`` while others still decode."""
        return self.config.decoder == "continuous"

    # -- continuous decoder -----------------------------------------------------------------

    def _traced_prefill(self, params, tokens, mask, prompt_of, samples, key, layout):
        self._compiles += 1  # runs only while tracing, i.e. once per compiled shape
        with self._mesh_context():
            return prefill.prefill(
                params, self.model_config, self.config, layout, tokens, mask, prompt_of,
                samples, key, self.mesh,
            )  # fmt: skip

    def _mesh_context(self):
        """The mesh as the trace's context: the prompts' forward keeps its rows over the
        batch axes (`coderl_jax.models.layers.rows_over_batch_axes`)."""
        if self.mesh is None:
            return contextlib.nullcontext()
        return jax.sharding.use_abstract_mesh(self.mesh.abstract_mesh)

    def _batch_shards(self) -> tuple[int, int]:
        """(batch shards this process holds, global index of its first); their blocks of
        rows must follow each other (as `multihost.global_batch_array` assumes)."""
        if self.mesh is None:
            return 1, 0
        total = mesh_lib.batch_divisor(self.mesh)
        held = mesh_lib.batch_sharding(self.mesh, 1).addressable_devices_indices_map((total,))
        starts = sorted({index[0].start or 0 for index in held.values()})
        if starts != list(range(starts[0], starts[0] + len(starts))):
            raise ValueError(
                f"process {jax.process_index()} holds batch shards {starts}, not a contiguous "
                "block; order the mesh's devices by process along the batch axes"
            )
        return len(starts), starts[0]

    def _place(self, x: np.ndarray) -> jax.Array:
        """This process's rows (shard blocks in order) as a row-sharded global array."""
        if self.mesh is None:
            return jnp.asarray(x)
        return multihost.global_batch_array(x, self.mesh)

    def shard_plan(self, num_prompts: int, num_samples: int, width: int) -> ShardPlan:
        """How a continuous call of P prompts x G samples (this process's) at a prompt width
        splits over the batch shards this process holds."""
        cfg = self.config
        n = num_prompts * num_samples
        shards, first_shard = self._batch_shards()
        if n % shards:
            raise ValueError(
                f"prompts x num_samples = {n} rows per process must be a multiple of the "
                f"{shards} batch shards ({mesh_lib.BATCH_AXES}) this process holds"
            )
        rows = n // shards  # shard j decodes rows [j * rows, (j + 1) * rows)
        num_slots = min(cfg.num_slots or rows, rows)
        # The prompts of each shard's rows, padded to the most any shard needs.
        first_prompt = np.arange(shards) * rows // num_samples
        last_prompt = (np.arange(shards) * rows + rows - 1) // num_samples
        per_shard = int((last_prompt - first_prompt).max()) + 1
        prompt_rows = np.minimum(first_prompt[:, None] + np.arange(per_shard), last_prompt[:, None])
        row = np.arange(n)
        return ShardPlan(
            shards=shards,
            num_slots=num_slots,
            layout=prefill.PoolLayout(
                num_prompts=per_shard,
                prompt_pages=-(-width // cfg.page_size),
                generated_pages=cfg.num_pages or num_slots * cfg.pages_per_row,
                page_size=cfg.page_size,
            ),
            prompt_rows=prompt_rows.reshape(-1),
            prompt_of=(row // num_samples - first_prompt[row // rows]).astype(np.int32),
            offset=first_shard * rows,
        )

    def lower(self, params, num_prompts: int, num_samples: int, width: int) -> dict:
        """The device programs of a call (P prompts x G samples per process, prompts of
        ``width`` columns) lowered for ``params`` (e.g. `jax.ShapeDtypeStruct`s carrying their
        shardings): {"prefill": ..., "decode segment": ...} for the continuous decoder,
        {"decode": ...} for the static one. Nothing is allocated or run; compiling them gives
        their memory (`experiments/benchmarks/memory_plan.py`)."""
        key = jax.random.key(0)
        total = jax.process_count()
        if not self.decodes_continuously:
            n = num_prompts * num_samples * total
            prompts = self._abstract((num_prompts * total, width), 2)
            limits = self._abstract((n,), 1)
            return {
                "decode": self._static.lower(
                    params, prompts, prompts, key, limits, num_samples=num_samples
                )
            }
        plan = self.shard_plan(num_prompts, num_samples, width)
        shards = plan.shards * total
        rows = self._abstract((len(plan.prompt_of) * total,), 1)
        prompts = self._abstract((len(plan.prompt_rows) * total, width), 2)
        prefill_lowered = self._prefill.lower(
            params, prompts, prompts, rows, rows, key, layout=plan.layout
        )
        cache = prefill_lowered.out_info[0]
        if self.mesh is not None:
            spec = paged_kv.pool_spec(self.mesh, self.model_config.num_kv_heads)
            pool = jax.sharding.NamedSharding(self.mesh, spec)
            cache = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=pool), cache
            )
        s, j = shards * plan.num_slots, self.config.pages_per_row
        ints = ("sample", "prompt", "prompt_length", "length", "token", "limit")
        slots = continuous.SlotState(
            **{f: self._abstract((s,), 1) for f in ints},
            active=self._abstract((s,), 1, bool),
            stopped=self._abstract((s,), 1, bool),
            pages=self._abstract((s, j), 2),
        )
        segment_lowered = self._segment.lower(
            params, layout=plan.layout, cache=cache, slots=slots, key=key
        )
        return {"prefill": prefill_lowered, "decode segment": segment_lowered}

    def _abstract(self, shape, ndim, dtype=np.int32) -> jax.ShapeDtypeStruct:
        sharding = None if self.mesh is None else mesh_lib.batch_sharding(self.mesh, ndim)
        return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)

    def _run_continuous(self, params, tokens_PxS, mask_PxS, g, key, limits, on_finished):
        cfg = self.config
        p, width = tokens_PxS.shape
        plan = self.shard_plan(p, g, width)
        layout, row = plan.layout, np.arange(p * g)
        prompt_lengths = np.asarray(mask_PxS).sum(-1).astype(np.int32)[row // g]
        cache, first, first_logprob = self._prefill(
            params,
            self._place(np.asarray(tokens_PxS)[plan.prompt_rows]),
            self._place(np.asarray(mask_PxS)[plan.prompt_rows]),
            self._place(plan.prompt_of),
            self._place((row + plan.offset).astype(np.int32)),
            key,
            layout=layout,
        )

        def segment(cache, slots):
            slots = jax.tree.map(self._place, slots)
            return self._segment(params, layout=layout, cache=cache, slots=slots, key=key)

        completions, stats = scheduler.run(
            segment,
            cache,
            multihost.local_rows(first),
            multihost.local_rows(first_logprob),
            limits,
            plan.prompt_of,
            prompt_lengths,
            cfg,
            layout,
            plan.num_slots,
            on_finished,
            num_shards=plan.shards,
            sample_offset=plan.offset,
        )
        page_bytes = prefill.pool_bytes(self.model_config, 1, cfg.page_size)
        self.last_stats = {  # one batch shard's pool (one device's, on a mesh)
            "sampler/kv_pool_bytes": layout.num_pages * page_bytes,
            "sampler/kv_peak_bytes": (layout.first_generated + stats.peak_generated_pages)
            * page_bytes,
            "sampler/segments": stats.segments,
            "sampler/preemptions": stats.preemptions,
        }
        return assemble(
            np,
            np.asarray(tokens_PxS),
            np.asarray(mask_PxS),
            g,
            completions.tokens,
            completions.lengths,
            completions.logprobs,
            completions.stopped,
        )

    # -- static decoder ---------------------------------------------------------------------

    def _traced_static(self, params, tokens, mask, key, limits, num_samples):
        self._compiles += 1
        row_sharding = None if self.mesh is None else mesh_lib.batch_sharding(self.mesh, 1)
        with self._mesh_context():
            return static.generate(
                params, self.model_config, self.config, tokens, mask, key, num_samples, limits,
                row_sharding,
            )  # fmt: skip

    def _run_static(self, params, tokens_PxS, mask_PxS, num_samples, key, limits):
        p, width = tokens_PxS.shape
        n = p * num_samples
        self.last_stats = {
            "sampler/kv_pool_bytes": static.cache_bytes(
                self.model_config, p, width, n, self.config.max_new_tokens
            )
        }
        self.last_stats["sampler/kv_peak_bytes"] = self.last_stats["sampler/kv_pool_bytes"]
        if self.mesh is not None:
            divisor = mesh_lib.batch_divisor(self.mesh)
            rows = n * jax.process_count()
            if rows % divisor:
                raise ValueError(
                    f"prompts x num_samples x processes = {rows} rows must be a multiple of the "
                    f"{divisor} devices on the mesh batch axes {mesh_lib.BATCH_AXES}"
                )
            if jax.process_count() > 1:  # this process's prompts: its share of the rows
                tokens_PxS = multihost.global_batch_array(tokens_PxS, self.mesh)
                mask_PxS = multihost.global_batch_array(mask_PxS, self.mesh)
                limits = multihost.global_batch_array(limits, self.mesh)
                return self._static(
                    params, tokens_PxS, mask_PxS, key, limits, num_samples=num_samples
                )
            # Prompts shard with the rows when they divide evenly, else every device holds all.
            prompt_sharding = (
                mesh_lib.batch_sharding(self.mesh, 2)
                if p % divisor == 0
                else mesh_lib.replicated(self.mesh)
            )
            tokens_PxS = jax.device_put(tokens_PxS, prompt_sharding)
            mask_PxS = jax.device_put(mask_PxS, prompt_sharding)
            limits = jax.device_put(limits, mesh_lib.batch_sharding(self.mesh, 1))
        return self._static(params, tokens_PxS, mask_PxS, key, limits, num_samples=num_samples)
