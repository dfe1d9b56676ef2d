#!/usr/bin/env bash
# closetap's one entry point for a new machine (Debian 12):
#   ./run.sh demo    install what is missing, build, replay the bundled capture, show the summary
#   ./run.sh test    install what is missing, build, run every test (plain and under ASan/UBSan)
#   ./run.sh build   install what is missing and build
# Options for test: --quick (skip the sanitizer build and the fuzz build).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential meson ninja-build pkg-config python3 libdpdk-dev prometheus-cpp-dev
          nlohmann-json3-dev libcli11-dev libfmt-dev libpcap-dev libgtest-dev libgmock-dev
          libhyperscan-dev libyaml-cpp-dev libbenchmark-dev)
# What the end-to-end tests drive: network namespaces, captures, a real Prometheus server;
# clang and its runtimes for the libFuzzer targets (libclang_rt.fuzzer is in libclang-rt-14-dev);
# matplotlib for the capacity test's plot.
TEST_PACKAGES=(iproute2 tcpdump ethtool prometheus tshark clang libclang-rt-14-dev
               python3-matplotlib)

install_deps() {
    local missing=()
    for p in "${PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "run.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_dir() {  # build_dir DIR [meson options...]
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    fi
    meson compile -C "$dir" >/dev/null || meson compile -C "$dir"
}

# meson's summary per build directory, as "passed failed skipped"
counts() {
    python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1] + "/meson-logs/testlog.json"):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
}

cmd=${1:-}
case "$cmd" in
build)
    install_deps
    build_dir build
    ;;
demo)
    install_deps
    build_dir build
    mkdir -p build/demo
    echo "run.sh: replaying tests/captures/scenarios.pcap (real kernel TCP closes, tools/scenarios/)"
    build/closetap --pcap tests/captures/scenarios.pcap \
        --conn-log build/demo/conns.jsonl --metrics-file build/demo/final.prom
    echo "run.sh: records in build/demo/conns.jsonl, metrics in build/demo/final.prom"
    ;;
test)
    install_deps "${TEST_PACKAGES[@]}"
    quick=0
    [ "${2:-}" = "--quick" ] && quick=1
    passed=0 failed=0 skipped=0
    dirs=(build)
    build_dir build
    if [ $quick -eq 0 ]; then
        build_dir build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
        dirs+=(build-asan)
        # libFuzzer targets (clang), tests/fuzz/: only they are built there, not closetap; each
        # runs ~45 s as the `fuzz` suite (docs/fuzzing.md).
        if [ ! -f build-fuzz/build.ninja ]; then
            CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dtests=false >/dev/null
        fi
        fuzz_targets=(fuzz_seeds fuzz_parse fuzz_close_machine fuzz_pcap fuzz_config)
        meson compile -C build-fuzz "${fuzz_targets[@]}" >/dev/null ||
            meson compile -C build-fuzz "${fuzz_targets[@]}"
        dirs+=(build-fuzz)
    fi
    for d in "${dirs[@]}"; do
        echo "run.sh: tests in $d"
        norebuild=()
        [ "$d" = build-fuzz ] && norebuild=(--no-rebuild)  # only the fuzz targets are built
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            meson test -C "$d" "${norebuild[@]}" --print-errorlogs --num-processes 2 || true
        read -r p f s < <(counts "$d")
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    done
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    ;;
*)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
