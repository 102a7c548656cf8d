#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for tests and for trying
# `sincere slurm --submit` without a cluster:
#
#   scripts/slurm-local.sh start     install slurm-wlm and munge when missing (Debian),
#                                    start munged, slurmctld and slurmd, wait until
#                                    they answer; print the line to export on stdout
#                                    (eval "$(scripts/slurm-local.sh start)")
#   scripts/slurm-local.sh status    say whether it runs; print its nodes and jobs
#   scripts/slurm-local.sh stop      cancel every job, stop the daemons, kill whatever
#                                    they left, remove the folder (idempotent)
#
# Everything lives in one folder, $SLURM_LOCAL_DIR (default
# ${TMPDIR:-/tmp}/sincere-slurm-<uid>): slurm.conf, its own munge key and
# socket, state, spool, pid files and logs. Nothing outside it is changed
# (no /etc/slurm, no system munged, no systemd), the ports are 16817/16818
# unless SLURM_LOCAL_PORT says otherwise, and the daemons run as the current
# user (Debian's Slurm 22.05 is tested as root). Clients find the cluster by
#   export SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf
# Every process the cluster starts (daemons, job steps, the jobs themselves)
# carries that SLURM_CONF in its environment; `stop` kills what is left of
# those that are Slurm's daemons or jobs (see ours), and nothing else.
set -Eeuo pipefail

me=slurm-local
# A command that fails under set -e ends the script: say which, never silently.
trap 'echo "$me: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
dir=${SLURM_LOCAL_DIR:-${TMPDIR:-/tmp}/sincere-slurm-$(id -u)}
port=${SLURM_LOCAL_PORT:-16817}
conf=$dir/slurm.conf
timeout=${SLURM_LOCAL_TIMEOUT:-60}
export SLURM_CONF=$conf

die() {
	echo "$me: $*" >&2
	exit 1
}

# logs prints the daemons' logs (on a failure to start).
logs() {
	for f in "$dir"/log/*.log; do
		[ -f "$f" ] || continue
		echo "----- $f (last 40 lines) -----" >&2
		tail -n 40 "$f" >&2
	done
}

install_missing() {
	local missing=()
	for c in slurmctld slurmd sbatch munged mungekey; do
		command -v "$c" >/dev/null || missing+=("$c")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "$me: installing slurm-wlm and munge (missing: ${missing[*]})" >&2
	. "$(dirname "$0")/apt.sh"
	apt_root "$me" "slurm-wlm munge"
	# Keep the packages from starting their system services: this cluster
	# runs its own daemons.
	local policy=/usr/sbin/policy-rc.d made_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		made_policy=1
	fi
	$sudo apt-get update -qq >&2
	$sudo apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2 || {
		[ -n "$made_policy" ] && $sudo rm -f "$policy"
		die "apt-get install slurm-wlm munge failed"
	}
	[ -n "$made_policy" ] && $sudo rm -f "$policy"
	for c in slurmctld slurmd sbatch munged mungekey; do
		command -v "$c" >/dev/null || die "$c is still missing after installing slurm-wlm and munge"
	done
}

# running reports whether slurmctld answers.
running() {
	[ -f "$conf" ] && timeout 5 sinfo -h >/dev/null 2>&1
}

# ours reports whether process $1 is this cluster's: it carries this
# cluster's SLURM_CONF, as everything the cluster starts does, and it is one
# of Slurm's or MUNGE's daemons or a job (Slurm gives jobs SLURM_JOB_ID). The
# variable alone is not enough: whatever a user starts from a shell that
# exported it carries it too (a test run, `watch squeue`), and a pid file
# left by a cluster that died may name a pid that now belongs to something
# else.
ours() {
	local env comm
	env=$({ tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null) || return 1
	grep -qxF "SLURM_CONF=$conf" <<<"$env" || return 1
	comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	case "$comm" in munged | slurmctld | slurmd | slurmstepd) return 0 ;; esac
	grep -q '^SLURM_JOB_ID=' <<<"$env"
}

# daemon_pid prints the pid a pid file names when that process runs and is
# this cluster's; pid_alive reports whether there is one, and signal_pid
# signals it (the daemons remove their pid files as they exit, so a file may
# vanish or go stale at any time). None of them fails the script: a stale
# pid file is the normal state after a crash.
daemon_pid() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ "$pid" -gt 1 ] 2>/dev/null && ours "$pid" && echo "$pid"
}

pid_alive() {
	daemon_pid "$1" >/dev/null
}

signal_pid() {
	local pid
	if pid=$(daemon_pid "$2"); then
		kill "-$1" "$pid" 2>/dev/null || true
	fi
}

# cluster_pids lists the processes whose environment holds this cluster's
# SLURM_CONF (daemons, job steps, jobs), except this script and what it runs.
cluster_pids() {
	local p q mine
	for e in /proc/[0-9]*/environ; do
		p=${e#/proc/}
		p=${p%/environ}
		ours "$p" || continue
		# Skip this script and its own children (they inherit SLURM_CONF).
		mine="" q=$p
		while [ -n "$q" ] && [ "$q" -gt 1 ]; do
			[ "$q" = $$ ] && mine=1 && break
			q=$(sed -e 's/.*) //' "/proc/$q/stat" 2>/dev/null | awk '{print $2}' || true)
		done
		[ -z "$mine" ] && echo "$p"
	done
	return 0
}

start() {
	install_missing
	if running; then
		echo "$me: already running ($dir)" >&2
		echo "export SLURM_CONF=$conf"
		return 0
	fi
	# A folder left by a cluster that died: clear it first.
	[ -d "$dir" ] && stop >&2
	mkdir -p "$dir"/{log,state,spool,munge}
	chmod 700 "$dir" "$dir/munge"
	local user host cpus mem
	user=$(id -un)
	host=$(hostname -s)
	cpus=$(nproc)
	mem=$(awk '/^MemTotal:/ {m = int($2 / 1024) - 1024; if (m < 512) m = 512; print m}' /proc/meminfo)

	mungekey -c -k "$dir/munge/munge.key" >/dev/null 2>&1 || die "mungekey -c failed"
	chmod 600 "$dir/munge/munge.key"
	munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
		--pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
		--seed-file="$dir/munge/munged.seed" || {
		logs
		die "munged did not start"
	}

	cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster on localhost.
ClusterName=sincere-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmdDebug=info
SlurmctldDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((mem / cpus))
SchedulerType=sched/backfill
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
MinJobAge=3600
KillWait=10
NodeName=localhost NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
	slurmctld -f "$conf" || {
		logs
		die "slurmctld did not start"
	}
	slurmd -f "$conf" -N localhost || {
		logs
		die "slurmd did not start"
	}
	local waited=0 state=""
	while :; do
		state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
		case "$state" in idle | mixed | allocated) break ;; esac
		if [ "$waited" -ge "$timeout" ]; then
			logs
			echo "$me: the node is '${state:-not answering}' after ${timeout}s; stopping" >&2
			stop >/dev/null 2>&1 || true
			exit 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
	echo "$me: one node ($cpus CPUs, $mem MB) on localhost is $state after ${waited}s; logs in $dir/log" >&2
	echo "export SLURM_CONF=$conf"
}

stop() {
	if [ ! -d "$dir" ]; then
		echo "$me: not running"
		return 0
	fi
	# Cancel every job and give it a moment to end through Slurm.
	if running; then
		scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
		for _ in $(seq 20); do
			[ -z "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
			sleep 0.5
		done
	fi
	# Stop the daemons by their pid files, then whatever carries this
	# cluster's SLURM_CONF (job steps, jobs).
	for f in slurmd.pid slurmctld.pid munge/munged.pid; do
		signal_pid TERM "$dir/$f"
	done
	for _ in $(seq 40); do
		local left=0
		for f in slurmd.pid slurmctld.pid munge/munged.pid; do
			pid_alive "$dir/$f" && left=1
		done
		[ "$left" = 0 ] && break
		sleep 0.25
	done
	local pids
	pids=$(cluster_pids)
	if [ -n "$pids" ]; then
		kill -TERM $pids 2>/dev/null || true
		sleep 1
		pids=$(cluster_pids)
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
	fi
	for f in slurmd.pid slurmctld.pid munge/munged.pid; do
		signal_pid KILL "$dir/$f"
	done
	sleep 0.2
	if [ -n "$(cluster_pids)" ]; then
		die "processes of the cluster are still running: $(cluster_pids | tr '\n' ' ')"
	fi
	rm -rf "$dir"
	echo "$me: stopped"
}

status() {
	if running; then
		echo "$me: running ($dir)"
		echo "export SLURM_CONF=$conf"
		sinfo
		squeue
	else
		echo "$me: not running"
		return 1
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
logs) logs 2>&1 ;;
*)
	echo "usage: $0 start|stop|status|logs" >&2
	exit 2
	;;
esac
