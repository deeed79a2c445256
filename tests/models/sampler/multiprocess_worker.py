"""One process of the multi-process sampler test (run by test_multiprocess.py).

``python multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR`` with 2 CPU devices
per process (4 with a single process) and a (data=2, fsdp=2) mesh over all devices. Each
process samples its own share of the prompts with the continuous decoder (2 slots per
shard; process 1's samples run longer than process 0's, so process 0 runs idle segments
until process 1 is done) and with the static decoder, and writes its rows to
OUT_DIR/rows_<NUM_PROCESSES>_<PROCESS_ID>.npz.
"""

from __future__ import annotations

from tests.multiprocess import worker_arguments

process_id, num_processes, port, out_dir = worker_arguments()

import dataclasses  # noqa: E402
import os  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from coderl_jax.models import transformer  # noqa: E402
from coderl_jax.models.config import ModelConfig  # noqa: E402
from coderl_jax.models.sampler import Sampler, SamplingConfig  # noqa: E402
from coderl_jax.parallel import mesh as mesh_lib  # noqa: E402
from coderl_jax.parallel import multihost  # noqa: E402

CONFIG = ModelConfig(
    vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
    num_kv_heads=2, head_dim=8,
)  # fmt: skip
PROMPTS = [[3 + i, 9, 20 + i, 4, 7][: 1 + i % 5] for i in range(8)]
G = 2
LIMITS = np.asarray([2, 3, 1, 4, 2, 5, 3, 2, 9, 7, 10, 8, 6, 10, 9, 4])  # [16]: row limits


def main() -> None:
    if num_processes > 1:
        assert multihost.initialize_distributed(f"localhost:{port}", num_processes, process_id)
    assert jax.device_count() == 4 and jax.process_count() == num_processes
    mesh = mesh_lib.make_mesh(2, 2, 1)
    params = jax.jit(
        transformer.init_params,
        static_argnums=0,
        out_shardings=mesh_lib.param_shardings(CONFIG, mesh),
    )(CONFIG, jax.random.key(1))
    prompts = len(PROMPTS) // num_processes
    mine = slice(process_id * prompts, (process_id + 1) * prompts)
    limits = LIMITS[mine.start * G : mine.stop * G]
    cfg = SamplingConfig(10, temperature=1.0, pad_id=0, prompt_buckets=(8,), num_slots=2)
    cfg = dataclasses.replace(cfg, page_size=2, segment_steps=2)
    rows = {}
    for decoder in ("continuous", "static"):
        sampler = Sampler(CONFIG, dataclasses.replace(cfg, decoder=decoder), mesh)
        out = sampler.sample(params, PROMPTS[mine], G, jax.random.key(5), max_lengths=limits)
        out = jax.tree.map(multihost.local_rows, out)
        rows[f"{decoder}_tokens"] = out.completion_tokens
        rows[f"{decoder}_logprobs"] = out.logprobs
        rows[f"{decoder}_lengths"] = out.completion_lengths
        if decoder == "continuous":
            rows["segments"] = np.asarray(sampler.last_stats["sampler/segments"])
    np.savez(os.path.join(out_dir, f"rows_{num_processes}_{process_id}.npz"), **rows)


if __name__ == "__main__":
    main()
