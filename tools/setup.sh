#!/bin/bash
# Sets up, builds and mounts shmfs:  tools/setup.sh [MOUNTPOINT]   (default /tmp/shm)
#   --no-mount       install and build only
#   --builddir DIR   build in DIR (default build)
#   -DOPTION=VALUE   a meson option (also from $SHMFS_MESON_ARGS), applied to
#                    an existing build directory too
# Installs what is missing with apt (as root), seeds meson's package cache
# with libfuse 3.17.2 from Debian's fuse3 source package when the system's
# libfuse is older than 3.17.1, builds with meson, and mounts in the background.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
mnt=/tmp/shm
builddir=build
mount=1
meson_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-mount) mount=0 ;;
    --builddir) builddir=$2; shift ;;
    -D*) meson_args+=("$1") ;;
    -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
    *) mnt=$1 ;;
  esac
  shift
done
cd "$top"

say() { printf '==> %s\n' "$*"; }

packages=(meson ninja-build pkg-config gcc libglib2.0-dev fuse3 attr
          python3 python3-pytest python3-numpy python3-pip python3-setuptools valgrind
          jq    # the shell pose example reads records with jq (it falls back to sed)
          redis-server libhiredis-dev)   # remote mounts (docs/design/remote.md)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Tests start redis-servers of their own: the system's service stays off.
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
  { systemctl disable redis-server 2>/dev/null; service redis-server stop 2>/dev/null; } || true
fi

# libfuse >= 3.17.1 (passthrough); Debian 12 has 3.14.  meson's wrap falls
# back to the upstream tarball, which Debian's fuse3 3.17.2 source package
# carries byte for byte as its .orig.tar.gz.
tarball=subprojects/packagecache/fuse-3.17.2.tar.gz
sha=3d932431ad94e86179e5265cddde1d67aa3bb2fb09a5bd35c641f86f2b5ed06f
if ! pkg-config --atleast-version=3.17.1 fuse3 2>/dev/null &&
   ! echo "$sha  $tarball" | sha256sum -c --status 2>/dev/null; then
  say "fetching libfuse 3.17.2 from Debian's fuse3 source package"
  src=/etc/apt/sources.list.d/shmfs-fuse3-src.sources
  if ! apt-cache showsrc fuse3 2>/dev/null | grep -q "^Version: 3\.17\.2"; then
    cat > "$src" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
  fi
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  version=$(apt-cache showsrc fuse3 | sed -n 's/^Version: \(3\.17\.2-.*\)/\1/p' | head -n1)
  (cd "$tmp" && apt-get source -qq --download-only "fuse3=$version" >/dev/null 2>&1)
  mkdir -p subprojects/packagecache
  cp "$tmp/fuse3_3.17.2.orig.tar.gz" "$tarball"
  rm -rf "$tmp"
  echo "$sha  $tarball" | sha256sum -c --status ||
    { echo "setup.sh: $tarball has the wrong checksum" >&2; exit 1; }
fi

if [ ! -f "$builddir/build.ninja" ]; then
  say "configuring $builddir"
  meson setup "$builddir" --wrap-mode=nodownload ${SHMFS_MESON_ARGS:-} "${meson_args[@]}" >/dev/null
elif [ -n "${SHMFS_MESON_ARGS:-}" ] || [ ${#meson_args[@]} -gt 0 ]; then
  # An existing build directory takes the options given now too.
  say "configuring $builddir with ${SHMFS_MESON_ARGS:-} ${meson_args[*]}"
  meson configure "$builddir" ${SHMFS_MESON_ARGS:-} "${meson_args[@]}" >/dev/null
fi
say "building"
ninja -C "$builddir" >/dev/null

[ "$mount" = 1 ] || exit 0

mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
  echo "setup.sh: $mnt is mounted already; unmount it with: fusermount3 -u $mnt" >&2
  exit 1
fi
"$builddir/fs/shmfs" "$mnt"
cat <<TXT
==> shmfs is mounted on $mnt

  echo 3.1415926 > $mnt/pi && cat $mnt/pi          # a Value, typed f64 by its first write
  touch $mnt/a && setfattr -n user.shmfs.type -v 'i32[5]' $mnt/a
  echo 0 1 2 3 4 > $mnt/a && od -A d -t d4 $mnt/.raw/a   # the bytes; mmap them
  getfattr -d -m - $mnt/a                           # type, dtype, shape, ...

Unmount with:  fusermount3 -u $mnt
TXT
