#!/usr/bin/env bash
# Checks that the README's test command reuses everything the demo command compiled: lists every unit
# (crate, features, profile settings) that `cargo test --workspace` would compile differently from
# `cargo run -p tether-cli -- demo`, and fails if there is one. Compiles nothing: it compares cargo's
# unit graphs (`--unit-graph`, which needs a nightly toolchain: `rustup toolchain install nightly`).
#
#   bash tools/check-shared-build.sh
#
# A unit listed here is a feature some crate's dependencies enable only in the test build: add it to
# tools/workspace-hack/Cargo.toml ([build-dependencies] for build scripts and proc-macros).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo +nightly build -p tether-cli --unit-graph -Z unstable-options >"$tmp/demo.json"
cargo +nightly test --workspace --no-run --unit-graph -Z unstable-options >"$tmp/test.json"
python3 - "$tmp/demo.json" "$tmp/test.json" <<'PY'
import json, sys

def units(path):
    out = {}
    for u in json.load(open(path))["units"]:
        profile = dict(u["profile"])
        profile.pop("name")  # "dev" or "test": the same settings, and cargo reuses the output
        key = (u["pkg_id"].rsplit("/", 1)[-1], u["target"]["name"], u["mode"])
        out.setdefault(key, set()).add((tuple(sorted(u["features"])), json.dumps(profile, sort_keys=True)))
    return out

demo, test = units(sys.argv[1]), units(sys.argv[2])
rebuilt = 0
for key, variants in sorted(demo.items()):
    for features, profile in variants:
        if (features, profile) not in test.get(key, set()):
            rebuilt += 1
            print("rebuilt by the tests: %s %s (%s)\n  demo features: %s\n  test features: %s"
                  % (key[0], key[1], key[2], list(features), [list(f) for f, _ in test.get(key, ())]))
total = sum(len(v) for v in demo.values())
print("%d of the demo's %d units would be compiled again by the test command" % (rebuilt, total))
sys.exit(1 if rebuilt else 0)
PY
