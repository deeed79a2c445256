"""A run's files through `coderl_jax.storage`: a workdir given as a string or an
``epath.Path`` gives the same files; a ``gs://`` workdir (a fake bucket: fsspec's memory
filesystem registered for ``gs``, which like GCS has no append and no directories of its
own) holds the config, flags, metrics, samples, TensorBoard events, reports, the alignment
buffer and an HF export; and the modules that touch a workdir no longer call ``open`` or
``os`` on it."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from etils import epath
from etils.epath import backend as epath_backend
from fsspec.implementations.memory import MemoryFileSystem

from coderl_jax import config as config_lib
from coderl_jax import storage
from coderl_jax import workdir as workdir_lib
from coderl_jax.checkpoint import Checkpointer
from coderl_jax.metrics import MetricsWriter
from coderl_jax.models import hf_io, tiny
from coderl_jax.models import tokenizer as tokenizer_lib
from coderl_jax.reports import plot_curves, read_metrics, summary_table
from coderl_jax.rl.alignment_buffer import AlignmentBuffer
from tests.rl.test_alignment_buffer import make_task
from tests.test_checkpoint import abstract_of, assert_trees_equal, make_buffer, make_state
from tests.test_metrics import read_events, scalars

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeBucket(MemoryFileSystem):
    """``gs://`` in memory, with GCS's limits: objects are written whole (no append, no
    update in place) and a "directory" exists only while objects lie under it."""

    protocol = ("gs", "gcs")
    store: dict = {}  # noqa: RUF012 - fsspec's memory filesystem keeps its objects here
    pseudo_dirs = [""]  # noqa: RUF012

    def __init__(self, *args, finalize_on_close=True, **kwargs):
        super().__init__(*args, **kwargs)

    @classmethod
    def _strip_protocol(cls, path):
        path = os.fspath(path)
        for prefix in ("gs://", "gcs://"):
            path = path.removeprefix(prefix)
        return path.strip("/")

    def makedirs(self, path, exist_ok=False):
        pass

    def mkdir(self, path, create_parents=True, **kwargs):
        pass

    def _open(self, path, mode="rb", **kwargs):
        if mode not in ("rb", "wb"):
            raise NotImplementedError(f"an object store cannot open {path} with mode {mode!r}")
        return super()._open(path, mode, **kwargs)


@pytest.fixture
def bucket(monkeypatch, tmp_path_factory):
    """``gs://bucket`` as a `FakeBucket` (etils reads gs:// through fsspec without
    TensorFlow); yields the objects' store, ``{"bucket/<path>": file}``. The test runs in
    an empty directory that must stay empty (no ``gs:/...`` written as a local path)."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("etils reads gs:// through tf.io.gfile when TensorFlow is installed")
    registry = importlib.import_module("fsspec.registry")._registry  # fsspec.registry is a view
    monkeypatch.setitem(registry, "gs", FakeBucket)
    monkeypatch.setitem(registry, "gcs", FakeBucket)
    cache = getattr(epath_backend.fsspec_backend._get_filesystem, "cache_clear", lambda: None)
    cache()
    FakeBucket.store.clear()
    yield FakeBucket.store
    FakeBucket.store.clear()
    cache()
    assert os.listdir(cwd) == []


def objects(store, prefix="bucket/run/") -> list[str]:
    return sorted(key.removeprefix(prefix) for key in store if key.startswith(prefix))


def write_a_run(workdir, steps=3) -> None:
    with MetricsWriter(workdir, total_steps=steps, samples_every=1, print_fn=print) as w:
        for step in range(steps):
            w.write(step, {"train/loss": 1.0 / (step + 1), "rollout/code/reward_mean": step})
            w.write_samples(step, "code", [("prompt", "completion é", 0.5, {"passed": 1})])
            w.end_step(step)
        w.write(steps, {"eval/synthetic/pass@1": 0.5})


def make_config(workdir) -> config_lib.Config:
    return config_lib.Config(run=config_lib.RunConfig(workdir=os.fspath(workdir), steps=3))


# ------------------------------------------------------------------ local paths


def test_a_workdir_as_a_string_or_an_epath_path_gives_the_same_files(tmp_path):
    as_string, as_epath = tmp_path / "string", epath.Path(tmp_path / "epath")
    for workdir in (str(as_string), as_epath):
        write_a_run(workdir)
        workdir_lib.record(make_config(workdir), ["--steps=3"], "python run.py")
    for name in ("metrics.jsonl", "samples.txt"):
        assert (as_string / name).read_bytes() == Path(as_epath, name).read_bytes(), name
    files = ["config.json", "flags.txt", "metrics.jsonl", "samples.txt", "tensorboard"]
    assert sorted(os.listdir(as_string)) == sorted(os.listdir(as_epath)) == files
    flags_text = Path(as_epath, "flags.txt").read_text()
    assert f"--flagfile={as_epath}/flags.txt" in flags_text
    assert config_lib.Config.load(as_epath / "config.json") == make_config(as_epath)
    assert summary_table(as_epath / "metrics.jsonl") == summary_table(
        str(as_string / "metrics.jsonl")
    )
    plot_curves(as_epath / "metrics.jsonl", as_epath / "curves.png")
    assert Path(as_epath, "curves.png").read_bytes().startswith(PNG_MAGIC)


def test_checkpoints_of_a_workdir_given_as_an_epath_path(tmp_path):
    workdir = epath.Path(tmp_path / "run")
    state, buffer = make_state(), make_buffer()
    ckpt = Checkpointer(workdir, keep_last=1)
    assert ckpt.directory == str(tmp_path / "run" / "checkpoints")
    assert ckpt.save(3, state, {"next_step": 3}, write_buffer=buffer.save_jsonl)
    ckpt.close()
    assert workdir_lib.checkpoint_steps(workdir) == [3]
    reader = Checkpointer(workdir, read_only=True)
    restored = reader.restore(abstract_of(state))
    assert_trees_equal(restored.state, state)
    assert AlignmentBuffer.load_jsonl(restored.buffer_path) == buffer
    params = reader.restore_params(abstract_of(state["params"])).state
    assert_trees_equal(params, state["params"])
    reader.close()


def test_append_file_writes_a_local_file_as_it_goes(tmp_path):
    f = storage.AppendFile(tmp_path / "log.txt")
    f.write("ab\n")
    f.flush_soon()
    assert (tmp_path / "log.txt").read_text() == "ab\n" and f.tell() == 3
    f.write(b"c")
    f.close()
    assert (tmp_path / "log.txt").read_bytes() == b"ab\nc"
    again = storage.AppendFile(tmp_path / "log.txt")
    assert again.tell() == 4
    again.close()


def test_an_error_while_writing_leaves_the_old_file(tmp_path):
    path = tmp_path / "x.json"
    storage.write_atomically(path, "old")
    with pytest.raises(RuntimeError), storage.atomic_writer(path) as f:
        f.write(b"partial")
        raise RuntimeError
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["x.json"]


# ------------------------------------------------------------------ a gs:// bucket


def test_the_fake_bucket_behaves_like_gcs(bucket):
    path = epath.Path("gs://bucket/run/a.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    assert not path.parent.exists()  # no directory objects
    path.write_text("x")
    assert path.parent.is_dir() and objects(bucket) == ["a.txt"]
    with pytest.raises(NotImplementedError, match="mode 'ab'"), path.open("a"):
        pass


def test_a_run_writes_its_files_to_a_bucket_and_reads_them_back(bucket, tmp_path):
    workdir = "gs://bucket/run"
    config = make_config(workdir)
    workdir_lib.record(config, ["--steps=3"], "python run.py")
    assert config_lib.Config.load(f"{workdir}/config.json") == config
    write_a_run(workdir)
    write_a_run(tmp_path)  # the same run on a local disk
    for name in ("metrics.jsonl", "samples.txt"):
        assert epath.Path(workdir, name).read_bytes() == (tmp_path / name).read_bytes(), name
    (event_file,) = [name for name in objects(bucket) if name.startswith("tensorboard/")]
    assert event_file.startswith("tensorboard/events.out.tfevents.")
    local = tmp_path / "events"
    local.write_bytes(bucket[f"bucket/run/{event_file}"].getvalue())
    assert scalars(read_events(local))[:2] == [
        (0, "train/loss", 1.0),
        (0, "rollout/code/reward_mean", 0.0),
    ]
    assert read_metrics(f"{workdir}/metrics.jsonl") == read_metrics(tmp_path / "metrics.jsonl")
    assert summary_table(f"{workdir}/metrics.jsonl").startswith("| metric | first |")
    plot_curves(f"{workdir}/metrics.jsonl", f"{workdir}/curves.png")
    assert epath.Path(workdir, "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert objects(bucket) == sorted(
        ["config.json", "flags.txt", "metrics.jsonl", "samples.txt", "curves.png", event_file]
    )


def test_a_resumed_run_cuts_its_bucket_files_back_to_the_checkpoint(bucket):
    workdir = "gs://bucket/run"
    with MetricsWriter(workdir, total_steps=4, print_fn=lambda line: None) as w:
        for step in range(2):
            w.write(step, {"train/loss": float(step)})
        positions = w.positions()
        for step in range(2, 4):
            w.write(step, {"train/loss": float(step)})
    with MetricsWriter(
        workdir, total_steps=4, start_step=2, resume_at=positions, print_fn=lambda line: None
    ) as w:
        cut = w.positions()  # cut back to the checkpoint's sizes, then a resume line
        assert cut["metrics.jsonl"] == positions["metrics.jsonl"]
        assert epath.Path(workdir, "samples.txt").read_text() == "##### resumed at step 2 #####\n"
        w.write(2, {"train/loss": 20.0})
    assert read_metrics(f"{workdir}/metrics.jsonl")["train/loss"] == [0.0, 1.0, 20.0]
    with MetricsWriter(workdir, total_steps=4, start_step=1, print_fn=lambda line: None):
        pass  # no positions (an older checkpoint): the lines of steps >= 1 go
    assert read_metrics(f"{workdir}/metrics.jsonl")["step"] == [0]


def test_an_object_is_written_again_when_due_and_always_on_flush(bucket):
    now = [0.0]
    f = storage.AppendFile("gs://bucket/run/log.txt", upload_every_s=30, clock=lambda: now[0])
    f.write("a")
    f.flush_soon()  # the first write is due at once
    f.write("b")
    now[0] = 10.0
    f.flush_soon()
    assert epath.Path("gs://bucket/run/log.txt").read_text() == "a" and f.tell() == 2
    now[0] = 31.0
    f.flush_soon()
    assert epath.Path("gs://bucket/run/log.txt").read_text() == "ab"
    f.write("c")
    f.close()
    assert epath.Path("gs://bucket/run/log.txt").read_text() == "abc"


def test_checkpoint_steps_on_a_bucket_are_the_committed_ones(bucket):
    for step in (2, 3):
        epath.Path(f"gs://bucket/run/checkpoints/{step}/extras/metadata").write_text("{}")
    epath.Path("gs://bucket/run/checkpoints/2/commit_success.txt").write_text("done")
    assert workdir_lib.checkpoint_steps("gs://bucket/run") == [2]  # 3 was cut short


def test_the_alignment_buffer_and_an_hf_export_on_a_bucket(bucket, tmp_path):
    buffer = AlignmentBuffer(tasks=[make_task("a", 0, 1), make_task("b", 1, 2)])
    buffer.save_jsonl("gs://bucket/run/buffer.jsonl")
    assert AlignmentBuffer.load_jsonl("gs://bucket/run/buffer.jsonl") == buffer

    spec = tiny.TinyModelSpec(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2,
        num_kv_heads=1, num_corpus_problems=50,
    )  # fmt: skip
    source = tiny.build_tiny_model(str(tmp_path / "tiny"), spec)
    config, params = hf_io.load_pretrained(source)
    tokenizer = tokenizer_lib.load_tokenizer(source)
    hf_io.save_pretrained("gs://bucket/run/hf", config, params, tokenizer, max_shard_bytes=20_000)
    hf_io.save_pretrained(tmp_path / "hf", config, params, tokenizer, max_shard_bytes=20_000)
    names = objects(bucket, "bucket/run/hf/")
    assert names == sorted(os.listdir(tmp_path / "hf")) and "tokenizer.json" in names
    for name in names:
        assert (
            epath.Path("gs://bucket/run/hf", name).read_bytes()
            == (tmp_path / "hf" / name).read_bytes()
        ), name
    again_config, again = hf_io.load_pretrained("gs://bucket/run/hf")
    assert again_config == config
    jax.tree.map(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, again
    )
    assert hf_io.read_generation_config("gs://bucket/run/hf") == json.loads(
        (tmp_path / "hf" / hf_io.GENERATION_CONFIG).read_text()
    )


# ------------------------------------------------------------------ no os calls left

# The modules that read or write a workdir or an output directory, and the calls that
# would only work on a local disk.
WORKDIR_MODULES = [
    "coderl_jax/workdir.py",
    "coderl_jax/checkpoint.py",
    "coderl_jax/buffer_item.py",
    "coderl_jax/metrics.py",
    "coderl_jax/reports.py",
    "coderl_jax/loop.py",
    "coderl_jax/learner.py",
    "coderl_jax/preflight.py",
    "coderl_jax/config.py",
    "coderl_jax/rl/alignment_buffer.py",
    "coderl_jax/models/hf_io.py",
    "coderl_jax/models/safetensors_io.py",
    "experiments/evaluate.py",
    "experiments/export_hf.py",
    "experiments/run.py",
]
LOCAL_ONLY = {
    "open",
    "os.makedirs",
    "os.listdir",
    "os.replace",
    "os.rename",
    "os.remove",
    "os.path.exists",
    "os.path.isdir",
    "os.path.isfile",
    "os.path.getsize",
    "glob.glob",
    "shutil.rmtree",
}
# Functions that read what is local by nature: the model and data directories, and the
# temporary directory transformers saves a tokenizer into.
LOCAL_BY_NATURE = {
    ("coderl_jax/preflight.py", "_check_model"),
    ("coderl_jax/preflight.py", "_check_data"),
    ("coderl_jax/preflight.py", "_missing_manual_files"),
    ("coderl_jax/models/hf_io.py", "save_pretrained"),
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def local_only_calls(source: str, allowed: set[str] = frozenset()) -> list[str]:
    """``"<line> <call>"`` of each `LOCAL_ONLY` call in ``source``, except in the
    functions named in ``allowed``."""
    found = []
    for scope in ast.walk(ast.parse(source)):
        if not isinstance(scope, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if getattr(scope, "name", None) in allowed:
            continue
        stack = list(ast.iter_child_nodes(scope))
        while stack:  # the scope's own calls; nested functions are scopes of their own
            node = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(node, ast.Call) and _name(node.func) in LOCAL_ONLY:
                found.append(f"{node.lineno} {_name(node.func)}")
            stack.extend(ast.iter_child_nodes(node))
    return found


def test_no_local_only_file_calls_remain_in_the_workdir_modules():
    sample = "import os\ndef f(p):\n    def g():\n        return open(p)\n    os.makedirs(p)\n"
    assert local_only_calls(sample) == ["5 os.makedirs", "4 open"]
    assert local_only_calls(sample, {"g"}) == ["5 os.makedirs"]
    found = []
    for module in WORKDIR_MODULES:
        allowed = {name for path, name in LOCAL_BY_NATURE if path == module}
        source = (ROOT / module).read_text(encoding="utf-8")
        found += [f"{module}:{call}" for call in local_only_calls(source, allowed)]
    assert found == []
