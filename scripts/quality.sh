#!/usr/bin/env bash
# The default recipe end to end (`make quality`; docs/recipe.md): train with ./apps/train_mnist's
# defaults, sample N digits with the default sampler, score them with ./apps/eval against N held-out
# digits next to the real-vs-real reference (./apps/eval --calibrate), compute the bound with
# ./apps/nll, and write report.md (the targets and the measured values, the grid, the curves) in a
# NEW run folder. The classifier is made first when its file is absent. Run from the repository root.
#
# Settings (environment variables; the defaults are the recipe, the others are for tests and screening):
#   QUALITY_OUT          run folder (default runs/quality-YYYYmmdd-HHMMSS; it must not exist yet
#                        unless QUALITY_OVERWRITE=1)
#   QUALITY_DATA         MNIST folder (default data)
#   QUALITY_CLASSIFIER   classifier weights (default runs/classifier.safetensors; made when absent)
#   QUALITY_N            samples, held-out digits of the reference and the calibration size (default 1000)
#   QUALITY_NLL_N        test digits of ./apps/nll (default 256)
#   QUALITY_TRAIN_FLAGS  extra flags of ./apps/train_mnist (default none: the defaults are the recipe)
#   QUALITY_CLASSIFIER_FLAGS  extra flags of ./apps/classifier (default none)
#   QUALITY_COMPARE      an earlier run's nll-terms.csv: also plot both runs' terms (./apps/nll --compare)
#   QUALITY_DRY_RUN=1    print the commands and exit without running them
set -euo pipefail

out=${QUALITY_OUT:-runs/quality-$(date +%Y%m%d-%H%M%S)}
data=${QUALITY_DATA:-data}
classifier=${QUALITY_CLASSIFIER:-runs/classifier.safetensors}
n=${QUALITY_N:-1000}
nll_n=${QUALITY_NLL_N:-256}
train_flags=${QUALITY_TRAIN_FLAGS:-}
classifier_flags=${QUALITY_CLASSIFIER_FLAGS:-}
compare=${QUALITY_COMPARE:-}
dry=${QUALITY_DRY_RUN:-0}

die() { echo "quality.sh: $*" >&2; exit 2; }
[[ $n =~ ^[0-9]+$ ]] && (( n >= 4 )) || die "QUALITY_N: expected an integer >= 4, got '$n'"
[[ $nll_n =~ ^[0-9]+$ ]] && (( nll_n >= 2 )) || die "QUALITY_NLL_N: expected an integer >= 2, got '$nll_n'"
[[ -z $compare || -f $compare ]] || die "QUALITY_COMPARE: expected an nll-terms.csv file, got '$compare' (no such file)"
for app in train_mnist sample eval nll classifier; do
  [[ -x ./apps/$app || $dry == 1 ]] || die "expected ./apps/$app (run make first, from the repository root), found none"
done
if [[ -e $out && ${QUALITY_OVERWRITE:-0} != 1 ]]; then
  die "expected a new run folder, found an existing '$out' (set QUALITY_OUT to another folder or QUALITY_OVERWRITE=1)"
fi

# shellcheck disable=SC2086  # the *_FLAGS are word lists on purpose
make_classifier=(./apps/classifier --data "$data" --out "$classifier" $classifier_flags)
train=(./apps/train_mnist --data "$data" --out "$out/train" --classifier "$classifier" $train_flags)
sample=(./apps/sample --ckpt "$out/train/last.safetensors" --n "$n" --out "$out/samples.png")
evaluate=(./apps/eval "$out/samples-idx3-ubyte" --classifier "$classifier" --data "$data" --n-real "$n")
calibrate=(./apps/eval --calibrate --sizes "$n" --classifier "$classifier" --data "$data")
nll=(./apps/nll --ckpt "$out/train/last.safetensors" --n "$nll_n" --out "$out" --data "$data")
[[ -n $compare ]] && nll+=(--compare "$compare")

if [[ $dry == 1 ]]; then
  echo "run folder: $out"
  [[ -f $classifier ]] || echo "${make_classifier[*]}"
  echo "${train[*]}"
  echo "${sample[*]}"
  echo "${evaluate[*]}"
  echo "${calibrate[*]}"
  echo "${nll[*]}"
  exit 0
fi

mkdir -p "$(dirname "$out")"
if [[ ${QUALITY_OVERWRITE:-0} == 1 ]]; then mkdir -p "$out"; else mkdir "$out" || die "expected a new run folder, could not create '$out'"; fi
log() { echo "== $*" >&2; }
now() { date +%s.%N; }
minutes() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 60 }'; }

if [[ ! -f $classifier ]]; then
  log "${make_classifier[*]}"
  mkdir -p "$(dirname "$classifier")"
  "${make_classifier[@]}" > "$out/classifier.log" 2>&1 || { tail -5 "$out/classifier.log" >&2; die "./apps/classifier failed (log: $out/classifier.log)"; }
fi

run_step() {  # run_step NAME LOGFILE CMD...: runs CMD with stdout to LOGFILE.out and stderr to LOGFILE.err
  local name=$1 logfile=$2
  shift 2
  log "$*"
  "$@" > "$logfile.out" 2> "$logfile.err" || { tail -5 "$logfile.err" >&2; die "$name failed (logs: $logfile.out, $logfile.err)"; }
}

t0=$(now)
run_step train_mnist "$out/train" "${train[@]}"
t1=$(now)
run_step sample "$out/sample" "${sample[@]}"
t2=$(now)
# A class-conditional run's samples ask every digit equally (./apps/sample writes the asked labels):
# eval also reports how many are classified as asked.
asked_labels=$out/samples-labels-idx1-ubyte
if [[ -f $asked_labels ]]; then evaluate+=(--labels "$asked_labels"); fi
run_step eval "$out/eval" "${evaluate[@]}"
run_step "eval --calibrate" "$out/calibrate" "${calibrate[@]}"
t3=$(now)
run_step nll "$out/nll" "${nll[@]}"
t4=$(now)

# ---- the numbers (flat JSON lines written by the programs) ----
json_num() {  # json_num KEY FILE: the number after "KEY": on the last line of FILE holding it
  grep -o "\"$1\":[-0-9.eE+naif]*" "$2" | tail -1 | sed 's/.*://'
}
samples_json=$out/eval.out
real_json=$out/calibrate.json
grep -m1 '^{' "$out/calibrate.err" > "$real_json" || true  # the first calibration row: other held-out test digits
grep -q '"fid"' "$real_json" || die "eval --calibrate: expected a JSON line for the held-out digits on stderr, found '$(head -c 200 "$real_json")'"
fid=$(json_num fid "$samples_json"); real_fid=$(json_num fid "$real_json")
conf=$(json_num fraction_above_0.9 "$samples_json"); real_conf=$(json_num fraction_above_0.9 "$real_json")
prec=$(json_num precision "$samples_json"); real_prec=$(json_num precision "$real_json")
rec=$(json_num recall "$samples_json"); real_rec=$(json_num recall "$real_json")
hist=$(grep -o '"class_histogram":\[[^]]*\]' "$samples_json" | sed 's/.*\[//; s/\]//')
hist_min=$(tr ',' '\n' <<< "$hist" | sort -g | head -1); hist_max=$(tr ',' '\n' <<< "$hist" | sort -g | tail -1)
nll_json=$(tail -1 "$out/nll.out")
bpd=$(json_num bits_per_dim <(echo "$nll_json")); bpd_se=$(json_num stderr <(echo "$nll_json"))
l_t=$(json_num L_T <(echo "$nll_json")); l_sum=$(json_num L_sum <(echo "$nll_json")); l_0=$(json_num L_0 <(echo "$nll_json"))
for v in fid real_fid conf real_conf prec real_prec rec real_rec hist_min hist_max bpd l_0; do
  [[ -n ${!v} ]] || die "expected a value for $v in the programs' JSON output (logs in $out), found none"
done
train_min=$(minutes "$t0" "$t1"); sample_min=$(minutes "$t1" "$t2")
sample_per_1000=$(awk -v a="$t1" -v b="$t2" -v n="$n" 'BEGIN { print (b - a) / 60 * 1000 / n }'); eval_min=$(minutes "$t2" "$t3"); nll_min=$(minutes "$t3" "$t4")

asked_line=""
if [[ -f $asked_labels ]]; then
  asked=$(json_num asked_classified_as_asked "$samples_json")
  [[ -n $asked ]] || die "expected asked_classified_as_asked in eval's JSON output ($out/eval.out), found none"
  asked_line="Class-conditional model: the samples ask every digit equally; $(awk -v v="$asked" 'BEGIN { printf "%.1f %%", 100 * v }') are classified as the digit asked (./apps/eval --labels); its bound is -log p(x | y) with the true labels."$'\n\n'
fi
verdict() { awk "BEGIN { print ($1) ? \"yes\" : \"**no**\" }"; }
f() { awk "BEGIN { printf \"%.${2:-3}f\", ($1) }"; }  # f EXPRESSION [DIGITS]
pct() { awk -v v="$1" 'BEGIN { printf "%.1f %%", 100 * v }'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -xE 'avx|avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|f16c' | tr '\n' ' ' | sed 's/ $//' || true)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo " (with uncommitted changes)" || true)

plots=""
for p in train/loss.png train/bpd.png train/fid.png nll-terms.png nll-compare.png; do
  [[ -f $out/$p ]] && plots+="![$p]($p)"$'\n'
done

cat > "$out/report.md.tmp" <<EOF
# Quality report: the default recipe

Run folder \`$out\`, commit $commit$dirty, $(date -u '+%Y-%m-%d %H:%M UTC').
Host: ${cpu:-unknown CPU}, $(nproc) cores, CPU flags: ${flags:-unknown}.
Settings: N = $n samples against $n held-out digits, ./apps/nll on $nll_n test digits${train_flags:+, train_mnist flags: \`$train_flags\`}.

| target | goal | measured | met |
|---|---|---|---|
| training time (\`./apps/train_mnist\`) | <= 60 min | $train_min min | $(verdict "$train_min <= 60") |
| sampling $n digits (default sampler) | <= 5 min for 1,000 | $sample_min min ($(f "$sample_per_1000" 1) min per 1,000) | $(verdict "$sample_per_1000 <= 5") |
| classifier-FID at N = $n | <= 1.5 x real held-out ($(f "$real_fid" 2)) = $(f "1.5 * $real_fid" 2) | $(f "$fid" 2) ($(f "$fid / $real_fid" 2) x real) | $(verdict "$fid <= 1.5 * $real_fid") |
| samples with p > 0.9 | >= 95 % (real: $(pct "$real_conf")) | $(pct "$conf") | $(verdict "$conf >= 0.95") |
| every class | 7 % .. 13 % | $(pct "$hist_min") .. $(pct "$hist_max") | $(verdict "$hist_min >= 0.07 && $hist_max <= 0.13") |
| precision (k = 3) | within 0.05 of real ($(f "$real_prec")) | $(f "$prec") | $(verdict "($prec - $real_prec) <= 0.05 && ($real_prec - $prec) <= 0.05") |
| recall (k = 3) | within 0.05 of real ($(f "$real_rec")) | $(f "$rec") | $(verdict "($rec - $real_rec) <= 0.05 && ($real_rec - $rec) <= 0.05") |
| bound on $nll_n test digits | <= 1.3 bits/dim (stretch 1.1) | $(f "$bpd" 4) +- $(f "$bpd_se" 4) | $(verdict "$bpd <= 1.3") |

${asked_line}Bound terms (bits/dim): L_T $(f "$l_t" 6), sum of L_{t-1} $(f "$l_sum" 4), L_0 $(f "$l_0" 4); per t in \`nll-terms.csv\`.
Class histogram of the samples: $hist.
Evaluation took $eval_min min, the bound $nll_min min.

Commands:

\`\`\`
${train[*]}
${sample[*]}
${evaluate[*]}
${calibrate[*]}
${nll[*]}
\`\`\`

## Samples ($n, the default sampler)

![samples](samples.png)

## Curves

$plots
EOF
mv "$out/report.md.tmp" "$out/report.md"
echo "report: $out/report.md"
