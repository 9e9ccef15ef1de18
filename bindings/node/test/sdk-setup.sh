#!/bin/sh
# Makes the types of @project-sunbird/sunbird-sdk 7.6.3 resolvable for test/sdk (tsc --noEmit).
#
# The SDK's package has git dependencies that do not install here, so it is never `npm install`ed:
# `npm pack` fetches its tarball (npm checks the registry's sha512 integrity), and the tarball is
# unpacked as is. Its `.d.ts` files import `@project-sunbird/client-services` (its peer
# dependency, where `Course`, `ContentState` and the request types really live), fetched the same
# way, and `rxjs`, which test/sdk/tsconfig.json maps to this package's own devDependency so both
# sides of the comparison see one `Observable`. Everything lands once in
# ${NPM_TOOLS:-<repo>/target/bindings-tools}/sunbird-sdk-7.6.3 (npm's cache is
# $NPM_TOOLS/npm-cache, like every npm install of the project); test/sdk/node_modules/@project-sunbird
# is a symlink to it. Running it again changes nothing. Any failure stops it with a message.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
NPM_TOOLS=${NPM_TOOLS:-$repo/target/bindings-tools}
export npm_config_cache="$NPM_TOOLS/npm-cache"
home="$NPM_TOOLS/sunbird-sdk-7.6.3"
scope="$home/node_modules/@project-sunbird"

fail() {
    echo "sdk-setup: $*" >&2
    exit 1
}

fetch() { # fetch NAME VERSION FOLDER: unpacks the npm tarball of NAME@VERSION into FOLDER
    if [ -f "$3/package.json" ] && grep -q "\"version\": \"$2\"" "$3/package.json"; then
        return 0
    fi
    work=$(mktemp -d "$home/.fetch.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --loglevel=error "$1@$2" >pack.out) ||
        fail "npm pack $1@$2 failed (is the registry reachable?)"
    tarball="$work/$(tail -n 1 "$work/pack.out")"
    [ -f "$tarball" ] || fail "npm pack $1@$2 gave no tarball"
    mkdir -p "$work/unpacked"
    tar -xzf "$tarball" -C "$work/unpacked" || fail "cannot unpack $tarball"
    [ -f "$work/unpacked/package/package.json" ] || fail "$tarball has no package/package.json"
    rm -rf "$3"
    mkdir -p "$(dirname "$3")"
    mv "$work/unpacked/package" "$3"
    rm -rf "$work"
    trap - EXIT
}

mkdir -p "$scope"
fetch @project-sunbird/sunbird-sdk 7.6.3 "$scope/sunbird-sdk"
# The SDK's peerDependencies pin client-services to exactly this version.
fetch @project-sunbird/client-services 7.0.6 "$scope/client-services"

for file in "$scope/sunbird-sdk/course/def/course-service.d.ts" \
    "$scope/client-services/services/course/interface/cs-course-service.d.ts" \
    "$scope/client-services/models/course/index.d.ts"; do
    [ -f "$file" ] || fail "$file is missing: not the expected SDK"
done

link="$here/sdk/node_modules/@project-sunbird"
mkdir -p "$here/sdk/node_modules"
if [ "$(readlink "$link" 2>/dev/null || true)" != "$scope" ]; then
    rm -rf "$link"
    ln -s "$scope" "$link"
fi
echo "sdk-setup: @project-sunbird/sunbird-sdk 7.6.3 and client-services 7.0.6 in $scope"
