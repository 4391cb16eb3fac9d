#!/usr/bin/env bash
# The layering rule of docs/conventions.md ("Layers"), checked from #include lines: each folder may
# include only itself and the folders below it. apps > train, derivations > ddpm, nn > autograd >
# tensor (tensor/io is part of tensor); ddpm and nn never include each other (train joins them),
# nor do derivations and nn. Prints every offending line; fails if any.
set -u
cd "$(dirname "$0")/.."

allowed() {  # folder -> the project folders it may include
  case "$1" in
    tensor)   echo "tensor" ;;
    autograd) echo "tensor autograd" ;;
    nn)       echo "tensor autograd nn" ;;
    ddpm)     echo "tensor autograd ddpm" ;;
    train)    echo "tensor autograd nn ddpm train" ;;
    derivations) echo "tensor autograd ddpm derivations" ;;
    apps)     echo "tensor autograd nn ddpm train derivations apps" ;;
  esac
}

bad=0
for folder in tensor autograd nn ddpm train derivations apps; do
  [ -d "$folder" ] || continue
  ok=" $(allowed "$folder") "
  while IFS=: read -r file line text; do
    inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^/"]+)\/.*/\1/' <<<"$text")
    case "$inc" in tensor|autograd|nn|ddpm|train|derivations|apps) ;; *) continue ;; esac
    if [[ "$ok" != *" $inc "* ]]; then
      echo "layer violation: $file:$line includes $inc/ (a $folder/ file may include only: $(allowed "$folder"))"
      bad=1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' --include='*.h' --include='*.cpp' "$folder")
done
[ $bad -eq 0 ] && echo "check-layers: ok"
exit $bad
