#!/bin/sh
# Builds bin/go-web offline, from the Go sources Debian installs under /usr/share/gocode/src
# (GOPATH mode: no go.mod, no module proxy, no network). On Debian 12 (bookworm):
#
#   apt-get install -y golang-go golang-golang-x-oauth2-dev golang-github-coreos-go-oidc-dev
#
# which brings Go 1.19, golang.org/x/oauth2 0.3.0 and github.com/coreos/go-oidc 2.1.0 (with its
# dependencies gopkg.in/square/go-jose.v2 and github.com/pquerna/cachecontrol).
# GOCODE=<folder> points at another GOPATH holding the same sources.
set -eu
cd "$(dirname "$0")"

APT_LINE="apt-get install -y golang-go golang-golang-x-oauth2-dev golang-github-coreos-go-oidc-dev"
GOCODE="${GOCODE:-/usr/share/gocode}"

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: the Go toolchain (go) is not installed; on Debian/Ubuntu: $APT_LINE" >&2
    exit 1
fi
missing=""
for package in golang.org/x/oauth2 github.com/coreos/go-oidc gopkg.in/square/go-jose.v2 github.com/pquerna/cachecontrol; do
    [ -d "$GOCODE/src/$package" ] || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "build.sh: Go package source(s) missing under $GOCODE/src:$missing; on Debian/Ubuntu: $APT_LINE" >&2
    exit 1
fi

# GOPATH mode with Debian's sources only; never the network.
export GO111MODULE=off GOPATH="$GOCODE" GOFLAGS="" GOPROXY=off GOTOOLCHAIN=local
if [ -z "${GOCACHE:-}" ] && { [ -z "${HOME:-}" ] || [ ! -w "${HOME:-/nonexistent}" ]; }; then
    export GOCACHE="${TMPDIR:-/tmp}/go-web-build-cache"   # go needs a writable build cache
fi
mkdir -p bin
go build -o bin/go-web .
echo "build.sh: built $(pwd)/bin/go-web with $(go version | cut -d' ' -f3)"
