#!/bin/bash
# pose.sh — a record shared from the shell: a robot's pose with its
# timestamp, the same record examples/c/pose.c maps as a C struct.
#
#   `shmfs new` creates it with its record type and a JSON initial value; a
#   writer in the background publishes poses, each one text write of a JSON
#   object that names the fields it changes (the others keep their values);
#   the reader takes each pose from one read of the text view (a consistent
#   snapshot: never half of a write) and picks the fields out with jq, or
#   with sed where jq is absent.  Then `shmfs get/set --field` read and set
#   one field, `shmfs add --field` adds to one atomically, and `shmfs info`
#   lists the fields with their offsets, for a C struct or ctypes class.
#
# Usage: pose.sh [MNT] [N]     MNT: argument, else $SHMFS_MNT, else /tmp/shm
#                              N: poses (default 5); JQ=none: do without jq
#
#   $ examples/shell/pose.sh /tmp/exmnt 3
#   $ shmfs new /tmp/exmnt/pose '{seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]}' '{"pos": {"z": 0.5}, "frame": "map"}'
#   $ writer &     (each pose: echo '{"seq": 2k, "t": NOW, "pos": {"x": k, "y": 2k}, "yaw": k/4}' > /tmp/exmnt/pose)
#   reader (jq): pose 1 at t=1754311200.0184996 pos=(1, 2, 0.5) yaw=0.25 frame=map
#   reader (jq): pose 2 at t=1754311200.2784696 pos=(2, 4, 0.5) yaw=0.5 frame=map
#   reader (jq): pose 3 at t=1754311200.542988 pos=(3, 6, 0.5) yaw=0.75 frame=map
#   $ shmfs get /tmp/exmnt/pose --field pos
#   {"x": 3, "y": 6, "z": 0.5}
#   $ shmfs set /tmp/exmnt/pose --field frame '"odom"'
#   $ shmfs add /tmp/exmnt/pose --field yaw 0.5
#   1.25
#   $ shmfs get /tmp/exmnt/pose --field frame
#   "odom"
#   $ shmfs info /tmp/exmnt/pose | grep ^field
#   field     seq    u64      offset 0
#   field     t      f64      offset 8
#   field     pos.x  f64      offset 16
#   field     pos.y  f64      offset 24
#   field     pos.z  f64      offset 32
#   field     yaw    f64      offset 40
#   field     frame  char[8]  offset 48
#   $ cat /tmp/exmnt/pose
#   {"seq": 6, "t": 1754311200.542988, "pos": {"x": 3, "y": 6, "z": 0.5}, "yaw": 1.25, "frame": "odom"}
#
# (A slow reader may skip a pose.  With JQ=none the reader says "sed".)
set -euo pipefail

mnt=${1:-${SHMFS_MNT:-/tmp/shm}}
n=${2:-5}
shmfs=${SHMFS:-shmfs}
jq=${JQ:-jq}
pose=$mnt/pose
spec='{seq:u64, t:f64, pos:{x:f64, y:f64, z:f64}, yaw:f64, frame:char[8]}'

if ! getfattr -n user.shmfs.mode "$mnt" >/dev/null 2>&1; then
  echo "pose.sh: $mnt is not a shmfs mount" >&2
  exit 1
fi
command -v "$jq" >/dev/null 2>&1 || jq=

# Shows a command as typed at a prompt (quoting what needs it), then runs it.
show() {
  local shown=() arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./=-]+$ ]]; then shown+=("$arg"); else shown+=("'$arg'"); fi
  done
  shown[0]=${shown[0]/#"$shmfs"/shmfs}
  echo "\$ ${shown[*]}"
  "$@"
}

rm -f "$pose"
show "$shmfs" new "$pose" "$spec" '{"pos": {"z": 0.5}, "frame": "map"}'

writer() {
  for k in $(seq "$n"); do
    printf '{"seq": %d, "t": %s, "pos": {"x": %d, "y": %d}, "yaw": %s}\n' \
      $((2 * k)) "$(date +%s.%N)" "$k" $((2 * k)) "$(awk "BEGIN { print $k / 4 }")" > "$pose"
    sleep 0.25
  done
}
echo "\$ writer &     (each pose: echo '{\"seq\": 2k, \"t\": NOW, \"pos\": {\"x\": k, \"y\": 2k}, \"yaw\": k/4}' > $pose)"
writer &
writer_pid=$!
trap 'kill $writer_pid 2>/dev/null || true' EXIT

# One line of JSON, the fields picked out.
describe() {
  if [ -n "$jq" ]; then
    "$jq" -r '"(jq): pose \(.seq / 2) at t=\(.t) pos=(\(.pos.x), \(.pos.y), \(.pos.z)) yaw=\(.yaw) frame=\(.frame)"' <<<"$1"
  else
    # Each field name is unique in this record, nested ones included.
    field() { sed -E "s/.*\"$1\": (\"([^\"]*)\"|([^,}]*)).*/\2\3/" <<<"$2"; }
    echo "(sed): pose $(( $(field seq "$1") / 2 )) at t=$(field t "$1") pos=($(field x "$1"), $(field y "$1"), $(field z "$1")) yaw=$(field yaw "$1") frame=$(field frame "$1")"
  fi
}

seen=0
while [ "$seen" -lt $((2 * n)) ]; do
  line=$(cat "$pose")                         # one read: one consistent snapshot
  [[ $line =~ \"seq\":\ ([0-9]+) ]] && seq=${BASH_REMATCH[1]}
  if [ "$seq" -ne "$seen" ]; then
    echo "reader $(describe "$line")"
    seen=$seq
  fi
  sleep 0.01
done
wait "$writer_pid"

show "$shmfs" get "$pose" --field pos
show "$shmfs" set "$pose" --field frame '"odom"'
show "$shmfs" add "$pose" --field yaw 0.5
show "$shmfs" get "$pose" --field frame
echo "\$ shmfs info $pose | grep ^field"
"$shmfs" info "$pose" | grep ^field
show cat "$pose"
rm -f "$pose"
