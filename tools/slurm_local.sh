#!/usr/bin/env bash
# Start (or stop) a one-node SLURM cluster on this machine for integration tests:
# munged + slurmctld + slurmd, partitions `cpu` (default) and `gpu` (same node, no GPUs), no
# accounting database (use --slurm-status-command squeue). Needs root and Debian packages.
#   tools/slurm_local.sh start | stop | status
set -euo pipefail
ACTION=${1:-start}
STATE=${SLURM_LOCAL_STATE:-/var/lib/medinjection-slurm}
CONF=/etc/slurm/slurm.conf

install_packages() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
}

write_config() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" /var/log/slurm
  cat >"$CONF" <<CONF
ClusterName=medinjection-local
SlurmctldHost=${host}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/d
SlurmctldPidFile=${STATE}/slurmctld.pid
SlurmdPidFile=${STATE}/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=${host} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=cpu Nodes=${host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${host} Default=NO MaxTime=INFINITE State=UP
CONF
}

start() {
  install_packages
  write_config
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 1 30); do
    if sinfo -h -o "%t" 2>/dev/null | grep -qE "idle|mix|alloc"; then
      sinfo
      return 0
    fi
    sleep 1
  done
  echo "SLURM did not come up; see /var/log/slurm/*.log" >&2
  tail -n 20 /var/log/slurm/*.log >&2 || true
  return 1
}

stop() {
  pkill -x slurmd || true
  pkill -x slurmctld || true
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
