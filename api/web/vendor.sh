#!/usr/bin/env bash
# Re-vendor the map's and the API documentation's front-end libraries from the npm registry, at
# the exact versions of package.json / package-lock.json, into static/vendor/ with their licences.
# The bundles are checked in so that `pip install` needs no Node.js and the service works with
# no internet; run this only to change a version (then commit package*.json and static/vendor).
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/" 2>/dev/null || cp package.json "$work/"
(cd "$work" && if [ -f package-lock.json ]; then npm ci --ignore-scripts --no-audit --no-fund;
 else npm install --ignore-scripts --no-audit --no-fund; fi)
[ -f package-lock.json ] || cp "$work/package-lock.json" .
modules="$work/node_modules"
vendor=static/vendor
rm -rf "$vendor"
mkdir -p "$vendor"/{maplibre-gl,chart.js,swagger-ui,redoc}
cp "$modules/maplibre-gl/dist/maplibre-gl.js" "$modules/maplibre-gl/dist/maplibre-gl.css" \
   "$modules/maplibre-gl/LICENSE.txt" "$vendor/maplibre-gl/"
cp "$modules/chart.js/dist/chart.umd.min.js" "$modules/chart.js/LICENSE.md" "$vendor/chart.js/"
cp "$modules/swagger-ui-dist/swagger-ui-bundle.js" "$modules/swagger-ui-dist/swagger-ui.css" \
   "$modules/swagger-ui-dist/LICENSE" "$modules/swagger-ui-dist/NOTICE" "$vendor/swagger-ui/"
cp "$modules/redoc/bundles/redoc.standalone.js" \
   "$modules/redoc/bundles/redoc.standalone.js.LICENSE.txt" "$modules/redoc/LICENSE" \
   "$vendor/redoc/"
# ReDoc's sidebar badge loads its logo from cdn.redoc.ly: offline that request fails, so the
# badge shows the package's own favicon instead (the only change made to a bundle).
sed -i 's|https://cdn.redoc.ly/redoc/logo-mini.svg|/static/favicon.svg|' "$vendor/redoc/redoc.standalone.js"
# Source-map references point at files not shipped; browsers would ask for them in vain.
# Only a bundle's own last-line reference: ReDoc carries worker code in a string with one.
sed -i -e 's|^//# sourceMappingURL=[^'"'"'"]*$||' -e 's|^/\*# sourceMappingURL=[^'"'"'"]*\*/$||' \
    "$vendor"/*/*.js "$vendor"/*/*.css
for script in "$vendor"/*/*.js; do node --check "$script"; done
node -e '
const lock = require(process.argv[1]);
const out = {};
for (const name of Object.keys(require("./package.json").dependencies)) {
  const entry = lock.packages["node_modules/" + name];
  out[name] = {version: entry.version, resolved: entry.resolved, integrity: entry.integrity,
               license: entry.license};
}
require("fs").writeFileSync(process.argv[2], JSON.stringify(out, null, 2) + "\n");
' "$PWD/package-lock.json" "$vendor/versions.json"
du -sh "$vendor"
