#!/bin/bash
# session.sh — shmfs from the shell, with no program of ours: only the
# coreutils, bash's echo and attr's setfattr/getfattr.  It shows each command
# as if typed at a prompt, then runs it, so its output reads as a session.
#
#   Values and their types (inferred by the first text write, or set once
#   with setfattr); arrays, whose text round-trips Python's print(list);
#   the binary view .raw/NAME read with od and written with dd; mv and rm;
#   and errors, which the write itself reports (echo says "Invalid argument")
#   and which leave the value untouched.
#
# Usage: session.sh [MNT]     MNT: argument, else $SHMFS_MNT, else /tmp/shm
#
# Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt),
# it prints, in part:
#
#   $ examples/shell/session.sh /tmp/exmnt
#   $ cd /tmp/exmnt
#   $ echo 3.1415926 > pi
#   $ cat pi
#   3.1415926
#   ...
#   $ touch grid && setfattr -n user.shmfs.type -v 'i32[2][3]' grid
#   $ echo 1 2 3 4 5 6 > grid
#   $ cat grid
#   1 2 3
#   4 5 6
#   $ ls -aC
#   .  ..  arr  count  grid  pi  v
#   $ od -An -td4 .raw/grid
#              1           2           3           4
#              5           6
#   ...
#   $ echo abc > count
#   bash: line 1: echo: write error: Invalid argument
#   $ cat count v
#   42
#   1.5 2 3
#   ...
set -euo pipefail

MNT=${1:-${SHMFS_MNT:-/tmp/shm}}
NAMES=(pi count v grid arr dir)

if [[ ! -d $MNT/.raw ]]; then
  echo "session.sh: $MNT is not a shmfs mount (no $MNT/.raw)" >&2
  exit 1
fi
for name in "${NAMES[@]}"; do
  if [[ -e $MNT/$name ]]; then
    echo "session.sh: $MNT/$name exists already; run on a fresh mount" >&2
    exit 1
  fi
done
cd "$MNT"
trap 'cd / && rm -rf "${NAMES[@]/#/$MNT/}"' EXIT

# Shows $1 at a prompt and runs it in a fresh shell; stops the session if it fails.
run() {
  printf '$ %s\n' "$1"
  bash -c "$1" || { echo "session.sh: failed: $1" >&2; exit 1; }
}

# Same, for a command that is shown failing on purpose.
fails() {
  printf '$ %s\n' "$1"
  if bash -c "$1"; then
    echo "session.sh: should have failed: $1" >&2
    exit 1
  fi
}

echo "\$ cd $MNT"
# A Value: the first text write makes it an f64, and cat prints the shortest
# text that reads back as the same double.
run 'echo 3.1415926 > pi'
run 'cat pi'
run 'getfattr -n user.shmfs.type pi'
run 'echo 42 > count'
run 'cat count'
# Typed explicitly, once: zero-filled.  Python's list syntax is accepted.
run 'touch v'
run "setfattr -n user.shmfs.type -v 'f64[3]' v"
run 'cat v'
run "echo '[1.5, 2, 3]' > v"
run 'cat v'
# Arrays: a list infers i64[N]; ranks above 1 print one line per row.
run 'echo 0 1 2 3 4 > arr'
run 'getfattr -n user.shmfs.type arr'
run "touch grid && setfattr -n user.shmfs.type -v 'i32[2][3]' grid"
run 'echo 1 2 3 4 5 6 > grid'
run 'cat grid'
# The binary view: hidden from ls, exactly nbytes long, native byte order.
run 'ls -aC'
run 'stat -c "%s %n" .raw/pi .raw/grid'
run 'od -An -tf8 .raw/pi'
run 'od -An -td4 .raw/grid'
run 'printf "\xff\xff\xff\xff" | dd of=.raw/grid bs=4 seek=5 conv=notrunc status=none'
run 'cat grid'
# Errors come from the write itself and change nothing.
fails 'echo abc > count'
fails 'echo 99999999999999999999 > count'
fails 'echo 1 2 3 4 > v'
fails 'echo 1 2 > v'
run 'cat count v'
fails 'setfattr -n user.shmfs.type -v i32 count'
fails 'touch .raw/new'
# Directories, mv and rm, mirrored under .raw.
run 'mkdir dir && mv pi dir/pi'
run 'ls -C dir .raw/dir'
run 'cat dir/pi'
run 'rm -r dir count'
run 'ls -C'
