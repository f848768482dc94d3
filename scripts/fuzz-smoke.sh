#!/bin/sh
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for a bounded
# time from its seed corpus. A crash, leak or trap fails the run. Longer runs:
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$TOP/build-fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-15}
if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" "$TOP" --buildtype=debugoptimized -Dfuzz=true -Dwerror=true \
        -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$BUILD" >"$BUILD.log" 2>&1 || { grep -E "error|FAILED" "$BUILD.log" | head -20; exit 1; }
for dir in "$TOP"/tests/fuzz/corpus/*/; do
    t=$(basename "$dir")
    work=$(mktemp -d)
    cp "$TOP/tests/fuzz/corpus/$t/"* "$work/"
    echo "fuzz: $t for ${SECONDS_EACH}s"
    UBSAN_OPTIONS=halt_on_error=1 "$BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_EACH" \
        -max_len=2048 -print_final_stats=0 -artifact_prefix="$TOP/build-fuzz/" "$work" 2>"$work.log" || { tail -40 "$work.log"; exit 1; }
    grep -E "^Done|#[0-9]+.*DONE" "$work.log" | tail -1
    rm -rf "$work" "$work.log"
done
