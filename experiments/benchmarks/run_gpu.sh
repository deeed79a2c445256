#!/usr/bin/env bash
# Runs the GPU mode of every speed/memory benchmark once, on one GPU (A100/H100/H200):
#   sampling.py --gpu         decode tokens/s and HBM-roofline fraction (Qwen2.5-Coder-0.5B shape)
#   train_step.py --gpu       GRPO update tokens/s and MFU (same shape, seq 2048)
#   logprobs_memory           compiled memory of chunked vs full-logits loss+grad
# Usage: bash experiments/benchmarks/run_gpu.sh [OUT_DIR]   (logs land in OUT_DIR)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/coderl_gpu_bench}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
"$python" -c "import jax; print('jax', jax.__version__, jax.devices())" | tee -a "$out/gpu.txt"
timeout 200 "$python" experiments/benchmarks/sampling.py --gpu 2>&1 | tee "$out/sampling.log"
timeout 200 "$python" -m experiments.benchmarks.train_step --gpu 2>&1 | tee "$out/train_step.log"
timeout 100 "$python" -m experiments.benchmarks.logprobs_memory 2>&1 | tee "$out/logprobs_memory.log"
