#!/usr/bin/env bash
# Builds the Debian package out of tree: copies the working tree (tracked and
# untracked files, not the ignored build directories) to OUT/fapiao-VERSION,
# runs dpkg-buildpackage there, and leaves OUT/fapiao_VERSION_ARCH.deb and the
# client library's OUT/libfapiao-client0_… and OUT/libfapiao-client-dev_…
# (with the .buildinfo, .changes and -dbgsym packages) beside it.  The version is the
# program's own (src/cli/main.c FAPIAO_VERSION); debian/changelog must carry it.
#   scripts/build-deb.sh [OUT]      (default build-deb; `make deb`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/build-deb}" && cd "${1:-$root/build-deb}" && pwd)
cd "$root"

version=$(sed -n 's/^#define FAPIAO_VERSION "\(.*\)"$/\1/p' src/cli/main.c)
deb_version=$(dpkg-parsechangelog -S Version)
if [ "$version" != "$deb_version" ]; then
  echo "build-deb: fapiao version is $version but debian/changelog says $deb_version;" \
       "add a changelog entry for $version (版本号不一致：请在 debian/changelog 中添加 $version)" >&2
  exit 1
fi

src=$out/fapiao-$version
rm -rf "$src"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
  tar -c --null -T - | tar -x -C "$src"

arch=$(dpkg --print-architecture)
rm -f "$out/fapiao_${version}_$arch.deb" "$out"/libfapiao-client*_"${version}"_"$arch".deb
(cd "$src" && dpkg-buildpackage -b -us -uc -j"${JOBS:-$(nproc)}")
rm -rf "$src"
for p in fapiao libfapiao-client0 libfapiao-client-dev; do
  echo "build-deb: $out/${p}_${version}_$arch.deb"
done
