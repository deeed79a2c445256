"""One process of the multi-process train-step test (run by test_multiprocess.py).

``python multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_NPZ`` with 2 CPU devices
per process (4 with a single process), a (data=2, fsdp=2) mesh over all devices, each
process feeding its own rows of the batch. Process 0 writes the loss and each parameter's update.
"""

from __future__ import annotations

from tests.multiprocess import worker_arguments

process_id, num_processes, port, out_path = worker_arguments()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from train_batches import rollout_batch, small_model_config  # noqa: E402
from update_checks import SMOOTH_ADAM  # noqa: E402

from coderl_jax.models import transformer  # noqa: E402
from coderl_jax.parallel import mesh as mesh_lib  # noqa: E402
from coderl_jax.parallel import multihost  # noqa: E402
from coderl_jax.rl.batch import device_put_batch  # noqa: E402
from coderl_jax.train import state as state_lib  # noqa: E402
from coderl_jax.train import step as step_lib  # noqa: E402
from coderl_jax.train.config import TrainConfig  # noqa: E402

# Adam made smooth in the gradient (update_checks.py): comparable across process layouts.
CONFIG = TrainConfig(learning_rate=1.0, kl_coef=0.0, log_entropy=False, **SMOOTH_ADAM)


def main() -> None:
    if num_processes > 1:
        assert multihost.initialize_distributed(f"localhost:{port}", num_processes, process_id)
    assert jax.device_count() == 4 and jax.process_count() == num_processes
    model_config = small_model_config().replace(num_layers=1)
    params = jax.device_get(
        jax.jit(transformer.init_params, static_argnums=0)(model_config, jax.random.key(1))
    )
    mesh = mesh_lib.make_mesh(2, 2, 1)
    batch = rollout_batch(8)
    rows = 8 // num_processes
    local = jax.tree.map(lambda x: x[process_id * rows : (process_id + 1) * rows], batch)
    state = state_lib.create_train_state(params, model_config, CONFIG, mesh)
    new_state, metrics = step_lib.make_train_step(model_config, CONFIG, mesh)(
        state, device_put_batch(local, mesh)
    )
    new_params = multihost_utils.process_allgather(new_state.params, tiled=True)
    if process_id == 0:
        flat = {  # the update each parameter received
            jax.tree_util.keystr(path): np.asarray(leaf, np.float64) - start
            for (path, leaf), start in zip(
                jax.tree_util.tree_leaves_with_path(new_params), jax.tree.leaves(params)
            )
        }
        np.savez(out_path, loss=np.asarray(metrics["train/loss"]), **flat)


if __name__ == "__main__":
    main()
