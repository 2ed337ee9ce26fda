#!/usr/bin/env bash
# Moves integration-test files written as tests/NAME.rs (with `mod common;`, e.g. from a
# branch made before the tests became one binary) into that binary, tests/it/: `git mv` to
# tests/it/NAME.rs, the harness used as `crate::common`, `mod NAME;` added to
# tests/it/main.rs. Run from anywhere: tools/into_it.sh identity proxies ...
# Without arguments it moves every tests/*.rs except the conformance runner.
set -euo pipefail
cd "$(dirname "$0")/.."

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in tests/*.rs; do
        n=$(basename "$f" .rs)
        [ "$n" = conformance ] || names+=("$n")
    done
fi

for name in "${names[@]}"; do
    name=$(basename "$name" .rs)
    src="tests/$name.rs"
    dst="tests/it/$name.rs"
    if [ ! -f "$src" ]; then
        echo "into_it: no $src" >&2
        exit 1
    fi
    if [ -e "$dst" ]; then
        echo "into_it: $dst exists already" >&2
        exit 1
    fi
    git mv "$src" "$dst"
    sed -i -e '/^\(#\[[^]]*\] *\)\?mod common;$/d' \
        -e 's/^use common::/use crate::common::/' \
        -e 's/\([^:A-Za-z0-9_]\)common::/\1crate::common::/g' "$dst"
    if ! grep -q "^mod $name;$" tests/it/main.rs; then
        echo "mod $name;" >>tests/it/main.rs
    fi
    echo "into_it: $src -> $dst"
done
# rustfmt sorts the `mod` lines of main.rs
cargo fmt --all
