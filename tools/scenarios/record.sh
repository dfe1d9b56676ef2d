#!/usr/bin/env bash
# Record real Linux kernel TCP traffic for every close pattern closetap
# classifies, plus an expected-truth manifest.
#
#   tools/scenarios/record.sh OUTDIR      (as root)
#
# Writes OUTDIR/scenarios.pcap and OUTDIR/scenarios.tsv.  See README.md.
# CTSCEN_KEEP_WORK=1 keeps the per-attempt captures and logs for debugging.
#
# Live observation (tests/e2e/): CTSCEN_OBSERVE="command" runs that command inside the server
# namespace for the whole run (DEV names the interface, CTSCEN_READY a file it must create once
# it is ready) and stops it with SIGTERM after the last scenario; its exit status fails the run.
# An observer sees every attempt, so with one there are no retries: a scenario whose pattern did
# not come out fails the run (exit 3) instead.
#
# Two throw-away network namespaces (client 10.77.0.1 / fd77::1, server
# 10.77.0.2 / fd77::2) are joined by a veth pair; nothing is sent anywhere
# else.  Each scenario attempt gets its own capture; the attempt is checked
# against its intended pattern and retried if the kernel's timing did not
# produce it, so the final capture only holds connections that really show
# what their TSV row says.  Accepted captures are then concatenated.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCEN="$HERE/scenario.py"
PY=${PYTHON:-/usr/bin/python3}
MAX_ATTEMPTS=5
[[ -n ${CTSCEN_OBSERVE:-} ]] && MAX_ATTEMPTS=1

# PID in the names so parallel runs do not clash.  The veth ends are created
# directly inside the namespaces, so their names never meet in the root one.
NS_C="ctscen-$$-cli"
NS_S="ctscen-$$-srv"
DEV=veth0
CLI4=10.77.0.1 SRV4=10.77.0.2
CLI6=fd77::1 SRV6=fd77::2
MAC_C=02:77:00:00:00:01 MAC_S=02:77:00:00:00:02
# An address nobody owns; a static neighbour entry makes the client emit its
# SYNs onto the veth, where the peer drops them (wrong destination MAC).
GHOST4=10.77.0.99 GHOST_MAC=02:00:00:00:00:99

# The truth table: what each scenario does by construction.
#   target: v4 / v6 = server listening on SRV4 / SRV6,
#           v4-closed = nothing listens on SRV4:port, ghost = GHOST4.
# name                port close            initiator half  conn_state target
SCENARIOS="
client_close_4way     9001 fin_4way         orig      false SF         v4
client_close_3way     9002 fin_3way         orig      false SF         v4
server_close_4way     9003 fin_4way         resp      false SF         v4
server_close_3way     9004 fin_3way         resp      false SF         v4
simultaneous_close    9005 fin_simultaneous orig      false SF         v4
half_close_client     9006 fin_4way         orig      true  SF         v4
rst_linger_client     9007 rst              orig      false RSTO       v4
rst_linger_server     9008 rst              resp      false RSTR       v4
rst_unread_server     9009 rst              resp      false RSTR       v4
fin_then_rst          9010 fin_rst          orig      true  RSTO       v4
refused               9011 rejected         resp      false REJ        v4-closed
unanswered            9012 no_answer        none      false S0         ghost
ipv6_client_close     9013 fin_3way         orig      false SF         v6
several_conns         9014 fin_3way         orig      false SF         v4
"
TSV_HEADER=$'scenario\tclient_ip\tclient_port\tserver_ip\tserver_port\tclose\tinitiator\thalf_close\tconn_state'

log() { printf '[record] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUTDIR=$1
[[ $EUID -eq 0 ]] || die "must run as root (network namespaces, tcpdump)"
for tool in ip tc tcpdump timeout "$PY"; do
    command -v "$tool" >/dev/null || die "missing $tool"
done
mkdir -p "$OUTDIR"

WORK=$(mktemp -d /tmp/ctscen.XXXXXX)
TCPDUMP_PID=
SERVER_PID=
OBSERVER_PID=

cleanup() {
    local rc=$?
    set +e
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [[ -n $TCPDUMP_PID ]] && kill "$TCPDUMP_PID" 2>/dev/null && wait "$TCPDUMP_PID" 2>/dev/null
    [[ -n $OBSERVER_PID ]] && kill "$OBSERVER_PID" 2>/dev/null && wait "$OBSERVER_PID" 2>/dev/null
    ip netns del "$NS_C" 2>/dev/null
    ip netns del "$NS_S" 2>/dev/null
    if [[ ${CTSCEN_KEEP_WORK:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE REGEX SECONDS: poll until a line matching REGEX shows up.
wait_for() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

setup_net() {
    ip netns add "$NS_C"
    ip netns add "$NS_S"
    ip -n "$NS_C" link add "$DEV" address "$MAC_C" type veth \
        peer name "$DEV" address "$MAC_S" netns "$NS_S"
    ip -n "$NS_C" addr add "$CLI4/24" dev "$DEV"
    ip -n "$NS_S" addr add "$SRV4/24" dev "$DEV"
    # nodad: usable at once instead of after duplicate address detection.
    ip -n "$NS_C" addr add "$CLI6/64" dev "$DEV" nodad
    ip -n "$NS_S" addr add "$SRV6/64" dev "$DEV" nodad
    # Static neighbours: no ARP/NDP delay before the first SYN of a scenario.
    ip -n "$NS_C" neigh add "$SRV4" lladdr "$MAC_S" dev "$DEV" nud permanent
    ip -n "$NS_C" neigh add "$SRV6" lladdr "$MAC_S" dev "$DEV" nud permanent
    ip -n "$NS_S" neigh add "$CLI4" lladdr "$MAC_C" dev "$DEV" nud permanent
    ip -n "$NS_S" neigh add "$CLI6" lladdr "$MAC_C" dev "$DEV" nud permanent
    ip -n "$NS_C" neigh add "$GHOST4" lladdr "$GHOST_MAC" dev "$DEV" nud permanent
    local ns
    for ns in "$NS_C" "$NS_S"; do
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$DEV" up
        # veth offloads would put >MTU GSO frames and unfinished checksums
        # in the capture; a NIC on a real wire never shows either.
        if command -v ethtool >/dev/null; then
            ip netns exec "$ns" ethtool -K "$DEV" tx off tso off gso off gro off >/dev/null 2>&1 ||
                log "warning: could not disable offloads in $ns"
        else
            log "warning: no ethtool; capture may hold GSO frames and partial checksums"
        fi
    done
}

# slow_link add|del.  A slow tbf on both egresses makes each side's FIN wait
# behind its own data in the qdisc (~12 ms per full frame), long enough for
# the two FINs to cross.  Not slower: the ACKs also queue behind the peer's
# data, and a round trip above the 200 ms minimum RTO brings spurious
# retransmissions.  Tail loss probes are switched off meanwhile (namespace-
# local sysctl): the queue makes the real RTT far larger than the handshake's
# estimate, so a probe would otherwise often resend a FIN that is merely
# still queued.
SAVED_TLP=
slow_link() {
    local ns tlp=$SAVED_TLP
    if [[ $1 == add ]]; then
        SAVED_TLP=$(ip netns exec "$NS_C" cat /proc/sys/net/ipv4/tcp_early_retrans)
        tlp=0
    fi
    for ns in "$NS_C" "$NS_S"; do
        ip netns exec "$ns" sh -c "echo $tlp >/proc/sys/net/ipv4/tcp_early_retrans"
        if [[ $1 == add ]]; then
            ip netns exec "$ns" tc qdisc add dev "$DEV" root tbf rate 1mbit burst 1600 limit 30000
        else
            ip netns exec "$ns" tc qdisc del dev "$DEV" root
        fi
    done
}

start_capture() {  # PCAP PORT
    # Capture on the client's veth end: it sees both directions.  Only this
    # scenario's server port, so stray ACKs from an earlier one cannot leak in.
    # -Z root: Debian's tcpdump would otherwise drop to a user that cannot
    # write into our private work directory.
    # Not wrapped in a shell function, so that $! is tcpdump itself.
    ip netns exec "$NS_C" tcpdump -i "$DEV" -s 0 -U --immediate-mode -Z root -nn \
        -w "$1" "tcp port $2" </dev/null 2>"$1.log" &
    TCPDUMP_PID=$!
    wait_for "$1.log" '^tcpdump: listening on' 5 || die "tcpdump did not start: $(cat "$1.log")"
}

stop_capture() {  # PCAP
    sleep 0.3  # let the last ACK/RST of the scenario reach the capture
    kill -TERM "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    grep -q '^0 packets dropped by kernel' "$1.log" || { log "capture dropped packets"; return 1; }
}

# run_attempt NAME PORT TARGET PREFIX: one try of a scenario in its own
# capture; leaves PREFIX.pcap and PREFIX.conns (the client's conn lines).
run_attempt() {
    local name=$1 port=$2 target=$3 p=$4 src dst rc=0
    case $target in
        v6) src=$CLI6 dst=$SRV6 ;;
        ghost) src=$CLI4 dst=$GHOST4 ;;
        *) src=$CLI4 dst=$SRV4 ;;
    esac
    start_capture "$p.pcap" "$port"
    if [[ $target == v4 || $target == v6 ]]; then
        timeout 30 ip netns exec "$NS_S" "$PY" "$SCEN" server "$name" "$dst" "$port" \
            >"$p.srv.out" 2>"$p.srv.err" &
        SERVER_PID=$!
        if ! wait_for "$p.srv.out" '^listening$' 5; then
            log "server did not start: $(cat "$p.srv.err")"
            rc=1
        fi
    fi
    if ((rc == 0)); then
        timeout 30 ip netns exec "$NS_C" "$PY" "$SCEN" client "$name" "$src" "$dst" "$port" \
            >"$p.cli.out" 2>"$p.cli.err" || { log "client failed: $(cat "$p.cli.err")"; rc=1; }
    fi
    if [[ -n $SERVER_PID ]]; then
        ((rc == 0)) || kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" || { ((rc)) || log "server failed: $(cat "$p.srv.err")"; rc=1; }
        SERVER_PID=
    fi
    stop_capture "$p.pcap" || rc=1
    grep $'^conn\t' "$p.cli.out" 2>/dev/null | cut -f2- >"$p.conns" || true
    return "$rc"
}

start_observer() {
    [[ -n ${CTSCEN_OBSERVE:-} ]] || return 0
    local ready="$WORK/observer.ready"
    DEV=$DEV CTSCEN_READY=$ready ip netns exec "$NS_S" bash -c "$CTSCEN_OBSERVE" &
    OBSERVER_PID=$!
    local i
    for ((i = 0; i < 600; i++)); do
        [[ -e $ready ]] && { log "observer ready"; return 0; }
        kill -0 "$OBSERVER_PID" 2>/dev/null || die "observer exited before it was ready"
        sleep 0.1
    done
    die "observer not ready after 60 s"
}

stop_observer() {
    [[ -n $OBSERVER_PID ]] || return 0
    kill -TERM "$OBSERVER_PID"
    local rc=0
    wait "$OBSERVER_PID" || rc=$?
    OBSERVER_PID=
    ((rc == 0)) || die "observer failed (exit $rc)"
    log "observer done"
}

main() {
    setup_net
    start_observer
    local accepted=() rows="$WORK/rows.tsv"
    : >"$rows"
    local name port close init half state target
    # fd 3, so nothing run inside the loop can eat the scenario list.
    while read -r name port close init half state target <&3; do
        [[ -n $name ]] || continue
        # The only scenario that needs the shaped link (see slow_link).
        [[ $name == simultaneous_close ]] && slow_link add
        local attempt ok=0 p
        for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
            p="$WORK/$name.$attempt"
            if run_attempt "$name" "$port" "$target" "$p"; then
                # The rows are the scenario's definition, filled in with the
                # 4-tuples the client reported...
                { echo "$TSV_HEADER"
                  while IFS=$'\t' read -r cip cport sip sport; do
                      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$cip" "$cport" \
                          "$sip" "$sport" "$close" "$init" "$half" "$state"
                  done <"$p.conns"; } >"$p.tsv"
                # ...and are only accepted if the wire really shows them.
                if [[ -s $p.conns ]] && "$PY" "$SCEN" check "$p.pcap" "$p.tsv" 2>"$p.check"; then
                    ok=1
                    break
                fi
                log "$name attempt $attempt: pattern not produced: $(cat "$p.check")"
            else
                log "$name attempt $attempt failed"
            fi
            sleep 0.5
        done
        [[ $name == simultaneous_close ]] && slow_link del
        if ((!ok)); then
            [[ -n $OBSERVER_PID ]] && { log "$name: pattern not produced under observation"; exit 3; }
            die "$name: no good attempt in $MAX_ATTEMPTS"
        fi
        log "$name: ok (attempt $attempt)"
        tail -n +2 "$p.tsv" >>"$rows"
        accepted+=("$p.pcap")
        sleep 0.5  # keep scenarios apart in time
    done 3<<<"$SCENARIOS"
    stop_observer

    # Assemble in the work dir and re-check the merged result as a whole
    # (every row present and correct, no unlisted connection, and libpcap
    # itself can read the concatenated file) before copying it out, so a
    # failed run never leaves a half-written or mismatched pair behind.
    { echo "$TSV_HEADER"; cat "$rows"; } >"$WORK/scenarios.tsv"
    "$PY" "$SCEN" merge "$WORK/scenarios.pcap" "${accepted[@]}"
    "$PY" "$SCEN" check "$WORK/scenarios.pcap" "$WORK/scenarios.tsv" ||
        die "merged capture does not match the manifest"
    tcpdump -nn -r "$WORK/scenarios.pcap" >/dev/null 2>&1 || die "tcpdump cannot read the merged capture"
    cp "$WORK/scenarios.pcap" "$WORK/scenarios.tsv" "$OUTDIR/"
    log "wrote $OUTDIR/scenarios.pcap ($(stat -c %s "$OUTDIR/scenarios.pcap") bytes) and $OUTDIR/scenarios.tsv ($(($(wc -l <"$OUTDIR/scenarios.tsv") - 1)) connections)"
}

main
