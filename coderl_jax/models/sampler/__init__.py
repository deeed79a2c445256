"""Rollout sampler: prompts -> G completions each, with log-probs and finish reasons.

One call samples G completions for each of P prompts (N = P * G rows; row n continues
prompt n // G). Each prompt is prefilled once and its KV cache shared by its samples.

KV memory (compute dtype; per token 2 * L * K * Dh values):

* continuous, per batch shard (one device per data x fsdp position of the mesh; the whole
  call without one): a pool of ``P_s * ceil(bucket / page_size) + num_pages + 1`` pages of
  ``page_size`` tokens (the pages of the P_s prompts of the shard's rows, pages for
  generated tokens -- by default ``num_slots * ceil((max_new_tokens - 1) / page_size)`` --
  and one scratch page). In use: the prompt pages plus, per decoding slot,
  ceil((length + segment_steps - 1) / page_size) pages, so memory follows the tokens
  actually generated; ``num_pages`` below the worst case makes the scheduler preempt and
  retry the youngest slots instead of failing.
* static: ``P * bucket + N * (max_new_tokens - 1)`` tokens, whatever the lengths (split
  over the batch shards with the rows).

Mesh and processes: a call's rows are split into equal contiguous blocks over the batch
shards, as the train batch is. The continuous decoder gives each shard its own slots,
page pool and queue (`paged_kv` runs the attention per shard under `jax.shard_map`); each
process schedules its own shards, and all processes run the same number of segments.

Determinism: the uniform that draws token t of sample n comes from (key, n, t), so a fixed
key gives the same samples whatever the slots, pages, chunks, mesh or processes (n is the
row's global index; up to floating-point rounding of the logits, which differs between
layouts), and a preempted sample redraws the same tokens.

Files, in the order of the data path:

* `config.py`: `SamplingConfig`, finish reasons, prompt buckets and left padding.
* `prefill.py`: prompts into KV pages, every sample's first token.
* `continuous.py`: the device loop of the continuous decoder (paged KV, decode slots).
* `scheduler.py`: its host loop (slot refills, page allocation, preemption, early hand-off).
* `static.py`: the static decoder (all rows together, dense cache; one compiled loop).
* `sampling.py`: sampling math (temperature, top-k, nucleus, inverse CDF, per-sample RNG).
* `output.py`: `SampleOutput` and `FinishedSamples`.
* `front.py`: `Sampler`, the host front end.
"""

from coderl_jax.models.sampler.config import (
    FINISH_LENGTH,
    FINISH_STOP,
    SamplingConfig,
    left_pad,
)
from coderl_jax.models.sampler.front import Sampler
from coderl_jax.models.sampler.output import FinishedSamples, SampleOutput
from coderl_jax.models.sampler.sampling import (
    categorical_inverse_cdf,
    nucleus_threshold,
    sample_tokens,
    sample_uniforms,
    sampling_log_probs,
)

__all__ = [
    "FINISH_LENGTH",
    "FINISH_STOP",
    "FinishedSamples",
    "SampleOutput",
    "Sampler",
    "SamplingConfig",
    "categorical_inverse_cdf",
    "left_pad",
    "nucleus_threshold",
    "sample_tokens",
    "sample_uniforms",
    "sampling_log_probs",
]
