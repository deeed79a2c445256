#!/usr/bin/env bash
# Cloud TPU VM slices for experiments/run.py: create or reuse a slice, install this checkout
# on every worker, run the same command on all workers (one process per host, joined by
# jax.distributed via run.py --distributed), stream the logs, tear down.
#
#   launch/tpu_vm.sh up      --name=N --zone=Z --project=P [--type=v5p-32] [--version=V] [--spot]
#   launch/tpu_vm.sh install --name=N --zone=Z --project=P     # copy this checkout, pip install
#   launch/tpu_vm.sh run     --name=N --zone=Z --project=P -- FLAGFILE [run.py flags...]
#   launch/tpu_vm.sh logs    --name=N --zone=Z --project=P [--worker=0|all]
#   launch/tpu_vm.sh stop    --name=N --zone=Z --project=P     # stop the run, keep the slice
#   launch/tpu_vm.sh down    --name=N --zone=Z --project=P     # delete the slice
#
# Every option may come from the environment instead: TPU_NAME, TPU_ZONE, TPU_PROJECT,
# TPU_TYPE (default v5p-32), TPU_VERSION (default v2-alpha-tpuv5). No project, zone or
# credential is stored in the repository; gcloud uses the account you are logged in with.
# --dry_run prints the gcloud commands instead of running them.
#
# `up` is `install` after creating the slice if it does not exist. `run` starts the command
# detached on all workers (it survives a dropped connection), each writing
# ~/coderl_logs/run.log on its host, then follows worker 0's log (Ctrl-C stops following, not
# the run). The workdir may be a bucket (--workdir=gs://bucket/runs/x), shared by all hosts;
# model and data paths are per host: the same local path on every worker, or a shared disk.
set -euo pipefail

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
  echo "tpu_vm.sh: $*" >&2
  exit 2
}

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
command="$1"
shift
case "${command}" in
  -h | --help) usage; exit 0 ;;
  up | install | run | logs | stop | down) ;;
  *) die "unknown subcommand '${command}' (up, install, run, logs, stop, down; --help)" ;;
esac

name="${TPU_NAME:-}"
zone="${TPU_ZONE:-}"
project="${TPU_PROJECT:-}"
accelerator="${TPU_TYPE:-v5p-32}"
version="${TPU_VERSION:-v2-alpha-tpuv5}"
spot=0
dry_run=0
log_worker=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name=*) name="${1#*=}" ;;
    --zone=*) zone="${1#*=}" ;;
    --project=*) project="${1#*=}" ;;
    --type=*) accelerator="${1#*=}" ;;
    --version=*) version="${1#*=}" ;;
    --worker=*) log_worker="${1#*=}" ;;
    --spot) spot=1 ;;
    --dry_run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (run.py flags go after --)" ;;
  esac
  shift
done
[[ -n "${name}" ]] || die "no TPU name: pass --name=NAME or set TPU_NAME"
[[ -n "${zone}" ]] || die "no zone: pass --zone=ZONE or set TPU_ZONE"
[[ -n "${project}" ]] || die "no GCP project: pass --project=PROJECT or set TPU_PROJECT"

remote_dir="coderl_jax"  # under each worker's home directory
log_dir="coderl_logs"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
where=(--zone="${zone}" --project="${project}")

gcloud_tpu() {
  if ((dry_run)); then
    printf '%q ' gcloud compute tpus tpu-vm "$@"
    echo
  else
    gcloud compute tpus tpu-vm "$@"
  fi
}

on_all_workers() {
  gcloud_tpu ssh "${name}" "${where[@]}" --worker=all --command="$1"
}

install() {
  local archive
  archive="$(mktemp -t coderl_jax.XXXXXX.tar.gz)"
  # Tracked and untracked-but-not-ignored files: the checkout as it is, without runs/.
  (cd "${repo}" && git ls-files -co --exclude-standard -z | tar czf "${archive}" --null -T -)
  gcloud_tpu scp "${archive}" "${name}:coderl_jax.tar.gz" "${where[@]}" --worker=all
  rm -f "${archive}"
  on_all_workers "set -e; rm -rf ${remote_dir}; mkdir -p ${remote_dir} ${log_dir}; \
tar xzf coderl_jax.tar.gz -C ${remote_dir}; \
python3 -m pip install --quiet -e '${remote_dir}[tpu,gcs]'"
}

case "${command}" in
  up)
    if ((dry_run)) || ! gcloud_tpu describe "${name}" "${where[@]}" >/dev/null 2>&1; then
      extra=()
      ((spot)) && extra=(--spot)
      gcloud_tpu create "${name}" "${where[@]}" --accelerator-type="${accelerator}" \
        --version="${version}" "${extra[@]}"
    else
      echo "reusing TPU VM ${name} in ${zone}"
    fi
    install
    ;;
  install)
    install
    ;;
  run)
    [[ $# -ge 1 ]] || die "run: give FLAGFILE [run.py flags...] after --"
    flagfile="$1"
    shift
    [[ -f "${repo}/${flagfile}" ]] || die "run: flagfile '${flagfile}' not found in ${repo}"
    args="$(printf ' %q' --distributed --flagfile="${flagfile}" "$@")"
    on_all_workers "cd ${remote_dir} && mkdir -p ~/${log_dir} && \
(nohup python3 experiments/run.py${args} > ~/${log_dir}/run.log 2>&1 < /dev/null & \
echo \$! > ~/${log_dir}/run.pid) && echo \"\$(hostname): started, pid \$(cat ~/${log_dir}/run.pid)\""
    gcloud_tpu ssh "${name}" "${where[@]}" --worker=0 --command="tail -n +1 -F ~/${log_dir}/run.log"
    ;;
  logs)
    gcloud_tpu ssh "${name}" "${where[@]}" --worker="${log_worker}" \
      --command="tail -n 200 -F ~/${log_dir}/run.log"
    ;;
  stop)
    on_all_workers "kill \$(cat ~/${log_dir}/run.pid) 2>/dev/null && echo \"\$(hostname): stopped\" \
|| echo \"\$(hostname): no run\""
    ;;
  down)
    gcloud_tpu delete "${name}" "${where[@]}" --quiet
    ;;
esac
