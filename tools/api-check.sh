#!/usr/bin/env bash
# The public API of the library crates: the committed listing (api/*.txt) and the semver check.
#
#   bash tools/api-check.sh            # regenerate api/*.txt; fail if they differ from the committed ones
#   bash tools/api-check.sh --write    # regenerate api/*.txt (then review `git diff api/` and commit it)
#   bash tools/api-check.sh --semver   # also: cargo semver-checks against the baseline in api/BASELINE
#
# The listing needs a nightly toolchain (rustdoc's JSON output is unstable): `rustup toolchain install
# nightly`. It lists every public item with its signature, `#[non_exhaustive]` marks and the traits it
# implements (tools/api-listing.py), so any change to the API is a reviewable diff of api/*.txt. Every
# feature is on (`--all-features`), so optional items (the `json` feature's) are listed too.
#
# --semver runs `cargo semver-checks` (`cargo install cargo-semver-checks --locked`; about 10 minutes
# of CPU to build) on every library crate against the commit in api/BASELINE, the last reviewed API,
# and fails on a change that needs a new major version. After an intended breaking change has been
# reviewed, move the baseline to the commit that makes it: `git rev-parse HEAD > api/BASELINE`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
crates="tether-core tether-deflate tether tether-tokio tether-smol tether-async-std tether-chaos"
out="api"
if [ "$mode" != --write ]; then out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
for c in $crates; do
    cargo +nightly rustdoc -q -p "$c" --lib --all-features -- -Z unstable-options --output-format json
    python3 tools/api-listing.py "target/doc/${c//-/_}.json" >"$out/$c.txt"
done
status=0
if [ "$mode" != --write ]; then
    for c in $crates; do
        if ! diff -u "api/$c.txt" "$out/$c.txt"; then
            echo "api-check: the public API of $c changed (above); if intended: bash tools/api-check.sh --write" >&2
            status=1
        fi
    done
    [ "$status" = 0 ] && echo "api-check: the public API matches api/*.txt"
fi
if [ "$mode" = --semver ]; then
    baseline="$(cat api/BASELINE)"
    for c in $crates; do
        cargo semver-checks --package "$c" --all-features --baseline-rev "$baseline" || status=1
    done
fi
exit "$status"
