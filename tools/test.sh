#!/bin/bash
# Runs every test: unit (GTest) and integration (pytest, real mounts), in a
# -Dwerror=true build, then again under AddressSanitizer/UBSan, and the
# units under valgrind.  Installs and builds what is missing first.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

strict="-Dwerror=true -Dfuse3:werror=false"
SHMFS_MESON_ARGS="$strict" tools/setup.sh --no-mount --builddir build-test
SHMFS_MESON_ARGS="$strict -Db_sanitize=address,undefined -Db_lundef=false" \
  tools/setup.sh --no-mount --builddir build-asan

status=0
# Remote mounts need hiredis; without it the rest still builds, warning-free.
echo "==> build without remote mounts (-Dremote=disabled)"
if [ ! -f build-noremote/build.ninja ]; then
  meson setup build-noremote --wrap-mode=nodownload $strict -Dremote=disabled >/dev/null || status=1
fi
meson compile -C build-noremote > build-noremote/compile.log 2>&1 ||
  { tail -n 40 build-noremote/compile.log; status=1; }
echo "==> tests (werror build)"
meson test -C build-test --print-errorlogs --num-processes 2 || status=1
echo "==> units under valgrind"
meson test -C build-test --suite unit --print-errorlogs \
  --wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite' \
  --timeout-multiplier 4 || status=1
echo "==> tests under AddressSanitizer and UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-asan --suite unit --print-errorlogs || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-asan --suite integration --print-errorlogs --num-processes 2 \
  --timeout-multiplier 2 || status=1

if [ $status = 0 ]; then echo "==> all tests passed"; else echo "==> some tests failed"; fi
exit $status
