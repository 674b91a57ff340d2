#!/usr/bin/env bash
# The packages as a user meets them (`make test-package`, after `make wheel`):
#   1. dist/ contents: the wheel (tag, files, bundled libraries, metadata), the sdist, and
#      the sdist building the same wheel as the working tree (pkg/tests/test_dist.py);
#   2. the wheel in a fresh venv outside the repository, run with the system OpenBLAS,
#      LAPACKE, their runtime libraries and Swift hidden in a private mount namespace
#      (bind mounts over the files): first proof that they are hidden (the library as
#      built no longer loads, and `import relusv` says why in one message), then
#      pkg/smoke.py (gmw, relu_singular_values, `relusv report --quick`);
#   3. the C library: `make install PREFIX=tmp`, both C examples built through
#      pkg-config against it and run.
# Needs root (mount namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV_PY=$ROOT/.venv/bin/python
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/relusv-package.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
step() { echo "== [$SECONDS s] $*"; }

VERSION=$($PYTHON pkg/native.py version)
WHEEL=$(echo "$ROOT"/dist/relusv-"$VERSION"-py3-none-manylinux*.whl)
RAW_WHEEL=$(echo "$ROOT"/dist/unrepaired/relusv-"$VERSION"-py3-none-linux_x86_64.whl)
SDIST=$ROOT/dist/relusv-$VERSION.tar.gz
for f in "$WHEEL" "$RAW_WHEEL" "$SDIST"; do
    [ -f "$f" ] || { echo "missing $f: run make wheel" >&2; exit 1; }
done

step "wheel from the working tree (reuses the Swift build of make install)"
"$VENV_PY" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$WORK/tree" .
rm -rf build

step "contents of dist/"
RELUSV_WHEEL=$WHEEL RELUSV_RAW_WHEEL=$RAW_WHEEL RELUSV_SDIST=$SDIST RELUSV_TREE_WHEEL=$(echo "$WORK"/tree/*.whl) \
    "$VENV_PY" -m pytest -q -p no:cacheprovider pkg/tests

step "fresh venv outside the repository: pip install $(basename "$WHEEL")[report]"
$PYTHON -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q "$WHEEL[report]"
INSTALLED=$("$WORK/venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("relusv").submodule_search_locations[0])')
case "$INSTALLED" in "$ROOT"*) echo "relusv resolves into the repository: $INSTALLED" >&2; exit 1;; esac

step "system OpenBLAS/LAPACKE and Swift hidden: the smoke test"
unshare --mount --propagation private env WORK="$WORK" ROOT="$ROOT" INSTALLED="$INSTALLED" bash -euo pipefail -c '
    hidden=0
    for lib in $(ldconfig -p | awk "/lib(openblas|blas|cblas|lapack|lapacke|gfortran|quadmath)[^ ]*\.so/ {print \$NF}"); do
        real=$(readlink -f "$lib")
        if [ -f "$real" ] && ! mountpoint -q "$real"; then mount --bind /dev/null "$real"; hidden=$((hidden + 1)); fi
    done
    echo "hidden: $hidden system library files"
    [ "$hidden" -gt 0 ]
    if [ -d /opt/swift ]; then mount -t tmpfs none /opt/swift; fi
    ! command -v swift >/dev/null || { echo "swift is still on PATH" >&2; exit 1; }
    echo "-- ldd of the library as built (system libraries expected, now hidden):"
    if ldd "$ROOT/python/relusv/libReluSVKit.so" > "$WORK/ldd-built" 2>&1 && ! grep -q "not found" "$WORK/ldd-built"; then
        cat "$WORK/ldd-built"; echo "the built library still loads: nothing hidden" >&2; exit 1
    fi
    grep -E "openblas|lapack|error" "$WORK/ldd-built" | head -n 3 || true
    echo "-- import relusv with that library:"
    if RELUSV_LIBRARY="$ROOT/python/relusv/libReluSVKit.so" "$WORK/venv/bin/python" -c "import relusv" 2> "$WORK/import-err"; then
        echo "import succeeded without OpenBLAS" >&2; exit 1
    fi
    tail -n 1 "$WORK/import-err"
    tail -n 1 "$WORK/import-err" | grep -q "^ImportError: relusv: cannot load the native library .* It needs OpenBLAS and LAPACKE"
    echo "-- ldd of the wheel'"'"'s library:"
    ldd "$INSTALLED/libReluSVKit.so" | tee "$WORK/ldd-wheel"
    ! grep -q "not found" "$WORK/ldd-wheel"
    grep -q "relusv.libs/libopenblas" "$WORK/ldd-wheel"
    cd "$WORK"
    "$WORK/venv/bin/python" "$ROOT/pkg/smoke.py"
'

step "C library: make install PREFIX=$WORK/prefix, examples through pkg-config"
make -s install PREFIX="$WORK/prefix"
export PKG_CONFIG_PATH=$WORK/prefix/lib/pkgconfig
[ "$(pkg-config --modversion relusv)" = "$VERSION" ]
libdir=$(pkg-config --variable=libdir relusv)
readelf -d "$libdir/libReluSVKit.so.$VERSION" | grep -q "Library soname: \[libReluSVKit.so.${VERSION%%.*}\]"
for example in gmw_example relu_spectrum_example; do
    # shellcheck disable=SC2046  # pkg-config prints several flags
    cc -std=c11 -Wall -Wextra -Werror -o "$WORK/$example" "examples/c/$example.c" \
        $(pkg-config --cflags --libs relusv) -lm -Wl,-rpath,"$libdir"
    readelf -d "$WORK/$example" | grep -q "Shared library: \[libReluSVKit.so.${VERSION%%.*}\]"
    "$WORK/$example" > "$WORK/$example.out"
    tail -n 1 "$WORK/$example.out"
done
step "packages: all checks passed"
