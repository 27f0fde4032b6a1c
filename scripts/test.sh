#!/usr/bin/env bash
# The whole suite: install, build, lint, typecheck, then every package's tests (unit tests beside
# the code, multi-process tests in test/). Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
set +e
rm -rf packages/*/.vitest-results apps/*/.vitest-results test/.vitest-results
pnpm exec turbo run lint typecheck test --continue --concurrency=1
status=$?
node scripts/sumTestResults.mjs || status=1
exit $status
