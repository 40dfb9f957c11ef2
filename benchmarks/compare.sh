#!/usr/bin/env bash
# Runs the same work in kiln and in PyTorch and prints the comparison table. It covers images/s of
# a training step and an inference batch for each keypoint preset at batch 10 and 32, and peak RSS
# of lenet-20m training at batch 10. It also compares the float32 matrix product at 1024^3 with
# OpenBLAS through NumPy, next to the machine's theoretical peak. The two sides take turns for each
# model, batch and mode, kiln first and then PyTorch first, and each turn first records how many
# threads of other processes were runnable. The matrix product takes turns within its row: kiln and
# then NumPy in a first round, NumPy and then kiln in a second. The peak RSS runs go kiln first.
#
# Usage: benchmarks/compare.sh [--threads N] [--warmup N] [--warmup-seconds S] [--repeats N]
#                              [--steps N] [--repeat-seconds S] [--models a,b] [--batches 10,32]
# Defaults: all cores, all presets, batch 10 and 32. N is at most the number of usable CPUs, and
# with fewer threads than CPUs, both sides run on the first N CPUs. Each model warms up for at
# least 2 units and 5 seconds, then runs 5 timed repeats of at least 1 unit and 0.5 seconds each.
# The matrix product times 8 repeats of 10 products per side, 4 in each round. The lists name each
# model or batch once, with no empty items.
# Environment: PYTHON is the interpreter of the PyTorch and NumPy side (default /usr/bin/python3).
# KILN_FMA_LANES sets the float32 FMA lanes per cycle behind the computed peak (default: from the
# CPU flags).
# Exit status: 0 on success, 2 for invalid options or a PYTHON that is not found, 4 where NumPy or
# PyTorch calls a BLAS other than OpenBLAS, and 1 when a run fails or the two sides' models differ.
# The table gives the rows of such a model no ratio and no verdict.
# Build first, from the repository root:
#   JAVA_HOME=$(bin/java-home) mvn -B package -DskipTests -pl benchmarks -am
# Records and the table are kept in benchmarks/target/compare-DATE/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# reject REASON: prints REASON and the Usage lines of the header to stderr, then exits with
# status 2.
reject() {
  echo "compare.sh: $1" >&2
  sed -n '/^# Usage:/,/^# Defaults:/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

usable_cpus="$(nproc)"
threads="$usable_cpus"
work_args=()
# Every option but --help takes a value, so the first case only sorts out the names.
while [ $# -gt 0 ]; do
  option="$1"
  case "$option" in
    -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    --threads | --warmup | --repeats | --steps | --warmup-seconds | --repeat-seconds) ;;
    --models | --batches) ;;
    *) reject "unknown option '$option'" ;;
  esac
  if [ $# -lt 2 ]; then
    reject "option $option needs a value"
  fi
  value="$2"
  shift 2
  if [ "$option" = --threads ]; then
    # Digits with at least one that is not 0, so 1 or more.
    if ! [[ "$value" =~ ^[0-9]*[1-9][0-9]*$ ]]; then
      reject "invalid value '$value' for --threads: expected a whole number, 1 or more"
    fi
    # More threads than CPUs would time the switching between them. The length check keeps numbers
    # past 64 bits from bash's -gt, and dropping leading zeros keeps 08 from reading as octal below.
    digits="$(sed 's/^0*//' <<<"$value")"
    if [ ${#digits} -gt 9 ] || [ "$digits" -gt "$usable_cpus" ]; then
      reject "invalid value '$value' for --threads: expected a whole number from 1 to $usable_cpus, the CPUs that this process may use"
    fi
    threads="$digits"
  else
    # Compare checks the options that both sides read, below, so that there is one set of rules
    # and messages for them.
    work_args+=("$option" "$value")
  fi
done

JAVA_HOME="$("$here/../bin/java-home")"
python="${PYTHON:-/usr/bin/python3}"
classes="$here/target/classes"
if [ ! -f "$classes/dev/kiln/benchmarks/Compare.class" ] || [ ! -f "$here/target/classpath.txt" ]; then
  echo "compare.sh: kiln's benchmarks are not built; run from $(dirname "$here"):" >&2
  echo "  JAVA_HOME=\$(bin/java-home) mvn -B package -DskipTests -pl benchmarks -am" >&2
  exit 1
fi
# The kiln side runs with the heap settings of the kiln launcher, read from its memory_options line.
if ! grep -q '^memory_options=(.*)$' "$here/../kiln"; then
  echo "compare.sh: no memory_options=(...) line found in $here/../kiln" >&2
  exit 1
fi
read -r -a memory_options <<< "$(sed -n 's/^memory_options=(\(.*\))$/\1/p' "$here/../kiln")"
kiln_classpath="$classes:$(cat "$here/target/classpath.txt")"

# first_cpus COUNT: prints the first COUNT CPUs that this process may run on, comma-separated. It
# reads them from the Cpus_allowed_list line of /proc/self/status, which looks like 0-3,8.
first_cpus() {
  local count="$1" range low high cpu chosen=()
  local ranges
  ranges="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
  for range in ${ranges//,/ }; do
    low="${range%-*}"
    high="${range#*-}"
    for ((cpu = low; cpu <= high && ${#chosen[@]} < count; cpu++)); do
      chosen+=("$cpu")
    done
  done
  local IFS=,
  echo "${chosen[*]}"
}

# Both sides run on the same N CPUs. kiln.threads and torch.set_num_threads set only the compute
# threads, but a JVM also runs its JIT compiler and garbage collector on threads of their own. With
# N below the CPU count those would run on the spare CPUs, which PyTorch's side does not use.
pin=()
if [ "$threads" -lt "$usable_cpus" ]; then
  pin=(taskset -c "$(first_cpus "$threads")")
fi
kiln=("${pin[@]}" "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector "${memory_options[@]}"
  "-Dkiln.threads=$threads" -cp "$kiln_classpath" dev.kiln.benchmarks.Compare)

# Compare checks the options that it shares with pytorch_bench.py before anything is written, so a
# rejected option leaves no output folder behind. Its check command prints only the reason and
# exits with status 2. It runs without the vector module, which parsing does not need, so that the
# JVM prints no incubator warning above the reason.
check_status=0
rejection="$("$JAVA_HOME/bin/java" -cp "$kiln_classpath" dev.kiln.benchmarks.Compare check \
  "${work_args[@]}")" || check_status=$?
if [ "$check_status" = 2 ] && [ -n "$rejection" ]; then
  reject "$rejection"
elif [ "$check_status" != 0 ]; then
  exit "$check_status"
fi
# A PYTHON that names no interpreter is most likely a typo, so it stops the run here. Going on would
# time kiln's side alone and exit with status 0, as on a machine without PyTorch.
if [ -n "${PYTHON:-}" ] && ! command -v -- "$PYTHON" >/dev/null; then
  echo "compare.sh: PYTHON=$PYTHON was not found as an executable file or a command on PATH; set PYTHON" \
    "to a Python interpreter that has PyTorch and NumPy, or unset it to use /usr/bin/python3" >&2
  exit 2
fi

out="$here/target/compare-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$here/target"
# mkdir without -p fails on an existing folder, so the cleanup below only removes a folder that
# this run created.
if ! mkdir "$out"; then
  echo "compare.sh: cannot create $out. If it already exists, another run started in the same" >&2
  echo "  second, so wait a second and rerun" >&2
  exit 1
fi
# A run that fails before kiln's timings are recorded removes its folder, which would otherwise
# contain only the machine description and the model list. A later failure keeps the records so far.
timings_recorded=0
remove_incomplete_output() {
  local status=$?
  if [ "$status" -ne 0 ] && [ "$timings_recorded" = 0 ]; then
    rm -rf -- "$out"
    echo "compare.sh: failed before any timings were recorded, so $out was removed" >&2
  fi
}
trap remove_incomplete_output EXIT
machine="$out/machine.txt"

# Theoretical float32 peak = cores x clock x FMA lanes per cycle x 2 (an FMA is 2 FLOP).
# The clock is the nominal "cpu MHz" of /proc/cpuinfo, so boost clocks can exceed it.
# KILN_FMA_LANES overrides the float32 FMA lanes per cycle. Otherwise AMD cores with AVX-512
# (Zen 4) count 16, because they run a 512-bit FMA on two 256-bit units. Other AVX-512 cores count
# 32, for two 512-bit FMA units, which Xeon Gold and Platinum have but not every model does.
# AVX2 cores count 16, for two 256-bit units.
model_name="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
mhz="$(sed -n 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo | head -1)"
cores="$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)"
vendor="$(sed -n 's/^vendor_id[[:space:]]*: //p' /proc/cpuinfo | head -1)"
flags="$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -1)"
if [[ " $flags " == *" avx512f "* ]]; then
  isa="AVX-512"
  if [ "$vendor" = "AuthenticAMD" ]; then lanes=16; else lanes=32; fi
elif [[ " $flags " == *" avx2 "* ]]; then
  isa="AVX2"; lanes=16
else
  isa="SSE"; lanes=8
fi
lanes="${KILN_FMA_LANES:-$lanes}"
peak="$(awk -v c="$cores" -v m="$mhz" -v l="$lanes" 'BEGIN { printf "%.1f", c * m / 1000 * l * 2 }')"
{
  echo "cpu: $model_name ($vendor), $cores cores, $usable_cpus CPUs usable, nominal ${mhz} MHz, $isa"
  echo "float32 peak (computed, not measured): $cores cores x $(awk -v m="$mhz" 'BEGIN{printf "%.3f", m/1000}') GHz x $lanes FMA lanes/cycle x 2 FLOP = $peak GFLOP/s"
  if [ ${#pin[@]} -gt 0 ]; then
    echo "threads on each side: $threads, on CPUs ${pin[2]} of the $usable_cpus usable"
  else
    echo "threads on each side: $threads"
  fi
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "java: $("$JAVA_HOME/bin/java" -version 2>&1 | head -1)"
} | tee "$machine"

have_torch=1
if ! "$python" -c 'import torch' 2>/dev/null; then
  have_torch=0
  echo "compare.sh: PyTorch is not installed for $python, so only kiln's side runs."
  echo "  Install it with: apt-get install python3-torch python3-torchvision libopenblas0-openmp"
fi
have_numpy=1
if ! "$python" -c 'import numpy' 2>/dev/null; then
  have_numpy=0
  echo "compare.sh: NumPy is not installed for $python; install python3-numpy for the OpenBLAS side"
fi
# Debian's NumPy and PyTorch call libblas.so.3, which is the single-threaded reference BLAS until
# OpenBLAS is installed. pytorch_bench.py check then prints the reason and exits with status 4,
# before any timing, because PyTorch's linear layers and NumPy's product would run several times
# slower than on OpenBLAS.
if [ "$have_torch" = 1 ] || [ "$have_numpy" = 1 ]; then
  "$python" "$here/pytorch_bench.py" check --threads "$threads"
fi
python_side() {
  "${pin[@]}" "$python" "$here/pytorch_bench.py" "$@" --threads "$threads"
}

# Both sides describe only the models that --models names, so the table checks only those.
echo "== models"
"${kiln[@]}" describe "${work_args[@]}" > "$out/kiln.tsv"
[ "$have_torch" = 1 ] && python_side describe "${work_args[@]}" > "$out/pytorch.tsv"

# busy_threads: prints the mean number of runnable threads of other processes over about one
# second, from the running count in /proc/loadavg less this shell, which reads it with the read
# builtin: a command such as cut would add itself, and at times the forking shell too. The load
# average would not do here: it decays over a minute, so it still counts the previous turn's own
# threads.
busy_threads() {
  local sample running sum=0
  for sample in 1 2 3 4 5 6 7 8 9 10; do
    read -r _ _ _ running _ </proc/loadavg
    sum=$((sum + ${running%%/*} - 1))
    sleep 0.1
  done
  awk -v sum="$sum" 'BEGIN { printf "%.1f", sum / 10 }'
}

# warn_if_busy LOAD RUN: warns on stderr from 0.5 busy threads on, because other work then
# competes with the timed side for the cores. RUN names the run that follows.
warn_if_busy() {
  if awk -v load="$1" 'BEGIN { exit !(load >= 0.5) }'; then
    echo "compare.sh: warning: other processes kept $1 threads runnable on average before $2" >&2
  fi
}

# run_cell SIDE MODEL BATCH MODE: appends a load record, the busy_threads value, and then the
# timing of one model, batch and mode on SIDE to that side's records, with warn_if_busy.
run_cell() {
  local side="$1" model="$2" batch="$3" mode="$4" load records
  load="$(busy_threads)"
  warn_if_busy "$load" "$side's $mode run of $model at batch $batch"
  records="$out/$side.tsv"
  [ "$side" = kiln ] || records="$out/pytorch.tsv"
  printf 'load\t%s\t%s\t%s\t%s\t%s\n' "$side" "$model" "$batch" "$mode" "$load" >>"$records"
  # The later --models, --batches and --modes win on both sides, so these select one cell.
  local cell_args=("${work_args[@]}" --models "$model" --batches "$batch" --modes "$mode")
  if [ "$side" = kiln ]; then
    "${kiln[@]}" run "${cell_args[@]}" </dev/null | tee -a "$records"
  else
    python_side run "${cell_args[@]}" </dev/null | tee -a "$records"
  fi
}

# The two sides take turns per model, batch and mode, and the side that starts alternates, so that
# a slow drift in the machine's load or clock does not favour one side.
echo "== training and inference, per model, batch and mode"
cells="$("$JAVA_HOME/bin/java" -cp "$kiln_classpath" dev.kiln.benchmarks.Compare cells \
  "${work_args[@]}")"
turn=0
while IFS=$'\t' read -r model batch mode; do
  sides=(kiln)
  if [ "$have_torch" = 1 ] && [ $((turn % 2)) = 0 ]; then
    sides=(kiln pytorch)
  elif [ "$have_torch" = 1 ]; then
    sides=(pytorch kiln)
  fi
  for side in "${sides[@]}"; do
    run_cell "$side" "$model" "$batch" "$mode"
    if [ "$side" = kiln ]; then
      timings_recorded=1
    fi
  done
  turn=$((turn + 1))
done <<<"$cells"

# Peak RSS: a process of its own per side, so that no other model's memory counts.
rss_args=(--models lenet-20m --batches 10 --warmup 2 --repeats 3)
echo "== peak RSS, lenet-20m training at batch 10"
"${kiln[@]}" rss "${rss_args[@]}" | grep '^rss' | tee -a "$out/kiln.tsv"
[ "$have_torch" = 1 ] && python_side rss "${rss_args[@]}" | grep '^rss' | tee -a "$out/pytorch.tsv"

echo "== matrix product 1024^3"
# The two sides take turns as the model rows do, but within the one row: kiln and then NumPy in
# round 1, NumPy and then kiln in round 2. A drift in the machine's clock or load over the row then
# does not favour one side. Each round starts a new process per side, which warms up again. The
# table reads one gemm record per side, so each side's rates of both rounds are joined into one
# record, in round order. The rounds' own output stays in gemm-SIDE-ROUND.tsv.
gemm_args=(--size 1024 --warmup 3 --repeats 4 --steps 10)
# gemm_round SIDE ROUND: times the product on SIDE (kiln or openblas) into gemm-SIDE-ROUND.tsv.
gemm_round() {
  local side="$1" round="$2"
  warn_if_busy "$(busy_threads)" "$side's matrix product run in round $round"
  if [ "$side" = kiln ]; then
    "${kiln[@]}" gemm "${gemm_args[@]}" | grep '^gemm' | tee "$out/gemm-kiln-$round.tsv"
  else
    # OpenBLAS picks its kernel from the CPU unless these are set. Some machines set them for old
    # OpenBLAS builds, so this one command runs without them, and its records name the kernel.
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
      "${pin[@]}" "$python" "$here/pytorch_bench.py" gemm "${gemm_args[@]}" \
      --threads "$threads" | tee "$out/gemm-openblas-$round.tsv"
  fi
}
for round in 1 2; do
  sides=(kiln)
  if [ "$have_numpy" = 1 ] && [ "$round" = 1 ]; then
    sides=(kiln openblas)
  elif [ "$have_numpy" = 1 ]; then
    sides=(openblas kiln)
  fi
  for side in "${sides[@]}"; do
    gemm_round "$side" "$round"
  done
done
# join_gemm_rounds SIDE: prints SIDE's info records of round 1 and one gemm record with the rates
# of both rounds.
join_gemm_rounds() {
  awk -F'\t' -v OFS='\t' '
    $1 == "info" && FILENAME ~ /-1[.]tsv$/ { print }
    $1 == "gemm" { rates = rates separator $4; separator = ","; side = $2; size = $3 }
    END { if (side != "") print "gemm", side, size, rates }' \
    "$out/gemm-$1-1.tsv" "$out/gemm-$1-2.tsv"
}
join_gemm_rounds kiln >>"$out/kiln.tsv"
if [ "$have_numpy" = 1 ]; then
  join_gemm_rounds openblas >>"$out/pytorch.tsv"
fi
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$machine"

echo
files=("$out/kiln.tsv")
[ -f "$out/pytorch.tsv" ] && files+=("$out/pytorch.tsv")
# The table command exits with status 1 after printing the table when the models differ. The
# script keeps that status and exits with it after naming the folder.
table_status=0
{
  cat "$machine"
  echo
  "${kiln[@]}" table "${files[@]}"
} | tee "$out/table.txt" || table_status=$?
echo "records and table: $out"
exit "$table_status"
