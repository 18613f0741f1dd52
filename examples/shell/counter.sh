#!/bin/bash
# counter.sh — a shared counter from the shell: `shmfs new` creates it
# atomically, `shmfs watch` prints each new value as it changes, and four
# workers add to it at once, two with `shmfs add` (an atomic operation of
# the daemon) and two with a read-modify-write of the text view under
# `flock` (the object's one lock, which the atomic operation also takes).
# The total comes out exact.
#
# Usage: counter.sh [MNT] [N]     MNT: argument, else $SHMFS_MNT, else /tmp/shm
#                                 N: increments per worker (default 25)
#
#   $ examples/shell/counter.sh /tmp/shm 3
#   $ shmfs new /tmp/shm/counter i64 0
#   $ shmfs watch /tmp/shm/counter &     (prints each value it sees)
#   3
#   ...
#   12
#   4 workers x 3 increments: counter = 12
#
# (The first value the watcher prints depends on how soon it starts.)
set -euo pipefail

mnt=${1:-${SHMFS_MNT:-/tmp/shm}}
n=${2:-25}
shmfs=${SHMFS:-shmfs}
counter=$mnt/counter

if ! getfattr -n user.shmfs.mode "$mnt" >/dev/null 2>&1; then
  echo "counter.sh: $mnt is not a shmfs mount" >&2
  exit 1
fi

echo "\$ shmfs new $counter i64 0"
"$shmfs" new "$counter" i64 0
watched=$(mktemp)
trap 'kill $watcher 2>/dev/null || true; rm -f "$counter" "$watched"' EXIT

echo "\$ shmfs watch $counter &     (prints each value it sees)"
"$shmfs" watch "$counter" > "$watched" &
watcher=$!

atomic_worker() {
  for _ in $(seq "$n"); do "$shmfs" add "$counter" 1 > /dev/null; done
}
locked_worker() {
  for _ in $(seq "$n"); do
    flock "$counter" sh -c 'v=$(cat "$1"); echo $((v + 1)) > "$1"' sh "$counter"
  done
}
workers=()
for w in atomic_worker atomic_worker locked_worker locked_worker; do
  $w & workers+=($!)
done
wait "${workers[@]}"

total=$("$shmfs" get "$counter")
sleep 0.2
kill "$watcher"; wait "$watcher" 2>/dev/null || true
# The watcher saw the first and the last value (and many in between).
head -n 1 "$watched"
echo ...
tail -n 1 "$watched"
echo "4 workers x $n increments: counter = $total"
[ "$total" -eq $((4 * n)) ]
