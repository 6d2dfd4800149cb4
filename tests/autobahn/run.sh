#!/usr/bin/env bash
# The Autobahn|Testsuite client cases, run through Tether on each runtime.
#
#   bash tests/autobahn/run.sh                     # every case on tokio, smol and async-std
#   AUTOBAHN_RUNTIMES="tokio" bash tests/autobahn/run.sh
#
# Installs the official suite (`autobahntestsuite`, Python 2.7 only) into a virtualenv under the cache
# dir, starts one fuzzing server per runtime on 127.0.0.1 and runs tests/autobahn/client.rs against
# each (agent tether-<runtime>), all runtimes at once, reads each reports/clients/index.json and exits
# non-zero on any case that is FAILED, WRONG CODE, UNCLEAN or missing. The summary goes to stdout and
# to $AUTOBAHN_SUMMARY if set.
#
# Every case runs, 12.* and 13.* (permessage-deflate) included: the client offers compression and
# compresses every message it echoes.
#
# Environment:
#   AUTOBAHN_RUNTIMES   runtimes to run (default: "tokio smol async-std")
#   AUTOBAHN_PORT       first fuzzing server port, the next runtimes take the next ones (default: free ones)
#   AUTOBAHN_PROFILE    cargo profile for the client (default: dev, which shares the build of `cargo test`)
#   AUTOBAHN_SUMMARY    also write the summary (markdown) to this file
#   TETHER_CACHE        where the Python environments live (default: ~/.cache/tether)
#   PYTHON27            a Python 2.7 interpreter (default: pyenv's 2.7.*, then python2.7 on PATH)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runtimes="${AUTOBAHN_RUNTIMES:-tokio smol async-std}"
profile="${AUTOBAHN_PROFILE:-dev}"
cache="${TETHER_CACHE:-$HOME/.cache/tether}"
work="${CARGO_TARGET_DIR:-$repo/target}/autobahn"
# Keyed by the pinned requirements, so that checkouts with different pins never reinstall each other's.
venv="$cache/autobahn-venv-$(sha256sum "$here/requirements-py27.txt" | cut -c1-12)"

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
    [ -n "$py27" ] || die "no Python 2.7 found (the official autobahntestsuite runs only on 2.7); set PYTHON27 or install one with pyenv"
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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

install_suite

say "building the client (profile $profile)"
(cd "$repo" && cargo build -q --profile "$profile" -p tether-tests --example autobahn-client)
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$profile" in dev) bin="$target_dir/debug/examples/autobahn-client" ;; *) bin="$target_dir/$profile/examples/autobahn-client" ;; esac
[ -x "$bin" ] || die "client binary missing at $bin"

rm -rf "$work"
mkdir -p "$work"

# One fuzzing server per runtime, all at once: the suite's server (single-threaded Python) is the
# bottleneck of the compression cases, so the runtimes run side by side on the machine's cores.
declare -A server port took
stop_servers() {
    local rt
    for rt in "${!server[@]}"; do kill "${server[$rt]}" 2>/dev/null || true; done
    for rt in "${!server[@]}"; do wait "${server[$rt]}" 2>/dev/null || true; done
}
trap stop_servers EXIT
base_port="${AUTOBAHN_PORT:-}"
for rt in $runtimes; do
    mkdir -p "$work/$rt"
    if [ -n "$base_port" ]; then port[$rt]=$base_port; base_port=$((base_port + 1)); else port[$rt]=$(free_port); fi
    cat >"$work/$rt/fuzzingserver.json" <<EOF
{
  "url": "ws://127.0.0.1:${port[$rt]}",
  "outdir": "./reports/clients",
  "cases": ["*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
    say "starting a fuzzing server for $rt on 127.0.0.1:${port[$rt]}"
    (cd "$work/$rt" && exec "$venv/bin/wstest" -m fuzzingserver -s fuzzingserver.json -u 0) >"$work/$rt/server.log" 2>&1 &
    server[$rt]=$!
done
for rt in $runtimes; do
    for _ in $(seq 1 100); do
        if grep -q "Fuzzing Server" "$work/$rt/server.log" 2>/dev/null &&
            python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',${port[$rt]}),1)" 2>/dev/null; then
            break
        fi
        kill -0 "${server[$rt]}" 2>/dev/null || { cat "$work/$rt/server.log" >&2; die "the fuzzing server exited"; }
        sleep 0.2
    done
done

declare -A client
for rt in $runtimes; do
    say "running the cases on $rt"
    (
        t0=$(date +%s)
        "$bin" "$rt" "ws://127.0.0.1:${port[$rt]}" "tether-$rt" 2>&1 | sed -u "s/^/[$rt] /" >&2 ||
            say "the $rt client reported trouble"
        echo $(($(date +%s) - t0)) >"$work/$rt/seconds"
    ) &
    client[$rt]=$!
done
for rt in $runtimes; do
    wait "${client[$rt]}" || true
    took[$rt]=$(cat "$work/$rt/seconds" 2>/dev/null || echo "?")
done

indexes=""
for rt in $runtimes; do
    [ -f "$work/$rt/reports/clients/index.json" ] || die "no report for $rt at $work/$rt/reports/clients/index.json"
    indexes="$indexes $rt=$work/$rt/reports/clients/index.json"
done
timings=""
for rt in $runtimes; do timings="$timings tether-$rt=${took[$rt]}"; done

suite_version="$("$venv/bin/wstest" --autobahnversion 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g')"
first_rt="${runtimes%% *}"
python3 - "$indexes" "$work/$first_rt/server.log" "$runtimes" "$timings" "${AUTOBAHN_SUMMARY:-}" "$profile" "$suite_version" <<'EOF'
import ast, collections, json, re, sys

indexes, log, runtimes, timings, summary_path, profile, suite = sys.argv[1:8]
report = {}
for item in indexes.split():
    report.update(json.load(open(item.split("=", 1)[1])))
expected = ast.literal_eval(re.search(r"Cases = (\[.*?\])", open(log).read()).group(1))
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
