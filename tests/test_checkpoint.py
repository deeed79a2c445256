"""Checkpointer: exact round trips (plain and resharded), params as their own item (and
old one-item checkpoints), keep-last-K and keep_period, damaged vs mismatched and
interrupted checkpoints, and SIGTERM -> save -> clean exit in a real subprocess."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from coderl_jax.checkpoint import (
    CheckpointDamagedError,
    Checkpointer,
    CheckpointError,
    CheckpointMismatchError,
)
from coderl_jax.preemption import PreemptionGuard
from coderl_jax.rl.alignment import AlignmentTask
from coderl_jax.rl.alignment_buffer import AlignmentBuffer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_state(seed: int = 0) -> dict:
    """A realistic train state: bf16 + fp32 params, adamw moments, int step, PRNG key."""
    keys = jax.random.split(jax.random.key(seed), 3)
    params = {
        "embed": jax.random.normal(keys[0], (16, 8), jnp.bfloat16),
        "layer": {
            "w": jax.random.normal(keys[1], (8, 8), jnp.float32),
            "b": jnp.arange(8, dtype=jnp.float32),
        },
    }
    optimizer = optax.adamw(1e-3)
    opt_state = optimizer.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    _, opt_state = optimizer.update(grads, opt_state, params)
    return {"params": params, "opt_state": opt_state, "step": jnp.int32(7), "rng": keys[2]}


def abstract_of(state):
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state
    )


def assert_trees_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        assert a.dtype == e.dtype and a.shape == e.shape
        if jax.dtypes.issubdtype(e.dtype, jax.dtypes.prng_key):
            a, e = jax.random.key_data(a), jax.random.key_data(e)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def make_buffer() -> AlignmentBuffer:
    task = AlignmentTask(
        program="x = 3\nprint(x)\n",
        input_kind="stdin",
        stdin="",
        call=None,
        variables=("x",),
        labels={"x": 3},
        expected_output="3\n",
        problem_id="p0",
        step=4,
    )
    return AlignmentBuffer(capacity=10, tasks=[task])


def test_round_trip_is_exact_with_extras_and_buffer(tmp_path):
    state = make_state()
    extras = {"iterator": {"epoch": 1, "index": [3, 4]}, "config": {"alpha": 0.6}}
    buffer = make_buffer()
    ckpt = Checkpointer(tmp_path, save_every=1, keep_last=2)
    assert ckpt.latest_step() is None
    assert ckpt.save(7, state, extras, write_buffer=buffer.save_jsonl)
    ckpt.wait()
    assert ckpt.latest_step() == 7

    restored = Checkpointer(tmp_path, save_every=1, keep_last=2).restore(abstract_of(state))
    assert restored.step == 7
    assert_trees_equal(restored.state, state)
    assert restored.state["params"]["embed"].dtype == jnp.bfloat16
    assert restored.extras == extras
    assert restored.buffer_path == str(
        tmp_path / "checkpoints/7/alignment_buffer/alignment_buffer.jsonl"
    )
    assert AlignmentBuffer.load_jsonl(restored.buffer_path) == buffer
    # A restored key is a working key: it draws the same numbers as the original.
    np.testing.assert_array_equal(
        jax.random.uniform(restored.state["rng"], (4,)), jax.random.uniform(state["rng"], (4,))
    )
    ckpt.close()


def test_params_are_their_own_item_and_restore_without_the_optimizer_state(tmp_path):
    state = make_state()
    ckpt = Checkpointer(tmp_path, save_every=1, keep_last=2)
    ckpt.save(3, state, {"next_step": 3})
    ckpt.wait()
    assert {"params", "train_state", "extras"} <= set(os.listdir(ckpt.step_dir(3)))
    restored = ckpt.restore_params(abstract_of(state["params"]))
    assert restored.step == 3 and restored.extras == {"next_step": 3}
    assert_trees_equal(restored.state, state["params"])
    assert_trees_equal(ckpt.restore(abstract_of(state)).state, state)
    ckpt.close()


def test_checkpoints_of_one_state_item_still_restore(tmp_path):
    """Checkpoints written before params had their own item: one 'state' item."""
    state = make_state()
    manager = ocp.CheckpointManager(
        tmp_path / "checkpoints",
        item_handlers={
            "state": ocp.StandardCheckpointHandler(),
            "extras": ocp.JsonCheckpointHandler(),
        },
    )
    manager.save(5, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), extras=ocp.args.JsonSave({"next_step": 5})
    ))  # fmt: skip
    manager.wait_until_finished()
    manager.close()
    ckpt = Checkpointer(tmp_path, read_only=True)
    restored = ckpt.restore(abstract_of(state))
    assert restored.step == 5 and restored.extras == {"next_step": 5}
    assert_trees_equal(restored.state, state)
    assert_trees_equal(ckpt.restore_params(abstract_of(state["params"])).state, state["params"])
    ckpt.close()


def test_a_checkpoint_of_other_shapes_is_a_mismatch_not_damage(tmp_path):
    ckpt = save_steps(tmp_path, [1, 2])
    wider = {"x": jax.ShapeDtypeStruct((4,), jnp.float32)}
    with pytest.raises(CheckpointMismatchError, match="2: the checkpoint does not fit") as e:
        ckpt.restore(wider)  # no fall back to step 1: it would not fit either
    assert "x is saved with shape (3,), this state has (4,)" in str(e.value)
    other_tree = {"x": wider["x"], "y": wider["x"]}
    with pytest.raises(CheckpointMismatchError, match="settings differ"):
        ckpt.restore(other_tree, step=1)
    ckpt.close()


def test_keep_period_keeps_its_multiples_for_good(tmp_path):
    ckpt = Checkpointer(tmp_path, save_every=1, keep_last=1, keep_period=3)
    for step in range(1, 8):
        ckpt.save(step, {"x": jnp.zeros(2)}, {})
    ckpt.wait()
    assert ckpt.all_steps() == [3, 6, 7]
    ckpt.close()
    with pytest.raises(ValueError, match="keep_period"):
        Checkpointer(tmp_path, keep_period=-1)


def test_sharded_state_restores_onto_a_different_sharding(tmp_path):
    devices = np.array(jax.devices())
    assert devices.size == 8, "conftest.py should give 8 fake CPU devices"
    save_mesh = Mesh(devices.reshape(8), ("data",))
    restore_mesh = Mesh(devices.reshape(2, 4), ("data", "model"))
    value = jnp.arange(16 * 8, dtype=jnp.float32).reshape(16, 8)
    state = {
        "w": jax.device_put(value, NamedSharding(save_mesh, P("data", None))),
        "rng": jax.random.key(3),
    }
    ckpt = Checkpointer(tmp_path, save_every=1, keep_last=1)
    ckpt.save(1, state, {})
    ckpt.wait()

    target = NamedSharding(restore_mesh, P("model", "data"))
    abstract = {
        "w": jax.ShapeDtypeStruct((16, 8), jnp.float32, sharding=target),
        "rng": jax.ShapeDtypeStruct(
            (), state["rng"].dtype, sharding=NamedSharding(restore_mesh, P())
        ),
    }
    restored = ckpt.restore(abstract)
    assert restored.state["w"].sharding == target
    # Each of the 8 devices holds one (4, 4) block, none the whole array.
    assert {shard.data.shape for shard in restored.state["w"].addressable_shards} == {(4, 4)}
    np.testing.assert_array_equal(np.asarray(restored.state["w"]), np.asarray(value))
    assert_trees_equal(restored.state["rng"], state["rng"])
    assert restored.buffer_path is None
    ckpt.close()


def test_save_every_and_keep_last(tmp_path):
    state = {"x": jnp.zeros(2)}
    ckpt = Checkpointer(tmp_path, save_every=2, keep_last=2)
    saved = [step for step in range(1, 8) if ckpt.save(step, state, {"step": step})]
    assert saved == [2, 4, 6]
    assert ckpt.save(7, state, {}, force=True)  # e.g. preemption or end of training
    assert not ckpt.save(6, state, {}, force=True)  # never behind the latest step
    ckpt.wait()
    assert ckpt.all_steps() == [6, 7]
    assert sorted(os.listdir(ckpt.directory)) == ["6", "7"]
    ckpt.close()


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="keep_last"):
        Checkpointer(tmp_path, save_every=1, keep_last=0)
    ckpt = Checkpointer(tmp_path, save_every=1, keep_last=1)
    with pytest.raises(ValueError, match="extras for step 1 are not plain JSON"):
        ckpt.save(1, {"x": jnp.zeros(1)}, {"bad": object()})
    with pytest.raises(CheckpointError, match="no finalised checkpoint to restore"):
        ckpt.restore({"x": jax.ShapeDtypeStruct((1,), jnp.float32)})
    ckpt.close()


def save_steps(tmp_path, steps):
    ckpt = Checkpointer(tmp_path, save_every=1, keep_last=5)
    for step in steps:
        ckpt.save(step, {"x": jnp.full((3,), step, jnp.float32)}, {"step": step})
    ckpt.wait()
    return ckpt


@pytest.mark.parametrize("damage", ["corrupt_json", "missing_state"])
def test_damaged_latest_falls_back_to_previous_step(tmp_path, caplog, damage):
    ckpt = save_steps(tmp_path, [1, 2])
    step_dir = os.path.join(ckpt.directory, "2")
    if damage == "corrupt_json":
        extras_file = os.path.join(step_dir, "extras", "metadata")
        assert os.path.isfile(extras_file), os.listdir(os.path.join(step_dir, "extras"))
        with open(extras_file, "w") as f:
            f.write('{"step": ')
    else:
        for name in os.listdir(os.path.join(step_dir, "train_state")):
            path = os.path.join(step_dir, "train_state", name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    abstract = {"x": jax.ShapeDtypeStruct((3,), jnp.float32)}

    with pytest.raises(CheckpointDamagedError, match=f"{step_dir}: cannot restore step 2: the"):
        ckpt.restore(abstract, step=2)
    with caplog.at_level(logging.WARNING, logger="coderl_jax.checkpoint"):
        restored = ckpt.restore(abstract)
    assert restored.step == 1 and restored.extras == {"step": 1}
    np.testing.assert_array_equal(np.asarray(restored.state["x"]), [1.0, 1.0, 1.0])
    assert any(step_dir in record.getMessage() for record in caplog.records)
    with pytest.raises(CheckpointError, match="no finalised checkpoint for step 5"):
        ckpt.restore(abstract, step=5)
    ckpt.close()


def run_python(code: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_interrupted_async_save_never_becomes_latest(tmp_path):
    # The child finishes step 1, starts an async save of step 2 (64 MiB) and dies at once.
    child = run_python(f"""
        import os, jax.numpy as jnp
        from coderl_jax.checkpoint import Checkpointer
        ckpt = Checkpointer({str(tmp_path)!r}, save_every=1, keep_last=3)
        ckpt.save(1, {{"x": jnp.ones((4,))}}, {{}})
        ckpt.wait()
        ckpt.save(2, {{"x": jnp.ones((16 * 2**20,))}}, {{}})
        os._exit(0)
    """)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    leftovers = os.listdir(tmp_path / "checkpoints")
    assert "1" in leftovers and any(name.startswith("2.") for name in leftovers), leftovers
    ckpt = Checkpointer(tmp_path, save_every=1, keep_last=3)
    assert ckpt.all_steps() == [1]
    assert ckpt.latest_step() == 1
    # The resumed run redoes step 2; orbax deletes the leftover temporary directory first.
    assert ckpt.save(2, {"x": jnp.full((4,), 2.0)}, {"resumed": True})
    ckpt.wait()
    assert sorted(os.listdir(ckpt.directory)) == ["1", "2"]
    assert ckpt.restore({"x": jax.ShapeDtypeStruct((4,), jnp.float32)}).extras == {"resumed": True}
    ckpt.close()


def test_sigterm_sets_the_flag_and_the_loop_saves_and_exits(tmp_path):
    child = run_python(f"""
        import time, jax.numpy as jnp
        from coderl_jax.checkpoint import Checkpointer
        from coderl_jax.preemption import PreemptionGuard
        ckpt = Checkpointer({str(tmp_path)!r}, save_every=1000, keep_last=1)
        with PreemptionGuard() as guard:
            print("ready", flush=True)
            for step in range(1, 10_000):
                time.sleep(0.01)  # one "training step"
                if guard.should_stop(step):
                    ckpt.save(step, {{"x": jnp.full((2,), step)}}, {{"preempted": True}},
                              force=True)
                    ckpt.close()
                    print("saved", step, flush=True)
                    break
    """)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    saved_step = int(out.split()[-1])
    ckpt = Checkpointer(tmp_path, save_every=1000, keep_last=1)
    restored = ckpt.restore({"x": jax.ShapeDtypeStruct((2,), jnp.int32)})
    assert restored.step == saved_step and restored.extras == {"preempted": True}
    ckpt.close()


def test_preemption_guard_restores_previous_handler():
    previous = signal.getsignal(signal.SIGTERM)
    with PreemptionGuard() as guard:
        assert not guard.should_stop(0)
        os.kill(os.getpid(), signal.SIGTERM)
        assert guard.should_stop(1) and guard.received_signal == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous


def test_extras_are_stored_as_readable_json(tmp_path):
    ckpt = save_steps(tmp_path, [3])
    with open(os.path.join(ckpt.directory, "3", "extras", "metadata")) as f:
        assert json.load(f) == {"step": 3}
    ckpt.close()


def test_read_only_restores_another_run_without_touching_it(tmp_path):
    save_steps(tmp_path, [4]).close()
    stale = tmp_path / "checkpoints" / "5.orbax-checkpoint-tmp"
    stale.mkdir()  # e.g. the other run is still writing step 5
    other_run = Checkpointer(tmp_path, read_only=True)
    restored = other_run.restore({"x": jax.ShapeDtypeStruct((3,), jnp.float32)})
    assert restored.step == 4 and restored.extras == {"step": 4}
    with pytest.raises(CheckpointError, match="opened read-only, cannot save step 6"):
        other_run.save(6, {"x": jnp.zeros(3)}, {})
    other_run.close()
    assert stale.is_dir()
    with pytest.raises(CheckpointError, match="no checkpoint directory to read from"):
        Checkpointer(tmp_path / "missing", read_only=True)
