#!/usr/bin/env bash
# The repository stands alone (docs/conventions.md): no tracked text file may name a file outside
# it. Fails, printing file:line for each hit, on
#   - a relative path into the folder of reference material that sat beside the repository;
#   - the file names of the design and mathematics notes the project was started from, and of the
#     PyTorch script that came with them (the project has docs/conventions.md, docs/equations.md
#     and tools/torch_unet.py instead);
#   - an absolute path of a particular machine: one under the top-level folders work, home, root.
# Debian system paths (/usr/bin/python3, /usr/share/datasets) are fine. Binary files are skipped
# (grep -I). The patterns below are spelled with character classes so that this file, which is
# checked too, does not match itself.
set -u
cd "$(dirname "$0")/.."

# Files allowed to name an outside path for now (none). A listed file that no longer needs the
# exception fails the check too, so the list cannot outlive its reason.
PENDING=()

patterns=(
  -e '[.][.]/shared'
  -e 'MATH[.]md'
  -e 'DESIGN[.]md'
  -e 'torch_referenc[e]'
  -e '(^|[^A-Za-z0-9_.~-])/(wor[k]|hom[e]|roo[t])(/|[^A-Za-z0-9_.-]|[.]([^A-Za-z0-9_]|$)|$)'
)

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -d '' files < <(git ls-files -z)
else  # an unpacked archive: every file but the build output
  mapfile -d '' files < <(find . -path ./.git -prune -o -path ./build -prune -o -type f -print0 | sed -z 's|^\./||')
fi

is_pending() {
  local p
  for p in "${PENDING[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}

bad=0
checked=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue  # deleted in the work tree, not yet in the index
  is_pending "$f" && continue
  checked+=("$f")
done
if [ ${#checked[@]} -gt 0 ]; then
  hits=$(printf '%s\0' "${checked[@]}" | xargs -0 grep -InE "${patterns[@]}" -- 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "$hits" | sed 's/^/outside reference: /'
    bad=1
  fi
fi
for p in "${PENDING[@]}"; do
  if [ ! -f "$p" ] || ! grep -qIE "${patterns[@]}" -- "$p"; then
    echo "check-self-contained: $p needs no exception any more: remove it from PENDING in $0"
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "check-self-contained: ok (${#checked[@]} tracked files)"
exit $bad
