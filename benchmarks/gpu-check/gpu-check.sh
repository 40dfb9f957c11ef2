#!/usr/bin/env bash
# Runs kiln's GPU check on a lent GPU machine that has no Java and no network, with the bundle that
# package.sh builds, and writes a Markdown report plus logs.
#
# Usage, from the repository root: benchmarks/gpu-check/gpu-check.sh BUNDLE OUT
#   BUNDLE  the folder package.sh made, dist/gpu-check
#   OUT     the folder for the results: gpu-check-report.md, machine.log, gpu-report.log,
#           core-tests.log, kernels-tests.log, training.log and junit-xml.tar.gz (7 files)
# Environment:
#   GPU_CHECK_BUDGET_S   the time budget of the whole check in seconds (default 420); every stage
#                        runs under `timeout` with what is left of it
#   GPU_CHECK_DEVICE     the device to check and train on (default cuda:0)
#   GPU_CHECK_TRAINING   batch, warm-up steps and timed steps of each training timing (default
#                        "32 5 20")
# Stages: the machine (nvidia-smi), kiln's CUDA availability (dev.kiln.benchmarks.GpuReport), the
# GPU tests of core, the kernels tests, and one training timing per keypoint preset. The report is
# rewritten after each stage, so a run cut short still leaves the stages it finished.
# Exit status: 0 when every stage ran and no test failed, 1 otherwise, 2 for invalid arguments. A
# machine without a usable GPU is a result, not a failure.
set -uo pipefail

if [ $# -ne 2 ] || [ -z "$2" ]; then
  echo "usage: $0 BUNDLE OUT   (for example: $0 dist/gpu-check \"\$OUT\")" >&2
  exit 2
fi
if [ ! -d "$1" ]; then
  echo "gpu-check.sh: the bundle folder $1 does not exist; build it with" \
    "benchmarks/gpu-check/package.sh and carry dist/gpu-check to this machine" >&2
  exit 2
fi
bundle="$(cd "$1" && pwd)"
out="$2"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"

budget="${GPU_CHECK_BUDGET_S:-420}"
device="${GPU_CHECK_DEVICE:-cuda:0}"
read -r train_batch train_warmup train_steps <<<"${GPU_CHECK_TRAINING:-32 5 20}"
# Reject malformed settings before any stage runs: a non-numeric budget would otherwise give every
# stage `timeout 0`, which means no limit at all.
for setting in "GPU_CHECK_BUDGET_S=$budget" "GPU_CHECK_TRAINING batch=${train_batch:-}" \
  "GPU_CHECK_TRAINING warm-up steps=${train_warmup:-}" \
  "GPU_CHECK_TRAINING timed steps=${train_steps:-}"; do
  if ! [[ "${setting#*=}" =~ ^[1-9][0-9]*$ ]]; then
    echo "gpu-check: invalid ${setting%%=*} '${setting#*=}': give a whole number above 0" >&2
    exit 2
  fi
done
if ! [[ "$device" =~ ^cuda(:[0-9]+)?$ ]]; then
  echo "gpu-check: invalid GPU_CHECK_DEVICE '$device': use cuda or cuda:N" >&2
  exit 2
fi
start="$(date +%s)"
# Seconds kept back for the final report (a timed-out stage may run 10 s past its limit before it
# is killed), and the least time worth starting a stage with.
reserve_s=15
min_stage_s=15

work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
report="$out/gpu-check-report.md"
sections="$work/sections"
mkdir -p "$sections" "$work/xml"
overall_ok=true
summary_rows=()
headline=""

# Only the bundle's runtime runs, and settings of a Java installation on the host must not leak in.
unset JAVA_HOME JAVA_TOOL_OPTIONS JDK_JAVA_OPTIONS _JAVA_OPTIONS CLASSPATH
java="$work/runtime/bin/java"
classpath="$(ls "$bundle"/lib/*.jar 2>/dev/null | paste -sd:)"
jvm_options=(--enable-native-access=ALL-UNNAMED -Xss8m --add-modules jdk.incubator.vector
  "-XX:ErrorFile=$work/hs_err_pid%p.log")

source "$here/report-lib.sh"
# A run stopped from outside still leaves the report of the stages it finished.
trap 'render_report; exit 1' TERM INT

# ---- The bundle's runtime, unpacked into the work folder ----
mkdir -p "$work/runtime"
runtime_error=""
if ! unpacked="$(tar -xzf "$bundle/runtime.tar.gz" -C "$work/runtime" 2>&1)"; then
  runtime_error="unpacking $bundle/runtime.tar.gz failed: $unpacked"
elif ! java_version="$("$java" -version 2>&1 | head -1)"; then
  runtime_error="$java failed to start: $java_version"
fi
if [ -n "$runtime_error" ]; then
  add_section 00 "Java runtime" "The bundle's Java runtime is not usable, because $runtime_error." \
    "Rebuild the bundle with benchmarks/gpu-check/package.sh. The check uses no system Java."
  summary_rows+=("| runtime | $(cell "$runtime_error") | 0 |")
  render_report
  exit 1
fi
system_java="$(command -v java || true)"
built="$(sed -n 's/^built: //p' "$bundle/MANIFEST.txt" 2>/dev/null)"
commit="$(sed -n 's/^commit: //p' "$bundle/MANIFEST.txt" 2>/dev/null)"
add_section 00 "Java runtime" "- bundle runtime: \`$java_version\` at \`$java\`" \
  "- system java: ${system_java:-none on PATH}${system_java:+ (not used)}" \
  "- bundle: built ${built:-at an unknown time} from commit ${commit:-unknown}"

# ---- 1. The machine ----
machine_log="$out/machine.log"
machine_stage() {
  echo "== uname -a"
  uname -a
  echo "== cores: $(nproc)"
  command -v free >/dev/null && free -g
  if command -v nvidia-smi >/dev/null; then
    echo "== nvidia-smi"
    nvidia-smi
    echo "== nvidia-smi --query-gpu"
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv
    echo "== nvidia-smi -q"
    nvidia-smi -q
  else
    echo "== nvidia-smi: not found on PATH"
  fi
  echo "== /proc/driver/nvidia/version"
  cat /proc/driver/nvidia/version 2>&1
  echo "== libcuda in the loader cache"
  ldconfig -p 2>/dev/null | grep -i libcuda || echo "(none)"
}
export -f machine_stage
run_stage machine 60 "$machine_log" bash -c machine_stage
gpu_line="no nvidia-smi on PATH"
if command -v nvidia-smi >/dev/null; then
  gpus="$(timeout 30 nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 |
    paste -sd';')"
  driver="$(timeout 30 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>&1 |
    head -1)"
  cuda="$(sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' "$machine_log" | head -1)"
  gpu_line="$gpus, driver $driver, CUDA ${cuda:-unknown}"
fi
add_section 10 "Machine" "- $(uname -srm), $(nproc) cores" "- GPU: $gpu_line" \
  "- stage: $stage_result; full output in machine.log"
summary_rows+=("| machine | $(cell "$gpu_line") | $stage_seconds |")
render_report

# ---- 2. kiln's CUDA availability ----
gpu_report_log="$out/gpu-report.log"
run_stage availability 60 "$gpu_report_log" \
  "$java" "${jvm_options[@]}" -cp "$classpath" dev.kiln.benchmarks.GpuReport "$device"
usable="$(sed -n 's/^usable=//p' "$gpu_report_log" | head -1)"
message="$(sed -n 's/^message=//p' "$gpu_report_log" | head -1 | sed 's/\.$//')"
presets="$(sed -n 's/^presets=//p' "$gpu_report_log" | head -1)"
if [ "$usable" = true ]; then
  availability="usable: $message"
  headline="kiln can use $device: $message."
elif [ "$usable" = false ]; then
  availability="not usable: $message"
  headline="No GPU was usable. $message."
else
  availability="unknown: GpuReport did not finish ($stage_result); see gpu-report.log"
  headline="kiln's CUDA check did not finish ($stage_result), so whether a GPU was usable is unknown."
  overall_ok=false
fi
add_section 20 "CUDA availability ($device)" "$(cell "$availability")" "" \
  "- fatbin in the kernels jar: $(sed -n 's/^fatbin=//p' "$gpu_report_log")" \
  "- emulation library: $(sed -n 's/^emulation.library=//p' "$gpu_report_log")"
summary_rows+=("| availability | $(cell "$availability") | $stage_seconds |")
render_report

# ---- 3 and 4. The test suites ----
# run_suite NAME SECTION CAP TEST_CLASSES [console launcher options...]
run_suite() {
  local name="$1" section="$2" cap="$3" classes="$bundle/test-classes/$4"
  shift 4
  local log="$out/$name-tests.log"
  run_stage "$name tests" "$cap" "$log" \
    "$java" "${jvm_options[@]}" -jar "$bundle/junit/junit-platform-console-standalone.jar" \
    execute --disable-banner --disable-ansi-colors --details=testfeed \
    --include-engine=junit-jupiter \
    --class-path "$classpath:$classes" --scan-class-path "$classes" \
    --reports-dir "$work/xml/$name" "$@"
  append_crash_logs "$log"
  summarize_suite "$name" "$section" "$log"
  (cd "$work/xml" && tar -czf "$out/junit-xml.tar.gz" .)
  render_report
}
declare -A suite_skipped=()
declare -A suite_about=(
  [core]="The tests of package dev.kiln.core.backend.cuda with its subpackages, and every *GpuTest
class in core."
  [kernels]="Every kernel of the kernels module, launched under CPU emulation (libkiln_emu.so) and
compared with a Java reference. These tests do not use the GPU yet."
)
# Core: every test of the CUDA package and its subpackages (the GPU tests, and CPU tests such as the
# allocator's) and every *GpuTest class anywhere in core. The GPU tests skip with the availability reason where no GPU is
# usable.
run_suite core 30 150 core --include-classname '^(dev\.kiln\.core\.backend\.cuda\..*|.*GpuTest)$'
# Kernels: every kernel launched under CPU emulation and compared with a Java reference.
run_suite kernels 40 180 kernels
if [ -n "${suite_skipped[core]:-}" ]; then
  headline="$headline The core suite skipped ${suite_skipped[core]} tests."
fi
if [ -n "${suite_skipped[kernels]:-}" ]; then
  headline="$headline The kernels tests ran under CPU emulation, as they do on every machine for now."
fi
render_report

# ---- 5. Training step timings ----
training_log="$out/training.log"
: >"$training_log"
training_rows=()
training_timed=0
training_rejected=0
training_seconds=0
for preset in ${presets:-default naimishnet lenet-20m lenet-48m}; do
  # TrainingStepTimer rejects devices other than cpu until tensors run on the GPU; once it accepts
  # cuda, its result line contains device=cuda:N and these rows become cuda timings.
  run_log="$work/training-$preset.log"
  run_stage "training $preset" 90 "$run_log" \
    "$java" "${jvm_options[@]}" -cp "$classpath" dev.kiln.benchmarks.TrainingStepTimer \
    --device "$device" "$preset" "$train_batch" "$train_warmup" "$train_steps"
  append_crash_logs "$run_log"
  cat "$run_log" >>"$training_log"
  summarize_training "$preset" "$run_log"
  training_rows+=("$training_row")
  training_seconds=$((training_seconds + stage_seconds))
  add_section 50 "Training step timings on $device" \
    "Batch $train_batch, $train_warmup warm-up steps, median of $train_steps timed steps, from" \
    "dev.kiln.benchmarks.TrainingStepTimer. Full output in training.log." "" \
    "| preset | result |" "|---|---|" "${training_rows[@]}"
  render_report
done
training_count="${#training_rows[@]}"
if [ "$training_timed" -eq "$training_count" ]; then
  training_summary="$training_timed presets timed on $device"
elif [ "$training_rejected" -eq "$training_count" ]; then
  training_summary="training on $device is not available yet: the timer rejected every preset"
else
  training_summary="$training_timed of $training_count presets timed on $device; see the table"
fi
summary_rows+=("| training | $(cell "$training_summary") | $training_seconds |")
render_report
rm -rf "$work"
echo "gpu-check: wrote $report after $(($(date +%s) - start)) s"
cat "$report"
if [ "$overall_ok" = true ]; then
  exit 0
fi
exit 1
