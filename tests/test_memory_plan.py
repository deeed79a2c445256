"""experiments/benchmarks/memory_plan.py on a scaled-down shape: the 7B flagfile's settings
(mesh 1x8x1, official semantics, cuDNN attention planned as xla_blocked, scanned layers)
with a one-layer model, 8 prompts x 2 samples and 32 + 32 columns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from coderl_jax.models.config import ModelConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "experiments", "benchmarks", "memory_plan.py")
FLAGFILE = os.path.join(REPO, "experiments", "configs", "coderl_plus_qwen25_coder_7b_a100x8.flags")

MODEL = ModelConfig(
    vocab_size=256, hidden_size=64, intermediate_size=128, num_layers=1, num_heads=4,
    num_kv_heads=2, head_dim=16, param_dtype="bfloat16", compute_dtype="bfloat16",
    tie_word_embeddings=False,
)  # fmt: skip


def test_memory_plan_of_a_scaled_down_paper_run(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(MODEL.to_hf()))
    argv = [
        f"--flagfile={FLAGFILE}", f"--hf_dir={tmp_path}", "--prompts_per_step=8",
        "--num_samples=2", "--max_prompt_tokens=32", "--prompt_buckets=32",
        "--max_new_tokens=32", "--num_micro_batches=1", "--num_pages=0",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("XLA_FLAGS", None)  # the script asks for its own 8 CPU devices
    done = subprocess.run(
        [sys.executable, SCRIPT, *argv], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"fits=true per_device_peak_gib=\d+\.\d{3} budget_gib=80\.00", lines[-1])
    assert "note: attention cudnn planned as xla_blocked (same saved tensors)" in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("per device, "))
    assert lines[header].startswith("per device, MiB")
    table = lines[header + 1 : next(i for i, line in enumerate(lines) if line.startswith("peak:"))]
    rows = {line[:34].strip(): line[34:].split() for line in table}
    # 16 rows over 8 shards: 2 slots each, a pool of one prompt's 2 pages, 2 completions'
    # 2 pages each and a scratch page; k and v, bf16: 2 * 16 tokens * 2 kv heads * 16 * 2 B.
    pool_mib = (2 + 2 * 2 + 1) * 2 * 16 * 2 * 16 * 2 / 2**20
    for phase in ("rollout: prefill", "rollout: decode segment"):
        kv, other, temps, peak = map(float, rows[phase])
        assert kv == round(pool_mib, 2)
        # The compiled program's own inputs and outputs beyond the pool: slots and tokens.
        assert 0 <= other < 0.05, (phase, other)
    for phase in ("reference log-probs", "behaviour log-probs", "train step"):
        assert float(rows[phase][0]) == 0 and float(rows[phase][2]) > 0
    peak_mib = max(float(values[-1]) for values in rows.values())
    assert abs(float(lines[-1].split()[1].split("=")[1]) * 1024 - peak_mib) < 1.1
