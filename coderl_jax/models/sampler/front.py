"""`Sampler`: the host front end. Pads prompts into buckets, picks the decoder, runs it.

Usage::

    sampler = Sampler(model_config, SamplingConfig(max_new_tokens=512, stop_ids=(eos,)))
    out = sampler.sample(params, prompt_token_lists, num_samples=8, key=jax.random.key(0))

``on_finished`` (continuous decoder) receives `FinishedSamples` between device segments,
while the next segment decodes, so a caller can start executing finished programs early;
the static decoder calls it once with every row at the end.

Decoder choice: ``SamplingConfig.decoder``; the continuous decoder runs on one process
without data-parallel sharding of its rows (a mesh whose batch axes span one device; the
weights may be sharded over the other axes). Otherwise the static decoder runs, with rows
sharded over the mesh's batch axes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from coderl_jax.models.config import ModelConfig
from coderl_jax.models.sampler import continuous, prefill, scheduler, static
from coderl_jax.models.sampler.config import SamplingConfig, left_pad
from coderl_jax.models.sampler.output import FinishedSamples, SampleOutput, assemble
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.parallel import multihost


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
        self._prefill = jax.jit(self._traced_prefill, static_argnames=("layout", "num_samples"))
        self._segment = jax.jit(
            functools.partial(continuous.decode_segment, model_config=model_config, config=config),
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
        if self.config.decoder != "continuous" or jax.process_count() > 1:
            return False
        return self.mesh is None or mesh_lib.batch_divisor(self.mesh) == 1

    # -- continuous decoder -----------------------------------------------------------------

    def _traced_prefill(self, params, tokens, mask, key, layout, num_samples):
        self._compiles += 1  # runs only while tracing, i.e. once per compiled shape
        return prefill.prefill(
            params, self.model_config, self.config, layout, tokens, mask, key, num_samples
        )

    def _run_continuous(self, params, tokens_PxS, mask_PxS, g, key, limits, on_finished):
        cfg = self.config
        p, width = tokens_PxS.shape
        n = p * g
        num_slots = min(cfg.num_slots or n, n)
        layout = prefill.PoolLayout(
            num_prompts=p,
            prompt_pages=-(-width // cfg.page_size),
            generated_pages=cfg.num_pages or num_slots * cfg.pages_per_row,
            page_size=cfg.page_size,
        )
        prompt_lengths = np.asarray(mask_PxS).sum(-1).astype(np.int32)
        cache, first, first_logprob = self._prefill(
            params, jnp.asarray(tokens_PxS), jnp.asarray(mask_PxS), key, layout, g
        )
        lengths_dev = jnp.asarray(prompt_lengths)

        def segment(cache, slots):
            return self._segment(
                params, layout=layout, cache=cache, slots=slots,
                prompt_lengths_P=lengths_dev, key=key,
            )  # fmt: skip

        completions, stats = scheduler.run(
            segment,
            cache,
            np.asarray(first),
            np.asarray(first_logprob),
            limits,
            np.arange(n) // g,
            cfg,
            layout,
            num_slots,
            on_finished,
        )
        page_bytes = prefill.pool_bytes(self.model_config, 1, cfg.page_size)
        self.last_stats = {
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
