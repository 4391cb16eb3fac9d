#!/usr/bin/env bash
# The layering rule of docs/conventions.md ("Layers"), checked from #include lines: each folder may
# include only itself and the folders below it. apps > train, derivations > ddpm, nn > autograd >
# tensor (tensor/io is part of tensor); ddpm and nn never include each other (train joins them),
# nor do derivations and nn; dist (the process communicator) includes only tensor and is used by
# train and apps. Prints every offending line; fails if any.
set -u
cd "$(dirname "$0")/.."

allowed() {  # folder -> the project folders it may include
  case "$1" in
    tensor)   echo "tensor" ;;
    autograd) echo "tensor autograd" ;;
    nn)       echo "tensor autograd nn" ;;
    ddpm)     echo "tensor autograd ddpm" ;;
    dist)     echo "tensor dist" ;;
    train)    echo "tensor autograd nn ddpm train dist" ;;
    derivations) echo "tensor autograd ddpm derivations" ;;
    apps)     echo "tensor autograd nn ddpm train derivations dist apps" ;;
  esac
}

bad=0
for folder in tensor autograd nn ddpm dist train derivations apps; do
  [ -d "$folder" ] || continue
  ok=" $(allowed "$folder") "
  while IFS=: read -r file line text; do
    inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^/"]+)\/.*/\1/' <<<"$text")
    case "$inc" in tensor|autograd|nn|ddpm|dist|train|derivations|apps) ;; *) continue ;; esac
    if [[ "$ok" != *" $inc "* ]]; then
      echo "layer violation: $file:$line includes $inc/ (a $folder/ file may include only: $(allowed "$folder"))"
      bad=1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' --include='*.h' --include='*.cpp' "$folder")
done
# MPI stays behind one seam: mpi.h is included by dist/mpi.cpp alone.
while read -r file; do
  [ "$file" = "dist/mpi.cpp" ] && continue
  echo "layer violation: $file includes mpi.h (only dist/mpi.cpp may)"
  bad=1
done < <(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]mpi\.h[>"]' --include='*.h' --include='*.cpp' tensor autograd nn ddpm dist train apps tests 2>/dev/null)
[ $bad -eq 0 ] && echo "check-layers: ok"
exit $bad
