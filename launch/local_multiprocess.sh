#!/usr/bin/env bash
# Runs experiments/run.py as N cooperating processes on this machine (CPU by default): the
# multi-host code path (jax.distributed, per-process data shards, process-0 writes) without a
# cluster. tests/test_launch.py runs a two-step tiny run through it.
#
#   launch/local_multiprocess.sh [options] -- [run.py flags...]
#   launch/local_multiprocess.sh --num_processes=2 -- \
#       --flagfile=experiments/configs/tiny_cpu.flags --steps=2 --workdir=runs/mp
#
# Each process gets JAX_COORDINATOR_ADDRESS=localhost:PORT, JAX_NUM_PROCESSES=N and
# JAX_PROCESS_ID=i, which `run.py --distributed` (coderl_jax.parallel.multihost.initialize_distributed)
# reads. Logs: LOG_DIR/process_<i>.log. Exits 0 only if every process does; when one fails
# the others are stopped (they would wait for it at the next collective).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: launch/local_multiprocess.sh [options] -- [experiments/run.py flags...]

Options:
  --num_processes=N         processes to start (default 2)
  --devices_per_process=D   fake CPU devices per process (default 1)
  --port=PORT               coordinator port on localhost (default: a free port)
  --log_dir=DIR             per-process logs go to DIR/process_<i>.log (default logs/local_mp)
  --platform=NAME           JAX_PLATFORMS for the processes (default cpu)
  -h, --help                this text

Environment: PYTHON (default python3) runs experiments/run.py.
USAGE
}

num_processes=2
devices_per_process=1
port=""
log_dir="logs/local_mp"
platform="cpu"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --num_processes=*) num_processes="${1#*=}" ;;
    --devices_per_process=*) devices_per_process="${1#*=}" ;;
    --port=*) port="${1#*=}" ;;
    --log_dir=*) log_dir="${1#*=}" ;;
    --platform=*) platform="${1#*=}" ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "local_multiprocess.sh: unknown option '$1' (run.py flags go after --)" >&2
       usage >&2; exit 2 ;;
  esac
  shift
done

python="${PYTHON:-python3}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${port}" ]]; then
  port="$("${python}" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')"
fi
mkdir -p "${log_dir}"

pids=()
stop_all() {
  for pid in "${pids[@]}"; do
    kill "${pid}" 2>/dev/null || true
  done
}
trap 'stop_all; exit 130' INT TERM

for ((i = 0; i < num_processes; i++)); do
  JAX_COORDINATOR_ADDRESS="localhost:${port}" \
  JAX_NUM_PROCESSES="${num_processes}" \
  JAX_PROCESS_ID="${i}" \
  JAX_PLATFORMS="${platform}" \
  XLA_FLAGS="--xla_force_host_platform_device_count=${devices_per_process}" \
    "${python}" "${repo}/experiments/run.py" --distributed "$@" \
    >"${log_dir}/process_${i}.log" 2>&1 &
  pids+=("$!")
  echo "process ${i}: pid $! log ${log_dir}/process_${i}.log"
done

# Poll rather than `wait -n`: a failed process must stop the others, whatever the order.
status=0
declare -A done_pids=()
while ((${#done_pids[@]} < ${#pids[@]})); do
  for ((i = 0; i < num_processes; i++)); do
    pid="${pids[i]}"
    if [[ -z "${done_pids[${pid}]:-}" ]] && ! kill -0 "${pid}" 2>/dev/null; then
      code=0
      wait "${pid}" || code=$?
      done_pids[${pid}]=1
      if ((code != 0 && status == 0)); then
        echo "process ${i} (pid ${pid}) exited with status ${code}; stopping the others" >&2
        status=${code}
        stop_all
      fi
    fi
  done
  sleep 1
done
for ((i = 0; i < num_processes; i++)); do
  echo "--- process ${i} (last lines of ${log_dir}/process_${i}.log) ---"
  tail -n 5 "${log_dir}/process_${i}.log"
done
exit "${status}"
