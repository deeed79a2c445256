"""Metrics: TensorBoard events (read back through their TFRecord framing) with the JSONL keys
as tags, metrics.jsonl round trip and resume (cut back to a checkpoint's positions, or by
step), one console line per step and per evaluation with the ETA on a fake clock, samples
log, summary table, PNG."""

import glob
import json
import os
import struct

import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from coderl_jax.metrics import ConsoleProgress, MetricsWriter, format_duration
from coderl_jax.reports import eval_before_after, plot_curves, read_metrics, summary_table


def _crc32c(data: bytes) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(path: str) -> list:
    """Parses a TFRecord file: u64 length, masked crc(length), payload, masked crc(payload)."""
    with open(path, "rb") as f:
        data = f.read()
    events, pos = [], 0
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8 : pos + 12])[0] == _masked_crc(header)
        payload = data[pos + 12 : pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])[0] == (
            _masked_crc(payload)
        )
        events.append(event_pb2.Event.FromString(payload))
        pos += 16 + length
    return events


def scalars(events) -> list[tuple[int, str, float]]:
    return [
        (event.step, value.tag, value.simple_value)
        for event in events
        for value in event.summary.value
    ]


def test_crc32c_matches_the_standard_check_value():
    assert _crc32c(b"123456789") == 0xE3069283


def test_writes_jsonl_and_tensorboard_events(tmp_path):
    with MetricsWriter(tmp_path, total_steps=3, print_fn=lambda line: None) as writer:
        writer.write(1, {"train/loss": 0.5, "rollout/code/reward_mean": np.float32(0.25)})
        writer.write(2, {"train/loss": jnp.float32(0.125), "train/nan_metric": float("nan")})
        writer.write(2, {"eval/synthetic/pass@1": 0.75})
    with open(tmp_path / "metrics.jsonl") as f:
        lines = [json.loads(line) for line in f]
    assert lines == [
        {"step": 1, "train/loss": 0.5, "rollout/code/reward_mean": 0.25},
        {"step": 2, "train/loss": 0.125, "train/nan_metric": None},
        {"step": 2, "eval/synthetic/pass@1": 0.75},
    ]
    assert read_metrics(tmp_path / "metrics.jsonl") == {
        "step": [1, 2],
        "eval/synthetic/pass@1": [None, 0.75],
        "rollout/code/reward_mean": [0.25, None],
        "train/loss": [0.5, 0.125],
        "train/nan_metric": [None, None],
    }
    (event_file,) = glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*"))
    got = scalars(read_events(event_file))
    assert got[:3] == [
        (1, "train/loss", 0.5),
        (1, "rollout/code/reward_mean", 0.25),
        (2, "train/loss", 0.125),
    ]
    assert got[3][:2] == (2, "train/nan_metric") and np.isnan(got[3][2])
    assert got[4] == (2, "eval/synthetic/pass@1", 0.75)  # the JSONL key, not pass_1


def test_bad_metrics_are_named(tmp_path):
    with MetricsWriter(tmp_path, total_steps=3, print_fn=lambda line: None) as writer:
        with pytest.raises(ValueError, match="'loss' must be namespaced"):
            writer.write(1, {"loss": 1.0})
        with pytest.raises(ValueError, match=r"'train/logits' must be a real scalar.*shape \(2,\)"):
            writer.write(1, {"train/logits": np.zeros(2)})
    with pytest.raises(RuntimeError, match="already closed"):
        writer.write(2, {"train/loss": 1.0})


def test_resume_drops_re_run_steps_and_a_torn_last_line(tmp_path):
    with MetricsWriter(tmp_path, total_steps=5, print_fn=lambda line: None) as writer:
        for step in range(5):
            writer.write(step, {"train/loss": float(step)})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "train/lo')  # the crash happened mid-write
    # The checkpoint was at step 2, so steps 3 and 4 run again with new values.
    with MetricsWriter(tmp_path, total_steps=5, start_step=3, print_fn=lambda line: None) as w:
        for step in (3, 4):
            w.write(step, {"train/loss": 10.0 * step})
    with open(tmp_path / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [0, 1, 2, 3, 4]
    assert read_metrics(tmp_path / "metrics.jsonl")["train/loss"] == [0.0, 1.0, 2.0, 30.0, 40.0]
    # TensorBoard gets a purge marker so it hides the first run's steps 3 and 4.
    event_files = sorted(glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*")))
    assert len(event_files) == 2
    resumed = read_events(event_files[1])
    starts = [e.step for e in resumed if e.HasField("session_log")]
    assert starts == [3]
    assert event_pb2.SessionLog.START in [e.session_log.status for e in resumed]
    assert scalars(resumed) == [(3, "train/loss", 30.0), (4, "train/loss", 40.0)]


def test_resume_refuses_a_corrupt_middle_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl: line 2 is not a metrics record"):
        MetricsWriter(tmp_path, total_steps=3, start_step=1, print_fn=lambda line: None)


def test_resume_cuts_both_files_back_to_the_checkpoints_positions(tmp_path):
    """What a checkpoint recorded stays, byte for byte; what came after (a line torn by a
    kill -9, or lines of steps after the checkpoint) goes, and TensorBoard gets the kept
    records of the purged steps again (here the evaluation logged with the checkpoint)."""
    with MetricsWriter(tmp_path, total_steps=4, samples_every=1, print_fn=lambda line: None) as w:
        w.write(0, {"train/loss": 1.0})
        w.write_samples(0, "code", [("p", "c", 1.0, None)])
        w.write(1, {"eval/synthetic/pass@1": 0.5})
        positions = w.positions()  # saved with the checkpoint of step 1
        kept = {name: (tmp_path / name).read_bytes() for name in positions}
        w.write(1, {"train/loss": 2.0})
        w.write_samples(1, "code", [("p", "c", 0.0, None)])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "train/lo')
    with MetricsWriter(
        tmp_path, total_steps=4, start_step=1, resume_at=positions, print_fn=lambda line: None
    ) as w:
        for name, content in kept.items():
            assert (tmp_path / name).read_bytes() == content, name
        w.write(1, {"train/loss": 3.0})
    assert read_metrics(tmp_path / "metrics.jsonl")["train/loss"] == [1.0, 3.0]
    resumed = read_events(sorted(glob.glob(str(tmp_path / "tensorboard" / "*.from1")))[0])
    assert scalars(resumed) == [(1, "eval/synthetic/pass@1", 0.5), (1, "train/loss", 3.0)]
    with pytest.raises(ValueError, match="fewer than the"):
        MetricsWriter(tmp_path, 4, start_step=1, resume_at={"metrics.jsonl": 10**6})


class FakeClock:
    def __init__(self, times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def test_one_line_per_step_with_evaluation_time_left_out_of_the_step_time():
    printed = []
    progress = ConsoleProgress(
        total_steps=10,
        window=2,
        keys=("train/loss", "rollout/code/reward_mean"),
        clock=FakeClock([100.0, 102.0, 110.0, 113.0]),
        print_fn=printed.append,
    )
    progress.add(0, {"rollout/code/reward_mean": 0.5})  # host metrics first,
    assert progress.add(0, {"train/loss": 2.0}) is None  # the update's one step later
    line = progress.end_step(0)
    assert line == "step 0 (1/10, 10%) | ETA ? | train/loss 2 | rollout/code/reward_mean 0.5"
    assert progress.end_step(1).startswith("step 1 (2/10, 20%) | 2.00 s/step, ETA 16s")
    # A 5 s evaluation between steps 1 and 2 prints its own line and is left out.
    eval_line = progress.add(
        2, {"eval/synthetic/pass@1": 0.25, "eval/x/seconds": 5.0, "time/eval": 5.0}
    )
    assert eval_line == "eval at step 2 (5s) | eval/synthetic/pass@1 0.25"
    progress.end_step(2)  # 110 - 102 - 5 = 3 s
    # Intervals 3 s and 3 s (window 2): 3 s/step, 6 steps left -> 18 s.
    assert progress.end_step(3).startswith("step 3 (4/10, 40%) | 3.00 s/step, ETA 18s")
    assert len(printed) == 5


def test_progress_prints_every_n_steps_and_the_last_one():
    printed = []
    progress = ConsoleProgress(
        total_steps=7, every=3, clock=FakeClock(range(7)), print_fn=printed.append
    )
    for step in range(7):
        progress.add(step, {"train/loss": 0.5})
        progress.end_step(step)
    assert [line.split(" |")[0] for line in printed] == [
        "step 2 (3/7, 43%)",
        "step 5 (6/7, 86%)",
        "step 6 (7/7, 100%)",
    ]


def test_format_duration():
    assert format_duration(3725.4) == "1h02m05s"
    assert format_duration(134) == "2m14s"
    assert format_duration(16.3) == "16s"


def test_samples_are_written_every_n_steps(tmp_path):
    with MetricsWriter(tmp_path, total_steps=4, samples_every=2, print_fn=print) as w:
        assert not w.write_samples(1, "code", [("p", "c", 1.0, None)])
        assert w.write_samples(
            2,
            "align",
            [("predict x", "x" * 30, 0.55, {"correct": 1}), ("q", "ans", 0.0, None)],
            max_chars=10,
        )
    text = (tmp_path / "samples.txt").read_text()
    assert text == (
        "===== step 2 | align | 2 samples =====\n"
        '--- align sample 0 | reward 0.55 | {"correct": 1} ---\n'
        "[prompt]\npredict x\n"
        "[completion]\nxxxxx\n[... 20 chars cut ...]\nxxxxx\n"
        "--- align sample 1 | reward 0 ---\n"
        "[prompt]\nq\n"
        "[completion]\nans\n"
    )


def write_run(tmp_path) -> str:
    with MetricsWriter(tmp_path, total_steps=4, print_fn=lambda line: None) as writer:
        writer.write(0, {"eval/synthetic/pass@1": 0.25})
        for step, loss, code, align in [
            (1, 1.0, 0.1, 0.2),
            (2, 0.5, 0.3, None),
            (3, 0.7, 0.2, 0.5),
            (4, 0.6, 0.4, 0.45),
        ]:
            metrics = {"train/loss": loss, "rollout/code/reward_mean": code, "train/grad_norm": 3.0}
            if align is not None:
                metrics["rollout/align/reward_mean"] = align
            writer.write(step, metrics)
        writer.write(4, {"eval/synthetic/pass@1": 0.5})
    return str(tmp_path / "metrics.jsonl")


def test_summary_table(tmp_path):
    assert summary_table(write_run(tmp_path)) == (
        "| metric | first | last | best | best step |\n"
        "|---|---|---|---|---|\n"
        "| train/loss | 1 (step 1) | 0.6 (step 4) | 0.5 | 2 |\n"
        "| rollout/align/reward_mean | 0.2 (step 1) | 0.45 (step 4) | 0.5 | 3 |\n"
        "| rollout/code/reward_mean | 0.1 (step 1) | 0.4 (step 4) | 0.4 | 4 |\n"
        "| eval/synthetic/pass@1 | 0.25 (step 0) | 0.5 (step 4) | 0.5 | 4 |\n"
    )
    with pytest.raises(KeyError, match="no metric 'eval/humaneval/pass@1'"):
        summary_table(write_run(tmp_path), keys=["eval/humaneval/pass@1"])


def test_eval_before_after(tmp_path):
    path = write_run(tmp_path)
    with open(path, "a") as f:  # a score evaluated once; counts and timings are not scores
        f.write('{"step": 0, "eval/x/sampled/reward": 0.125, "eval/x/seconds": 9.0}\n')
        f.write('{"step": 4, "eval/x/outcome/passed": 3.0}\n')
    assert eval_before_after(path) == (
        "evaluation                step 0     step 4   change\n"
        "eval/synthetic/pass@1     0.2500     0.5000  +0.2500\n"
        "eval/x/sampled/reward     0.1250          -        -\n"
    )


def test_eval_before_after_one_or_no_evaluation(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0, "train/loss": 1.0}\n')
    assert eval_before_after(path) == ""
    path.write_text('{"step": 0, "eval/synthetic/pass@1": 0.75}\n')
    assert eval_before_after(path) == (
        "evaluation                step 0\neval/synthetic/pass@1     0.7500\n"
    )


def test_plot_curves_writes_a_png(tmp_path):
    out = plot_curves(write_run(tmp_path), tmp_path / "curves.png")
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(out) > 10_000
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (400, 1100)
    assert image.std() > 0.05  # not a blank canvas
