# shellcheck shell=bash
# e2e/cluster/procs.sh — the cluster's daemons as processes: each runs in its own session,
# logs to $LOGS/NAME.log, and is recorded as "PID STARTTIME" in $RUN/NAME, so that a PID
# reused by another process is never signalled. Sourced by e2e/cluster.sh.

# proc_starttime PID: its start time (field 22 of /proc/PID/stat, counting from the pid;
# read after the ')' that ends comm, which may contain spaces). Fails for a gone PID or a
# zombie (our daemons are reparented to PID 1, which may reap late).
proc_starttime() {
  local stat fields
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  read -r -a fields <<<"${stat##*) }"   # fields[0] is field 3 (state)
  [[ "${fields[0]}" != Z && "${fields[0]}" != X ]] || return 1
  echo "${fields[19]}"
}

# start_proc NAME CMD... : runs CMD in its own session, logs to LOGS/NAME.log,
# records "PID STARTTIME" in RUN/NAME.
start_proc() {
  local name=$1; shift
  local pidfile="$RUN/$name.pid.tmp"
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ are for the child shell to expand, not this one
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local i pid=""
  for ((i = 0; i < 200; i++)); do
    [[ -s "$pidfile" ]] && { pid=$(<"$pidfile"); break; }
    sleep 0.01
  done
  [[ -n "$pid" ]] || die "could not start $name"
  echo "$pid $(proc_starttime "$pid")" >"$RUN/$name"
  rm -f "$pidfile"
}

# proc_alive NAME: true if the recorded PID still runs with the recorded start time.
proc_alive() {
  local f="$RUN/$1" pid st cur
  [[ -f "$f" ]] || return 1
  read -r pid st <"$f" || return 1
  [[ -n "$pid" && -n "$st" ]] || return 1
  cur=$(proc_starttime "$pid") || return 1
  [[ "$cur" == "$st" ]]
}
proc_pid() { local pid _; read -r pid _ <"$RUN/$1"; echo "$pid"; }

# stop_proc NAME [TIMEOUT]: SIGTERM, then SIGKILL; only if PID and start time match.
stop_proc() {
  local name=$1 timeout=${2:-10} pid i t0
  [[ -f "$RUN/$name" ]] || return 0
  t0=$(now)
  if proc_alive "$name"; then
    pid=$(proc_pid "$name")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 20; i++)); do
      proc_alive "$name" || break
      sleep 0.05
    done
    if proc_alive "$name"; then
      log "$name ($pid) did not exit on SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do proc_alive "$name" || break; sleep 0.05; done
    fi
    log "stopped $name ($pid) in $(elapsed "$t0")s"
  fi
  rm -f "$RUN/$name"
}
