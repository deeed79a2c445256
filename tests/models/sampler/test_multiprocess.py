"""Two processes joined by jax.distributed sample exactly like one process: each schedules
its own prompts over its own batch shards, and both run the same number of segments."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.multiprocess import free_port, start_worker

WORKER = os.path.join(os.path.dirname(__file__), "multiprocess_worker.py")


@pytest.mark.slow
def test_two_processes_sample_like_one(tmp_path):
    port = free_port()
    procs = [start_worker(WORKER, 0, 1, port, str(tmp_path))] + [
        start_worker(WORKER, i, 2, port, str(tmp_path)) for i in (0, 1)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out.decode()[-3000:]
    single = np.load(tmp_path / "rows_1_0.npz")
    multi = [np.load(tmp_path / f"rows_2_{i}.npz") for i in (0, 1)]
    for decoder in ("continuous", "static"):
        for name in ("tokens", "lengths", "logprobs"):
            joined = np.concatenate([m[f"{decoder}_{name}"] for m in multi])
            expected = single[f"continuous_{name}"]  # the one-process continuous decoder
            np.testing.assert_allclose(joined, expected, atol=1e-5, err_msg=f"{decoder} {name}")
    limits = [2, 3, 1, 4, 2, 5, 3, 2, 9, 7, 10, 8, 6, 10, 9, 4]
    np.testing.assert_array_equal(single["continuous_lengths"], limits)
    # Process 0's samples end early; it runs idle segments until process 1 is done.
    assert int(multi[0]["segments"]) == int(multi[1]["segments"]) == int(single["segments"])
