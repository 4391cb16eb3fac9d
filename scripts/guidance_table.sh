#!/usr/bin/env bash
# The guidance table of a class-conditional checkpoint (README "Draw a chosen digit"): for each
# guidance weight w, 100 samples per digit with the default sampler (./apps/sample --digit all),
# scored by ./apps/eval --labels against 1,000 held-out digits: the fraction classified as the
# asked digit, overall and per digit, the FID overall and per digit, p > 0.9, precision and recall.
# Writes OUT/table.md (and OUT/gW.png, OUT/gW.json per weight). Run from the repository root.
#
#   scripts/guidance_table.sh CKPT OUT [W ...]        (default weights: 0 1 2 4)
# Environment: GUIDANCE_N (samples per digit, default 100), GUIDANCE_SEED (default 1),
#   GUIDANCE_STEPS (default 100, the default sampler), GUIDANCE_CLASSIFIER (default
#   runs/classifier.safetensors), GUIDANCE_DATA (default data), GUIDANCE_N_REAL (default 1000),
#   GUIDANCE_TABLE_ONLY=1 (write table.md from the gW.json already in OUT, without sampling).
set -euo pipefail
die() { echo "guidance_table: $*" >&2; exit 2; }
[[ $# -ge 2 ]] || die "usage: scripts/guidance_table.sh CKPT OUT [W ...] (expected a checkpoint and an output folder)"
ckpt=$1 out=$2
shift 2
weights=("$@")
[[ ${#weights[@]} -gt 0 ]] || weights=(0 1 2 4)
per_digit=${GUIDANCE_N:-100} seed=${GUIDANCE_SEED:-1} steps=${GUIDANCE_STEPS:-100}
classifier=${GUIDANCE_CLASSIFIER:-runs/classifier.safetensors} data=${GUIDANCE_DATA:-data} n_real=${GUIDANCE_N_REAL:-1000}
[[ -f $ckpt ]] || die "expected a checkpoint file, found no '$ckpt'"
[[ -f $classifier ]] || die "expected the classifier weights at '$classifier' (./apps/classifier makes them), found none"
for w in "${weights[@]}"; do [[ $w =~ ^[0-9]+([.][0-9]+)?$ ]] || die "expected guidance weights >= 0, got '$w'"; done
for app in sample eval; do [[ -x ./apps/$app ]] || die "expected ./apps/$app (run make first, from the repository root), found none"; done
mkdir -p "$out"

# num KEY < JSON: the last number of KEY. eval's keys are sorted, so the overall "fid" comes after the
# per-digit ones inside "asked_per_class"; a per-digit object alone holds one of each.
num() { grep -o "\"$1\":[-0-9.eE+naif]*" | tail -1 | sed 's/.*://'; }
f() { awk -v v="$1" -v d="${2:-3}" 'BEGIN { printf ("%." d "f"), v }'; }
pct() { awk -v v="$1" 'BEGIN { printf "%.1f %%", 100 * v }'; }

for w in "${weights[@]}"; do
  if [[ ${GUIDANCE_TABLE_ONLY:-0} == 1 ]]; then
    [[ -f $out/g$w.json && -f $out/g$w.seconds ]] || die "GUIDANCE_TABLE_ONLY: expected $out/g$w.json from an earlier run, found none"
    continue
  fi
  start=$(date +%s)
  echo "== guidance $w: ./apps/sample --ckpt $ckpt --digit all --n $per_digit --guidance $w --steps $steps --seed $seed" >&2
  ./apps/sample --ckpt "$ckpt" --digit all --n "$per_digit" --guidance "$w" --steps "$steps" --seed "$seed" \
    --out "$out/g$w.png" > "$out/g$w.sample.log" 2>&1 || { tail -3 "$out/g$w.sample.log" >&2; die "sample failed at guidance $w"; }
  echo "$(( $(date +%s) - start ))" > "$out/g$w.seconds"
  ./apps/eval "$out/g$w-idx3-ubyte" --labels "$out/g$w-labels-idx1-ubyte" --classifier "$classifier" --data "$data" \
    --n-real "$n_real" > "$out/g$w.json" 2> "$out/g$w.eval.log" || { tail -3 "$out/g$w.eval.log" >&2; die "eval failed at guidance $w"; }
done

{
  echo "# Guidance table: $ckpt"
  echo
  echo "$per_digit samples per digit, \`--steps $steps --seed $seed\`, scored by ./apps/eval against $n_real held-out digits ($(git rev-parse --short HEAD 2>/dev/null || echo unknown))."
  echo
  echo "| guidance w | classified as asked | FID (all $((10 * per_digit))) | p > 0.9 | precision / recall | sampling s |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for w in "${weights[@]}"; do
    j=$(tail -1 "$out/g$w.json")
    echo "| $w | $(pct "$(num asked_classified_as_asked <<< "$j")") | $(f "$(num fid <<< "$j")" 2) | $(pct "$(num fraction_above_0.9 <<< "$j")") | $(f "$(num precision <<< "$j")" 2) / $(f "$(num recall <<< "$j")" 2) | $(cat "$out/g$w.seconds") |"
  done
  echo
  echo "Per digit: fraction classified as asked / FID against that digit's held-out test digits."
  echo
  header="| w |" rule="|---:|"
  for d in 0 1 2 3 4 5 6 7 8 9; do header+=" $d |"; rule+="---:|"; done
  echo "$header"; echo "$rule"
  for w in "${weights[@]}"; do
    row="| $w |"
    j=$(tail -1 "$out/g$w.json")
    for d in 0 1 2 3 4 5 6 7 8 9; do
      cls=$(grep -o "\"$d\":{[^}]*}" <<< "$j" | head -1)
      row+=" $(pct "$(num classified_as_asked <<< "$cls")") / $(f "$(num fid <<< "$cls")" 1) |"
    done
    echo "$row"
  done
  echo
  for w in "${weights[@]}"; do echo "![guidance $w](g$w.png)"; done
} > "$out/table.md.tmp"
mv "$out/table.md.tmp" "$out/table.md"
cat "$out/table.md"
