#!/usr/bin/env bash
# Start (or stop) a one-node SLURM cluster on this machine for integration tests:
# munged + slurmctld + slurmd, partitions `cpu` (default) and `gpu` (same node, no GPUs), no
# accounting database (use --slurm-status-command squeue). Needs root and Debian packages.
#   tools/slurm_local.sh start | stop | status
# `stop` ends only the daemons this script's `start` launched, by the PIDs it recorded.
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

# PIDs of the daemons this script started, one "name pid" a line: `stop` ends those and only
# those (a daemon that was already running, or one of another user, is never touched).
STARTED=${STATE}/started.pids
MUNGE_PIDFILE=/run/munge/munged.pid

# alive PIDFILE NAME: the PID in PIDFILE is a running process named NAME
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -r "/proc/${pid}/comm" ] && [ "$(cat "/proc/${pid}/comm")" = "$2" ]
}

# running PID: the process exists and has not exited (a zombie has)
running() {
  [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}

# launch NAME PIDFILE COMMAND...: start a daemon unless its pid file names a live one; record it
launch() {
  local name=$1 pidfile=$2
  shift 2
  if alive "$pidfile" "$name"; then
    echo "$name already running (pid $(cat "$pidfile")): left alone, and not stopped by stop"
    return 0
  fi
  "$@"
  for _ in $(seq 1 50); do
    if alive "$pidfile" "$name"; then
      echo "$name $(cat "$pidfile")" >>"$STARTED"
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not write its pid file $pidfile" >&2
  return 1
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
  launch munged "$MUNGE_PIDFILE" sh -c \
    'su -s /bin/sh munge -c /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force'
  launch slurmctld "${STATE}/slurmctld.pid" slurmctld
  launch slurmd "${STATE}/slurmd.pid" slurmd
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

# Ends the daemons `start` recorded, by PID (checking the PID still names that daemon), slurmd
# first; never by process name, which on a shared or cluster node would hit daemons it never
# started.
stop() {
  local name pid
  [ -s "$STARTED" ] || { echo "no daemon started by $0 is recorded in $STARTED"; return 0; }
  tac "$STARTED" | while read -r name pid; do
    if [ -r "/proc/${pid}/comm" ] && [ "$(cat "/proc/${pid}/comm")" = "$name" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        running "$pid" || break
        sleep 0.1
      done
      if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
      echo "stopped $name (pid $pid)"
    else
      echo "$name (pid $pid) is no longer running"
    fi
  done
  rm -f "$STARTED"
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
