#!/usr/bin/env bash
# The README demo, complete from a fresh clone: set up, then run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
node scripts/demo.mjs "$@"
