#!/usr/bin/env bash
# The Autobahn|Testsuite client cases, run through Tether on each runtime.
#
#   bash tests/autobahn/run.sh                     # every case on tokio, smol and async-std
#   AUTOBAHN_RUNTIMES="tokio" bash tests/autobahn/run.sh
#
# The fuzzing server is the official suite (`autobahntestsuite`, Python 2.7 only) when a Python 2.7
# interpreter is found, and otherwise `kosoku` (PyPI), a Python 3 port of the suite's fuzzing server
# that runs the same case files; the script says which one ran, and so does the summary. Either is
# installed, pinned, into a virtualenv under the target dir (never the home directory). It starts one
# server per runtime on 127.0.0.1 and runs tests/autobahn/client.rs against each (agent
# tether-<runtime>), all runtimes at once: the suite's server (single-threaded Python) is the bottleneck
# of the permessage-deflate cases, so the runtimes run side by side on the machine's cores. Then it reads
# the reports' index.json and exits non-zero on any case that is FAILED, WRONG CODE, UNCLEAN or
# missing. The summary goes to stdout and to $AUTOBAHN_SUMMARY if set.
#
# Every case runs, 12.* and 13.* (permessage-deflate) included: the client offers compression and
# compresses every message it echoes.
#
# Environment:
#   AUTOBAHN_RUNTIMES   runtimes to run (default: "tokio smol async-std")
#   AUTOBAHN_SERVER     wstest (the official suite, needs Python 2.7), kosoku (Python 3), or auto (the
#                       default: wstest when a Python 2.7 is found, kosoku otherwise)
#   AUTOBAHN_PORT       the first runtime's fuzzing server port, the next ones take the next ports
#                       (default: free ones)
#   AUTOBAHN_PROFILE    cargo profile for the client (default: dev, which shares the build of `cargo test`)
#   AUTOBAHN_SUMMARY    also write the summary (markdown) to this file
#   TETHER_CACHE        where the Python environments live (default: the target dir's autobahn-env/)
#   PYTHON27            a Python 2.7 interpreter (default: pyenv's 2.7.*, then python2.7 on PATH)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runtimes="${AUTOBAHN_RUNTIMES:-tokio smol async-std}"
profile="${AUTOBAHN_PROFILE:-dev}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
cache="${TETHER_CACHE:-$target_dir/autobahn-env}"
work="$target_dir/autobahn"
venv="$cache/autobahn-venv"
kosoku_venv="$cache/kosoku-venv"

say() { printf 'autobahn: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ---- the suite: Python 2.7 + pinned dependencies (the package declares none that install) ----------
find_python27() {
    if [ -n "${PYTHON27:-}" ]; then echo "$PYTHON27"; return; fi
    local p
    for p in "$HOME"/.pyenv/versions/2.7*/bin/python /usr/bin/python2.7 "$(command -v python2.7 || true)"; do
        if [ -n "$p" ] && [ -x "$p" ]; then echo "$p"; return; fi
    done
}

install_suite() {
    local stamp="$venv/.tether-installed"
    if [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements-py27.txt" && [ -x "$venv/bin/wstest" ]; then
        return
    fi
    local py27
    py27="$(find_python27)"
    [ -n "$py27" ] || die "no Python 2.7 found (the official autobahntestsuite runs only on 2.7); set PYTHON27, or AUTOBAHN_SERVER=kosoku"
    say "installing autobahntestsuite into $venv (Python: $py27)"
    mkdir -p "$cache"
    rm -rf "$venv" "$cache/virtualenv-tool"
    # virtualenv < 20.22 is the last that can create 2.7 environments; it runs on the default python3.
    python3 -m venv "$cache/virtualenv-tool"
    "$cache/virtualenv-tool/bin/pip" install -q --disable-pip-version-check 'virtualenv<20.22'
    "$cache/virtualenv-tool/bin/virtualenv" -q -p "$py27" "$venv"
    PIP_NO_PYTHON_VERSION_WARNING=1 "$venv/bin/pip" install -q --disable-pip-version-check \
        -r "$here/requirements-py27.txt" 2>&1 | grep -v DEPRECATION >&2 || true
    "$venv/bin/wstest" --autobahnversion >/dev/null 2>&1 || die "wstest does not start; see pip's output above"
    cp "$here/requirements-py27.txt" "$stamp"
}

# The Python 3 port: one pinned package, no native build (its wheel is abi3).
install_kosoku() {
    local stamp="$kosoku_venv/.tether-installed"
    if [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements-kosoku.txt" && [ -x "$kosoku_venv/bin/kosoku" ]; then
        return
    fi
    say "installing kosoku into $kosoku_venv ($(python3 --version 2>&1))"
    mkdir -p "$cache"
    rm -rf "$kosoku_venv"
    python3 -m venv "$kosoku_venv"
    "$kosoku_venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-kosoku.txt" >&2
    "$kosoku_venv/bin/kosoku" --help >/dev/null 2>&1 || die "kosoku does not start; see pip's output above"
    cp "$here/requirements-kosoku.txt" "$stamp"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

server="${AUTOBAHN_SERVER:-auto}"
if [ "$server" = auto ]; then
    if [ -n "$(find_python27)" ]; then server=wstest; else server=kosoku; fi
fi
case "$server" in
    wstest)
        say "fuzzing server: the official autobahntestsuite (wstest, Python 2.7)"
        install_suite
        ;;
    kosoku)
        say "fuzzing server: kosoku, the Python 3 port of the suite's fuzzing server (no Python 2.7 used)"
        install_kosoku
        ;;
    *) die "AUTOBAHN_SERVER must be wstest, kosoku or auto, not $server" ;;
esac

say "building the client (profile $profile)"
(cd "$repo" && cargo build -q --profile "$profile" -p tether-tests --example autobahn-client)
case "$profile" in dev) bin="$target_dir/debug/examples/autobahn-client" ;; *) bin="$target_dir/$profile/examples/autobahn-client" ;; esac
[ -x "$bin" ] || die "client binary missing at $bin"

rm -rf "$work"
mkdir -p "$work"

# Starts a fuzzing server on 127.0.0.1:$1 in $work/$2 (its reports under $work/$2/reports), and records
# its pid in server_pid[$2]; waits until it listens.
declare -A server_pid
start_server() {
    local port=$1 dir=$2 ready
    mkdir -p "$work/$dir"
    case "$server" in
        wstest)
            cat >"$work/$dir/fuzzingserver.json" <<EOF
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "./reports",
  "cases": ["*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
            (cd "$work/$dir" && exec "$venv/bin/wstest" -m fuzzingserver -s fuzzingserver.json -u 0) >"$work/$dir/server.log" 2>&1 &
            ready="Fuzzing Server"
            ;;
        kosoku)
            (cd "$work/$dir" && exec "$kosoku_venv/bin/kosoku" -m fuzzingserver -o reports "127.0.0.1:$port") \
                >"$work/$dir/server.log" 2>&1 &
            ready="fuzzingserver listening"
            ;;
    esac
    server_pid[$dir]=$!
    for _ in $(seq 1 150); do
        if grep -q "$ready" "$work/$dir/server.log" 2>/dev/null &&
            python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; then
            return
        fi
        kill -0 "${server_pid[$dir]}" 2>/dev/null || { cat "$work/$dir/server.log" >&2; die "the fuzzing server exited"; }
        sleep 0.2
    done
    die "the fuzzing server did not start listening within 30 s"
}

# kosoku exits by itself once the client asked for its reports: wait (bounded) for it to write them.
stop_server() {
    local pid=${server_pid[$1]:-}
    [ -n "$pid" ] || return 0
    if [ "$server" = kosoku ]; then
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "server_pid[$1]"
}
stop_servers() {
    local dir
    for dir in "${!server_pid[@]}"; do stop_server "$dir"; done
}
trap 'stop_servers' EXIT

declare -A took counts port client
next_port="${AUTOBAHN_PORT:-}"
for rt in $runtimes; do
    if [ -n "$next_port" ]; then port[$rt]=$next_port; next_port=$((next_port + 1)); else port[$rt]=$(free_port); fi
    say "starting a fuzzing server for $rt on 127.0.0.1:${port[$rt]}"
    start_server "${port[$rt]}" "$rt"
done
for rt in $runtimes; do
    say "running the cases on $rt"
    (
        t0=$(date +%s)
        "$bin" "$rt" "ws://127.0.0.1:${port[$rt]}" "tether-$rt" 2>"$work/client-$rt.log" ||
            say "the $rt client reported trouble (exit $?)"
        echo $(($(date +%s) - t0)) >"$work/$rt/seconds"
    ) &
    client[$rt]=$!
done
for rt in $runtimes; do
    wait "${client[$rt]}" || true
    sed "s/^/[$rt] /" "$work/client-$rt.log" >&2
    took[$rt]=$(cat "$work/$rt/seconds" 2>/dev/null || echo "?")
    counts[$rt]=$(sed -n 's/.*: \([0-9][0-9]*\) cases on the server.*/\1/p' "$work/client-$rt.log" | head -1)
done
stop_servers

timings=""
for rt in $runtimes; do timings="$timings tether-$rt=${took[$rt]}"; done
case_counts=""
for rt in $runtimes; do case_counts="$case_counts tether-$rt=${counts[$rt]:-0}"; done

case "$server" in
    wstest)
        suite_version="the official fuzzing server, $("$venv/bin/wstest" --autobahnversion 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g')"
        ;;
    kosoku)
        suite_version="kosoku $("$kosoku_venv/bin/pip" show kosoku 2>/dev/null | sed -n 's/^Version: //p'), the Python 3 port of the suite's fuzzing server (the same case files)"
        ;;
esac
first_rt="${runtimes%% *}"
python3 - "$work" "$work/$first_rt/server.log" "$runtimes" "$timings" "${AUTOBAHN_SUMMARY:-}" "$profile" "$suite_version" "$case_counts" <<'EOF'
import ast, collections, glob, json, os, re, sys

reports, log, runtimes, timings, summary_path, profile, suite, case_counts = sys.argv[1:9]
report = {}
for index in glob.glob(os.path.join(reports, "*", "reports", "index.json")):
    for agent, cases in json.load(open(index)).items():
        report.setdefault(agent, {}).update(cases)
if not report:
    sys.exit("autobahn: ERROR: no report under %s" % reports)
# The cases the server offered: wstest logs them; for kosoku, the union of its reports, and each
# client's count (from /getCaseCount) catches a case missing from every report.
found = re.search(r"Cases = (\[.*?\])", open(log).read())
expected = ast.literal_eval(found.group(1)) if found else sorted(
    {c for cases in report.values() for c in cases}, key=lambda c: [int(p) for p in c.split(".")])
offered = {a: int(n) for a, n in (c.split("=") for c in case_counts.split())}
seconds = dict(t.split("=") for t in timings.split())
BAD = {"FAILED", "WRONG CODE", "UNCLEAN"}
ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "WRONG CODE", "UNCLEAN", "missing"]

def key(case):
    return [int(p) for p in case.split(".")]

lines = ["| runtime (agent) | cases | " + " | ".join(ORDER) + " | seconds |",
         "|---|---:|" + "---:|" * len(ORDER) + "---:|"]
problems, notes = [], []
for rt in runtimes.split():
    agent = "tether-" + rt
    cases = report.get(agent, {})
    if offered.get(agent) != len(expected):
        problems.append("%s: the server offered %s cases, %d expected" % (agent, offered.get(agent), len(expected)))
    counts = collections.Counter()
    for case in expected:
        r = cases.get(case)
        if r is None:
            counts["missing"] += 1
            problems.append("%s %s: missing (no result)" % (agent, case))
            continue
        b, c = r["behavior"], r["behaviorClose"]
        verdict = next((v for v in (b, c) if v in BAD), b)
        counts[verdict] += 1
        if verdict in BAD:
            problems.append("%s %s: behavior %s, close %s (report %s)" % (agent, case, b, c, r.get("reportfile")))
        elif b != "OK" or c != "OK":
            notes.append("%s %s: %s / close %s" % (agent, case, b, c))
    lines.append("| %s | %d | " % (agent, len(expected)) + " | ".join(str(counts[o]) for o in ORDER)
                 + " | %s |" % seconds.get(agent, "?"))

non_ok = collections.defaultdict(list)
for n in notes:
    agent, rest = n.split(" ", 1)
    non_ok[rest].append(agent)
passed = sum(1 for _ in expected) * len(runtimes.split()) - len(problems)
out = ["Suite: %s; one fuzzing server per runtime on 127.0.0.1, the runtimes side by side; client "
       "tests/autobahn/client.rs (cargo profile %s), one Tether client per case." % (suite.strip(), profile), "",
       "Cases run: %d (every case of the suite, 12.* and 13.* permessage-deflate included)." % len(expected),
       ""] + lines + [""]
if non_ok:
    out.append("Accepted non-OK verdicts (NON-STRICT / INFORMATIONAL are passes in Autobahn's terms):")
    out.append("")
    for rest, agents in sorted(non_ok.items(), key=lambda kv: key(kv[0].split(":")[0])):
        out.append("- %s (%s)" % (rest, ", ".join(agents)))
    out.append("")
if problems:
    out.append("PROBLEMS:")
    out += ["- " + p for p in problems]
else:
    out.append("Result: 0 FAILED, 0 WRONG CODE, 0 UNCLEAN, 0 missing.")
text = "\n".join(out) + "\n"
sys.stdout.write(text)
print("autobahn: %d passed, %d failed" % (passed, len(problems)))
if summary_path:
    open(summary_path, "w").write(text)
sys.exit(1 if problems else 0)
EOF
