#!/usr/bin/env bash
# The project's test command (README "Quick start"): formatting, lints, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# Benches are compiled by clippy above; `cargo bench` runs them (see BENCHMARKS.md).
cargo test
