"""Peak host memory of loading a HF checkpoint: `hf_io.load_pretrained` vs a naive loader.

Builds (once, cached in --ckpt_dir) a randomly initialised checkpoint of a given preset's
shape with transformers (default: Qwen2.5-Coder-0.5B in bf16, ~1 GB), then loads it in two
fresh subprocesses and reports each one's peak RSS increase over its RSS after imports:

* ours: `hf_io.load_pretrained` (streams one tensor at a time onto the device);
* naive (baseline): read every tensor of the file into host memory first, then transpose
  each and place it on the device, keeping everything until the end.

    python experiments/benchmarks/checkpoint_memory.py [--preset=qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import gc, json, resource, sys
import psutil
import jax, numpy as np
from coderl_jax.models import hf_io
mode, path = sys.argv[1], sys.argv[2]
jax.devices()
base = psutil.Process().memory_info().rss
if mode == "ours":
    config, params = hf_io.load_pretrained(path)
else:
    from coderl_jax.models.safetensors_io import SafetensorsFile
    f = SafetensorsFile(path + "/model.safetensors")
    raw = {name: f.read(name) for name in f.keys()}  # whole checkpoint in host memory
    converted = {name: np.ascontiguousarray(a.T) for name, a in raw.items()}
    params = jax.tree.map(jax.device_put, converted)
jax.block_until_ready(params)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak_increase": peak - base}))
"""


def build_checkpoint(preset: str, path: str) -> None:
    if os.path.isfile(os.path.join(path, "config.json")):
        return
    import torch
    import transformers

    from coderl_jax.models.config import PRESETS

    hf = PRESETS[preset].to_hf()
    config = transformers.AutoConfig.for_model(
        **{k: v for k, v in hf.items() if k != "architectures"}
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(path)


def measure(mode: str, path: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, path],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_increase"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", default="qwen2.5-coder-0.5b", help="coderl_jax.models.config.PRESETS key"
    )
    parser.add_argument(
        "--ckpt_dir", default="/tmp/coderl_jax_bench_ckpt", help="where the checkpoint is built"
    )
    args = parser.parse_args()
    path = os.path.join(args.ckpt_dir, args.preset)
    build_checkpoint(args.preset, path)
    weights = sum(
        os.path.getsize(os.path.join(path, f))
        for f in os.listdir(path)
        if f.endswith(".safetensors")
    )
    ours = measure("ours", path)
    naive = measure("naive", path)
    gib = 1024**3
    print(f"checkpoint {args.preset}: weights {weights / gib:.2f} GiB on disk")
    print(
        f"ours  (hf_io.load_pretrained): peak RSS +{ours / gib:.2f} GiB = {ours / weights:.2f}x weights"
    )
    print(
        f"naive (read all, then convert): peak RSS +{naive / gib:.2f} GiB = {naive / weights:.2f}x weights"
    )
    print(f"ratio naive/ours: {naive / ours:.2f}")


if __name__ == "__main__":
    main()
