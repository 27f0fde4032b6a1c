#!/usr/bin/env bash
# The whole suite: install, build, lint, typecheck, then every package's tests (unit tests beside
# the code, multi-process tests in test/). Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
# The devtools tests drive Debian's chromium; install it where it is missing and we may.
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "test: installing chromium with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "test: could not install chromium; the browser tests will fail" >&2
fi
set +e
rm -rf packages/*/.vitest-results apps/*/.vitest-results test/.vitest-results
pnpm exec turbo run lint typecheck test --continue --concurrency=1
status=$?
node scripts/sumTestResults.mjs || status=1
exit $status
