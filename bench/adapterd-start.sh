# Sourced by the bench scripts. adapterd_port LOG PID: waits (60 s at most) until the
# adapterd whose output goes to LOG logs its port, prints it; fails if it exits or never does.
adapterd_port() {
  local log=$1 pid=$2 port=""
  for _ in $(seq 1 600); do
    port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "adapterd did not start: $(cat "$log")" >&2
  return 1
}
