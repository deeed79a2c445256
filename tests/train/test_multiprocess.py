"""Two local processes joined by jax.distributed train exactly like one process."""

from __future__ import annotations

import os

import numpy as np
import pytest
from update_checks import assert_updates_close

from tests.multiprocess import free_port, start_worker

WORKER = os.path.join(os.path.dirname(__file__), "multiprocess_worker.py")


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    port = free_port()
    single = start_worker(WORKER, 0, 1, port, str(tmp_path / "single.npz"))
    workers = [start_worker(WORKER, i, 2, port, str(tmp_path / "multi.npz")) for i in range(2)]
    for proc in [single, *workers]:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode()[-3000:]
    single_result = np.load(tmp_path / "single.npz")
    multi_result = np.load(tmp_path / "multi.npz")
    assert sorted(single_result.files) == sorted(multi_result.files)
    assert float(multi_result["loss"]) == pytest.approx(float(single_result["loss"]), rel=1e-5)
    names = [n for n in single_result.files if n != "loss"]
    assert_updates_close([multi_result[n] for n in names], [single_result[n] for n in names])
