#!/usr/bin/env bash
# Runs kiln's GPU check on a lent GPU machine that has no Java and no network, with the bundle that
# package.sh builds, and writes a Markdown report plus logs.
#
# Usage, from the repository root: benchmarks/gpu-check/gpu-check.sh BUNDLE OUT
#   BUNDLE  the folder package.sh made, dist/gpu-check
#   OUT     the folder for the results: gpu-check-report.md, machine.log, gpu-report.log,
#           core-tests.log, kernels-tests.log, training.log, comparisons.log and junit-xml.tar.gz
#           (8 files, the most that the device tool returns)
# Environment:
#   GPU_CHECK_BUDGET_S   the time budget of the whole check in seconds (default 420); every stage
#                        runs under `timeout` with what is left of it
#   GPU_CHECK_DEVICE     the device to check and train on (default cuda:0)
#   GPU_CHECK_EVALUATE_DEVICE  the device of the train stage's `kiln evaluate` comparison with the
#                        CPU (default GPU_CHECK_DEVICE). emulated runs that comparison without a
#                        GPU, as a dry run, with a limit of 480 s per evaluation instead of 60 s,
#                        so raise GPU_CHECK_BUDGET_S with it
#   GPU_CHECK_TRAINING   batch, warm-up steps and timed steps of each training timing (default
#                        "32 5 20"). lenet-20m is also timed at batch 64, first, with the same
#                        step counts. Each warm-up, kiln's and PyTorch's alike, also lasts at
#                        least warmup_seconds (3 s), because kiln's JIT compiler needs the time
# Stages: the machine (nvidia-smi), kiln's CUDA availability (dev.kiln.benchmarks.GpuReport), the
# GPU and device tests of core, and kiln's GEMM kernel against cuBLAS at 4096. Then training step
# timings of lenet-20m at batch 64 (with the vendor libraries and with kiln's own kernels) and of
# every keypoint preset, then `kiln train` for 3 epochs on synthetic faces on the GPU and, as a
# control, on the CPU, with `kiln evaluate` of the control's checkpoint on the GPU and on the CPU,
# and PyTorch's training steps on the same GPU where PyTorch can use it.
# Last come forward plus backward of each conv, pooling, dropout and linear layer of lenet-20m with
# and without the vendor libraries, and the kernels tests. The report opens with the two performance
# targets, each met, not met or unmeasured with the reason, and the training target can also be a
# tie where the two sides' ranges of step times overlap. The report is rewritten after each
# stage, so a run cut short still leaves the stages it finished.
# Exit status: 0 when every stage ran and no test failed, 1 otherwise, 2 for invalid arguments. A
# machine without a usable GPU is a result, not a failure, so 0 does not mean that the GPU was
# measured: the last line of the output states whether any GPU figure was ("gpu-check: GPU figures
# measured on cuda:0: ..." or "gpu-check: no GPU figure was measured, ..." with the reason).
set -uo pipefail

if [ $# -ne 2 ] || [ -z "$2" ]; then
  echo "usage: $0 BUNDLE OUT   (for example: $0 dist/gpu-check \"\$OUT\")" >&2
  exit 2
fi
if [ ! -d "$1" ]; then
  echo "gpu-check: the bundle folder $1 does not exist; build it with" \
    "benchmarks/gpu-check/package.sh and carry dist/gpu-check to this machine" >&2
  exit 2
fi
bundle="$(cd "$1" && pwd)"
out="$2"
here="$(cd "$(dirname "$0")" && pwd)"

# kiln reads device names without regard to case or surrounding blanks, and so does this script.
normalize_device() {
  local name="$1"
  name="${name#"${name%%[![:space:]]*}"}"
  name="${name%"${name##*[![:space:]]}"}"
  printf '%s' "${name,,}"
}
budget="${GPU_CHECK_BUDGET_S:-420}"
device="$(normalize_device "${GPU_CHECK_DEVICE:-cuda:0}")"
training="${GPU_CHECK_TRAINING:-32 5 20}"
# Reject malformed settings before any stage runs: a non-numeric budget would otherwise give every
# stage `timeout 0`, which means no limit at all.
if ! [[ "$budget" =~ ^[1-9][0-9]*$ ]]; then
  echo "gpu-check: invalid GPU_CHECK_BUDGET_S '$budget': give a whole number of seconds above 0" >&2
  exit 2
fi
number='[1-9][0-9]*'
if ! [[ "$training" =~ ^[[:space:]]*$number[[:space:]]+$number[[:space:]]+$number[[:space:]]*$ ]]; then
  echo "gpu-check: invalid GPU_CHECK_TRAINING '$training': give three whole numbers above 0," \
    "separated by spaces, for the batch, the warm-up steps and the timed steps, such as '32 5 20'" >&2
  exit 2
fi
read -r train_batch train_warmup train_steps <<<"$training"
# The minimum warm-up time of each training timing, on both sides: at least train_warmup steps and
# at least this many seconds. kiln's JIT compiler needs about 2 s (benchmarks/README.md), and 3 s
# leaves a margin above that.
warmup_seconds=3
if ! [[ "$device" =~ ^cuda(:[0-9]+)?$ ]]; then
  echo "gpu-check: invalid GPU_CHECK_DEVICE '${GPU_CHECK_DEVICE:-}': use cuda or cuda:N" >&2
  exit 2
fi
evaluate_device="$(normalize_device "${GPU_CHECK_EVALUATE_DEVICE:-$device}")"
if ! [[ "$evaluate_device" =~ ^(cuda(:[0-9]+)?|emulated)$ ]]; then
  echo "gpu-check: invalid GPU_CHECK_EVALUATE_DEVICE '${GPU_CHECK_EVALUATE_DEVICE:-}': use cuda," \
    "cuda:N or emulated" >&2
  exit 2
fi
# kiln names a device by its index, cuda:0 for cuda, in its messages and output files.
[ "$device" = cuda ] && device=cuda:0
[ "$evaluate_device" = cuda ] && evaluate_device=cuda:0
# The limit of each `kiln evaluate` run of the train stage. On this project's 2-core machine, on
# 2026-12-05, evaluating the 32 synthetic test faces took 3 to 7 s on the CPU, from JVM start to
# exit. emulated took 206 s and 258 s there, because it runs one OS thread per CUDA thread. A GPU
# run also starts the driver and loads cuBLAS and cuDNN, whose libraries are large, so it gets twice
# the CPU's margin. NOTE: that start has not been timed on a GPU machine.
evaluate_cap_s=60
[ "$evaluate_device" = emulated ] && evaluate_cap_s=480

# The results folder is created only once the settings are valid. The stages append to their logs,
# so a reused folder first loses the files of an earlier run, and only those.
if ! mkdir -p "$out"; then
  echo "gpu-check: cannot create the output folder $out" >&2
  exit 2
fi
out="$(cd "$out" && pwd)"
# The work folder comes first, so that a run that cannot start leaves an earlier run's results.
if ! work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"; then
  echo "gpu-check: cannot create a work folder in ${TMPDIR:-/tmp}: set TMPDIR to a writable folder" >&2
  exit 2
fi
rm -f "$out/gpu-check-report.md" "$out/machine.log" "$out/gpu-report.log" "$out/core-tests.log" \
  "$out/core-kiln-tests.log" "$out/kernels-tests.log" "$out/training.log" "$out/comparisons.log" \
  "$out/junit-xml.tar.gz"
start="$(date +%s)"
# Seconds kept back for the final report (a timed-out stage may run 10 s past its limit before it
# is killed), and the least time worth starting a stage with.
reserve_s=15
min_stage_s=15

report="$out/gpu-check-report.md"
sections="$work/sections"
mkdir -p "$sections" "$work/xml"
overall_ok=true
summary_rows=()
headline=""
unusable_message=""

# Only the bundle's runtime runs, and settings of a Java installation on the host must not leak in.
unset JAVA_HOME JAVA_TOOL_OPTIONS JDK_JAVA_OPTIONS _JAVA_OPTIONS CLASSPATH
java="$work/runtime/bin/java"
classpath="$(ls "$bundle"/lib/*.jar 2>/dev/null | paste -sd:)"
jvm_options=(--enable-native-access=ALL-UNNAMED -Xss8m --add-modules jdk.incubator.vector
  "-XX:ErrorFile=$work/hs_err_pid%p.log")
# The heap settings of the kiln launcher's memory_options line, so that the timers and the runs use
# the garbage collector and heap of a user's run, not the JVM's default G1, and headless AWT for
# the JPEG and PNG code. GpuCheckScriptTest checks that they match the launcher's line.
kiln_jvm_options=(-XX:+UseZGC -XX:SoftMaxHeapSize=768m -Djava.awt.headless=true)

source "$here/report-lib.sh"
source "$here/evaluate-lib.sh"
# The targets stay unmeasured, with the reason, until a stage measures them.
gemm_target="unmeasured: the GEMM stage did not run"
training_target="unmeasured: the training and PyTorch stages did not run"
render_targets
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
# first_lines TEXT: prints the first two lines of TEXT on one line, or "no output".
first_lines() {
  local lines
  lines="$(printf '%s\n' "$1" | head -2 | paste -sd' ')"
  printf '%s' "${lines:-no output}"
}
# Every JVM gets a maximum heap of 16 GB, because the default is a quarter of the memory that the
# machine reports at start, which can be far below its real size where memory is added as it is
# used. A default under 768 MB would also stop every JVM that has the launcher's SoftMaxHeapSize.
# The timers and runs use ZGC, as the launcher does. ZGC backs the heap with a memory file from
# memfd_create. NOTE: whether a sandboxed kernel such as gVisor offers all that ZGC needs is
# unchecked. So the runtime is started once per choice below, best first, and the first that starts
# is used: a `ulimit -v` can rule out the 16 GB heap, and a sandbox ZGC. The report names each
# choice that failed, with the JVM's first two lines of output.
jvm_choices=("ZGC with the launcher's soft limit and a 16 GB maximum heap"
  "ZGC with no soft limit and the default maximum heap"
  "G1 with a 16 GB maximum heap"
  "G1 with the default maximum heap")
# Each choice's heap options, then the timers' and runs' options, separated by "|".
jvm_choice_options=("-Xmx16g|${kiln_jvm_options[*]}"
  "|-XX:+UseZGC -Djava.awt.headless=true"
  "-Xmx16g|-Djava.awt.headless=true"
  "|-Djava.awt.headless=true")
jvm_line="- JVM: no choice of collector and heap started, so the stages below will fail too"
jvm_rejected=()
for i in "${!jvm_choices[@]}"; do
  read -r -a heap_options <<< "${jvm_choice_options[$i]%%|*}"
  read -r -a run_options <<< "${jvm_choice_options[$i]#*|}"
  if probe_output="$(timeout 60 "$java" "${jvm_options[@]}" "${heap_options[@]}" \
      "${run_options[@]}" -version 2>&1)"; then
    jvm_options+=("${heap_options[@]}")
    kiln_jvm_options=("${run_options[@]}")
    jvm_line="- JVM: ${jvm_choices[$i]}"
    if ((i > 0)); then
      echo "gpu-check: the JVMs use ${jvm_choices[$i]}, because the first choice failed" >&2
    fi
    break
  fi
  jvm_rejected+=("- not used: ${jvm_choices[$i]}, because \`$(first_lines "$probe_output")\`")
done
add_section 00 "Java runtime" "- bundle runtime: \`$java_version\` at \`$java\`" \
  "- system java: ${system_java:-none on PATH}${system_java:+ (not used)}" \
  "- bundle: built ${built:-at an unknown time} from commit ${commit:-unknown}" \
  "$jvm_line" "${jvm_rejected[@]}"

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
  # The PATH of a user other than root may lack /sbin, where ldconfig is.
  ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
  if [ -x "$ldconfig" ]; then
    "$ldconfig" -p | grep -F 'libcuda.so' || echo "(none)"
  else
    echo "(not read: ldconfig is neither on the PATH nor in /sbin)"
  fi
  # kiln train draws text into curves.png, which needs at least one font.
  echo "== fonts that fontconfig finds"
  if command -v fc-list >/dev/null; then
    fc-list | wc -l
  else
    echo "fc-list not found; /usr/share/fonts: $(ls /usr/share/fonts 2>&1 | paste -sd' ')"
  fi
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
  availability="$message"
  # The headline gives kiln's reason and its advice on the driver.
  headline="${message%.}."
  # From here on the report states this message once, in the headline (see refer_to_reason).
  unusable_message="$message"
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

# ---- 3. The GPU tests of core ----
# run_suite NAME SECTION CAP TEST_CLASSES [console launcher options...]
run_suite() {
  local name="$1" section="$2" cap="$3" classes="$bundle/test-classes/$4"
  shift 4
  local log="$out/$name-tests.log"
  run_stage "$name tests" "$cap" "$log" \
    "$java" "${jvm_options[@]}" "${suite_jvm_extra[@]}" \
    -jar "$bundle/junit/junit-platform-console-standalone.jar" \
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
declare -A suite_log=([core-kiln]="core-tests.log")
# Extra JVM options of the next run_suite call.
suite_jvm_extra=()
declare -A suite_about=(
  [core]="The tests of packages dev.kiln.core.backend.cuda and dev.kiln.core.backend.device with
their subpackages, DeviceTensorTest, DeviceOpsTest (every op, forward and backward, against the CPU
in float64) and every *GpuTest class in core. The device tests run on emulated and on cuda:0."
  [kernels]="Every kernel of the kernels module, launched under CPU emulation (libkiln_emu.so) and
compared with a Java reference. These tests do not use the GPU yet."
)
# Core: every test of the CUDA package and its subpackages (the GPU tests, and CPU tests such as the
# allocator's), the device test suite, which runs every kernel family on emulated and on cuda:0, the
# tensor tests on devices, and every *GpuTest class anywhere in core. The GPU tests and the device
# tests' cuda:0 cases skip with the availability reason where no GPU is usable.
run_suite core 30 150 core --include-classname \
  '^(dev\.kiln\.core\.backend\.(cuda|device)\..*|dev\.kiln\.core\.tensor\.DeviceTensorTest|dev\.kiln\.core\.ops\.DeviceOpsTest|.*GpuTest)$'

# The op suite once more on kiln's own kernels only. One process uses the kernels it chose at
# start-up, so where cuBLAS and cuDNN loaded, the run above checked their routes and this one
# checks kiln's. Its output goes to the end of core-tests.log, because the device tool returns at
# most 8 files.
suite_about[core-kiln]="DeviceOpsTest again, with -Dkiln.cuda.vendor=kiln: every op on kiln's own
kernels, where the core run used cuBLAS and cuDNN wherever they loaded."
if [ "$usable" = true ]; then
  suite_jvm_extra=(-Dkiln.cuda.vendor=kiln)
  run_suite core-kiln 31 60 core --include-classname '^dev\.kiln\.core\.ops\.DeviceOpsTest$'
  suite_jvm_extra=()
  cat "$out/core-kiln-tests.log" >>"$out/core-tests.log"
  rm -f "$out/core-kiln-tests.log"
else
  # Without a usable GPU the device tests run on emulated alone, where the vendor setting changes
  # nothing, so this run would repeat the core run's tests and read as a pass of kiln's kernels on
  # the GPU.
  core_kiln_skipped="not run: no GPU is usable, and on emulated alone it would repeat the core run"
  add_section 31 "core-kiln tests" "${suite_about[core-kiln]}" "" "$(cell "$core_kiln_skipped")."
  summary_rows+=("| core-kiln tests | $(cell "$core_kiln_skipped") | 0 |")
  render_report
fi

# ---- 4. kiln's GEMM kernel against cuBLAS ----
# GEMM, layer and PyTorch output share comparisons.log, because the device tool returns at most 8
# files.
comparisons_log="$out/comparisons.log"
: >"$comparisons_log"
gemm_log="$work/gemm.log"
run_stage "gemm 4096" 60 "$gemm_log" \
  "$java" "${jvm_options[@]}" "${kiln_jvm_options[@]}" -cp "$classpath" \
  dev.kiln.benchmarks.DeviceGemmTimer "$device" 4096 10
append_crash_logs "$gemm_log"
cat "$gemm_log" >>"$comparisons_log"
gemm_ratio="$(key_value "$gemm_log" kiln_over_cublas)"
gemm_lines=()
if [ "$stage_rc" -eq 0 ] && [[ "$gemm_ratio" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
  gemm_text="kiln's 128 x 128 kernel ran at ${gemm_ratio}× cuBLAS's rate"
  gemm_text="$gemm_text ($(key_value "$gemm_log" kiln_tiled128_gflops) against"
  gemm_text="$gemm_text $(key_value "$gemm_log" cublas_gflops) GFLOP/s)"
  gemm_target="$(verdict "$gemm_ratio" ">=" 0.5): $gemm_text"
  gemm_lines+=("| kernel | median ms | GFLOP/s | over cuBLAS |" "|---|---|---|---|"
    "| kiln, 128 x 128 tiles | $(key_value "$gemm_log" kiln_tiled128_median_ms) | $(key_value "$gemm_log" kiln_tiled128_gflops) | $gemm_ratio |"
    "| kiln, 64 x 64 tiles | $(key_value "$gemm_log" kiln_tiled_median_ms) | $(key_value "$gemm_log" kiln_tiled_gflops) | $(key_value "$gemm_log" kiln_tiled_over_cublas) |"
    "| cuBLAS | $(key_value "$gemm_log" cublas_median_ms) | $(key_value "$gemm_log" cublas_gflops) | 1 |"
    "" "Largest difference between the 128 x 128 kernel's product and cuBLAS's:"
    "$(key_value "$gemm_log" max_abs_difference).")
elif [ "$stage_rc" -eq 0 ]; then
  gemm_text="cuBLAS is not in use: $(key_value "$gemm_log" cublas_unavailable)"
  gemm_text="$gemm_text; kiln's 128 x 128 kernel ran at $(key_value "$gemm_log" kiln_tiled128_gflops) GFLOP/s"
  gemm_target="unmeasured: $gemm_text"
elif [ "$stage_rc" -eq 125 ]; then
  gemm_text="$stage_result"
  gemm_target="unmeasured: the stage was skipped (${stage_result#not run: })"
else
  gemm_text="$(grep -m1 '^DeviceGemmTimer: ' "$gemm_log" | sed 's/^DeviceGemmTimer: //')"
  gemm_text="${gemm_text:-the timer failed ($stage_result); see comparisons.log}"
  gemm_target="unmeasured: $gemm_text"
fi
add_section 45 "GEMM on $device: kiln against cuBLAS" \
  "A 4096 x 4096 x 4096 float32 product from dev.kiln.benchmarks.DeviceGemmTimer: 3 untimed" \
  "products, then the median of 10, each ending with a synchronize. Full output in" \
  "comparisons.log." "" "$(cell "$gemm_text")." "" "${gemm_lines[@]}"
summary_rows+=("| gemm | $(cell "$gemm_text") | $stage_seconds |")
render_targets
render_report

# ---- 5. Training step timings ----
# Each timing is PRESET:BATCH:VENDOR. lenet-20m at batch 64 is the timing that the GPU work aims
# at, so it runs first, where a short budget still reaches it: once with the vendor libraries where
# they load (VENDOR auto) and once with -Dkiln.cuda.vendor=kiln, kiln's own kernels only. Then
# comes every preset at the GPU_CHECK_TRAINING batch, which for lenet-20m gives a second batch size
# to compare.
training_log="$out/training.log"
: >"$training_log"
training_rows=()
training_timed=0
training_seconds=0
# The reason of the first missing timing, and whether another missing timing had another reason.
training_first_missing=""
training_reasons_differ=false
# The step times in ms of each timed PRESET:BATCH with the vendor libraries, as the timer's step_ms=
# field gives them, or the reason that they are missing, for the comparison with PyTorch.
declare -A kiln_step_ms=() kiln_step_missing=()
timings=("lenet-20m:64:auto" "lenet-20m:64:kiln")
for preset in ${presets:-default naimishnet lenet-20m lenet-48m}; do
  timings+=("$preset:$train_batch:auto")
done
for timing in "${timings[@]}"; do
  IFS=: read -r preset batch vendor <<<"$timing"
  vendor_options=()
  label="$preset, batch $batch"
  if [ "$vendor" = kiln ]; then
    vendor_options=(-Dkiln.cuda.vendor=kiln)
    label="$label, kiln's own kernels (-Dkiln.cuda.vendor=kiln)"
  elif [ "$preset:$batch" = lenet-20m:64 ]; then
    label="$label, vendor libraries where they load"
  fi
  # A result line with device=cuda:N counts as a timing on the GPU. Where the timer cannot use the
  # device, it prints the reason and exits with 2.
  run_log="$work/training-$preset-$batch-$vendor.log"
  timed_before="$training_timed"
  run_stage "training $preset batch $batch ($vendor)" 90 "$run_log" \
    "$java" "${jvm_options[@]}" "${kiln_jvm_options[@]}" "${vendor_options[@]}" -cp "$classpath" \
    dev.kiln.benchmarks.TrainingStepTimer --device "$device" --warmup-seconds "$warmup_seconds" \
    "$preset" "$batch" "$train_warmup" "$train_steps"
  append_crash_logs "$run_log"
  cat "$run_log" >>"$training_log"
  summarize_training "$label" "$run_log"
  if [ "$training_timed" -gt "$timed_before" ] && [ "$vendor" = auto ]; then
    # GpuReport compare-steps checks the values.
    kiln_step_ms[$preset:$batch]="$(step_times "$run_log")"
    if [ -z "${kiln_step_ms[$preset:$batch]}" ]; then
      kiln_step_missing[$preset:$batch]="the timer's result line has no step_ms= field"
    fi
  elif [ "$vendor" = auto ]; then
    kiln_step_missing[$preset:$batch]="$training_missing"
  fi
  if [ -n "$training_missing" ] && [ -z "$training_first_missing" ]; then
    training_first_missing="$training_missing"
  elif [ -n "$training_missing" ] && [ "$training_missing" != "$training_first_missing" ]; then
    training_reasons_differ=true
  fi
  training_rows+=("$training_row")
  training_seconds=$((training_seconds + stage_seconds))
  add_section 50 "Training step timings on $device" \
    "A warm-up of at least $train_warmup steps and at least $warmup_seconds s, then the median of" \
    "$train_steps timed steps (the mean of the two middle ones for an even count), each ending" \
    "when the loss is read back, from dev.kiln.benchmarks.TrainingStepTimer with the kiln" \
    "launcher's heap and GC options ($(cell "${kiln_jvm_options[*]}")). Full output in" \
    "training.log." "" "| preset | result |" "|---|---|" "${training_rows[@]}"
  render_report
done
training_count="${#training_rows[@]}"
# The summary states the reason of a missing timing instead of pointing to the table, whose rows
# may point on to the headline.
if [ "$training_timed" -eq "$training_count" ]; then
  training_summary="$training_timed timings on $device"
elif [ "$training_timed" -eq 0 ] && [ "$training_reasons_differ" = false ]; then
  training_summary="none of the $training_count timings ran, each for this reason:"
  training_summary="$training_summary $training_first_missing"
else
  training_summary="$training_timed of $training_count timings on $device. The table gives the"
  training_summary="$training_summary reason for each missing one, and the first is:"
  training_summary="$training_summary $training_first_missing"
fi
summary_rows+=("| training | $(cell "$training_summary") | $training_seconds |")
render_report

# ---- 6. `kiln train` end to end on synthetic faces ----
# The face dataset cannot travel to a lent machine, so SyntheticFaces draws a small one with the
# same layout. Then kiln's real command line, dev.kiln.keypoints.cli.Main with the JVM options of
# the kiln launcher, trains the smallest preset on it for 3 epochs on $device and then, as a
# control, on the CPU. Then `kiln evaluate` runs the control's best.safetensors on $device and on
# the CPU (evaluate-lib.sh), and GpuReport compares the two evaluation.json files. The stage takes
# at most 300 s: 20 s for the dataset, 50 s for each training run, 30 s for their comparison, 60 s
# for each evaluation and 30 s for theirs. Without a GPU, on this project's 2-core machine, it took
# 10 s on 2026-12-05, of which the CPU evaluation took 3 s.
# NOTE: training writes curves.png after each epoch, which draws text, so a machine without any
# font would make both runs fail the same way. machine.log counts the fonts that fontconfig finds.
train_epochs=3
train_dataset="$work/synthetic-faces"

# summarize_train_run DEVICE LOG RUN: stores the outcome of one `kiln train` run on DEVICE, whose
# output is in LOG and whose run folder is RUN, in the e2e_* arrays. The result is "works" (exit
# status 0, every epoch in history.csv, and DEVICE last in devices.txt), "unmeasured" with the
# reason as a clause that can follow "because" (skipped, or DEVICE not usable), or "fails" with the
# first error line.
summarize_train_run() {
  local train_device="$1" log="$2" run="$3" epochs=0 reason error last_device
  if [ -f "$run/history.csv" ]; then
    epochs="$(tail -n +2 "$run/history.csv" | grep -c .)"
  fi
  e2e_rc[$train_device]="$stage_rc"
  e2e_epochs[$train_device]="$epochs"
  e2e_devices[$train_device]="$(paste -sd';' "$run/devices.txt" 2>/dev/null)"
  e2e_seconds_of[$train_device]="$stage_seconds"
  last_device="$(tail -1 "$run/devices.txt" 2>/dev/null | awk '{ print $2 }')"
  # TrainCommand rejects a device that it cannot open with exit status 2 and this line.
  reason="$(unusable_device_reason train "$train_device" "$log")"

  if [ "$stage_rc" -eq 125 ]; then
    e2e_result[$train_device]="unmeasured: the run was skipped (${stage_result#not run: })"
    e2e_short[$train_device]="unmeasured: skipped for the budget"
  elif [ "$stage_rc" -eq 2 ] && [ -n "$reason" ]; then
    e2e_result[$train_device]="unmeasured: $reason"
    e2e_short[$train_device]="unmeasured: $reason"
  elif [ "$stage_rc" -eq 0 ] && [ "$epochs" -eq "$train_epochs" ] &&
    [ "$last_device" = "$train_device" ]; then
    e2e_result[$train_device]="works: $epochs of $train_epochs epochs"
    e2e_short[$train_device]="${e2e_result[$train_device]}"
  elif [ "$stage_rc" -eq 0 ]; then
    e2e_result[$train_device]="fails: exit status 0, but history.csv has $epochs of $train_epochs"
    e2e_result[$train_device]+=" epochs and devices.txt ends with '${last_device:-nothing}'"
    e2e_short[$train_device]="fails: $epochs of $train_epochs epochs"
    overall_ok=false
  else
    error="$(first_error_line train "$log")"
    e2e_result[$train_device]="fails: $stage_result after $epochs of $train_epochs epochs"
    e2e_result[$train_device]+="${error:+: $error}"
    e2e_short[$train_device]="fails: $stage_result"
    overall_ok=false
  fi
}

# judge_comparison LOG: sets comparison_outcome from the comparison= and detail= lines that a
# GpuReport comparison mode wrote to LOG, after run_stage ran it: "pass: DETAIL", "fail: DETAIL" or
# "unmeasured: REASON". A fail, or a comparison that did not finish, also sets overall_ok=false.
judge_comparison() {
  local log="$1" verdict detail
  verdict="$(key_value "$log" comparison)"
  detail="$(key_value "$log" detail)"
  case "$verdict" in
    pass | unmeasured) comparison_outcome="$verdict: $detail" ;;
    fail)
      comparison_outcome="fail: $detail"
      overall_ok=false
      ;;
    *)
      if [ "$stage_rc" -eq 125 ]; then
        comparison_outcome="unmeasured: the comparison was skipped (${stage_result#not run: })"
      else
        comparison_outcome="unmeasured: the comparison did not finish ($stage_result); see training.log"
        overall_ok=false
      fi
      ;;
  esac
}

# compare_train_runs: sets e2e_comparison to "pass", "fail" or "unmeasured", each followed by the
# reason, for the cuda run against the CPU control, and e2e_comparison_short to the verdict with a
# short reason for the summary table. Where both runs worked, GpuReport's compare-training mode
# judges their history.csv files.
compare_train_runs() {
  local gpu="$e2e_gpu" compare_log="$work/train-compare.log"
  case "${e2e_result[$gpu]}" in
    unmeasured*)
      e2e_comparison="unmeasured: there is no $gpu run to compare with the control, because"
      e2e_comparison+=" ${e2e_result[$gpu]#unmeasured: }"
      e2e_comparison_short="unmeasured, because there is no $gpu run"
      return
      ;;
    fails*)
      e2e_comparison="fail: the $gpu run failed, as its result above says"
      e2e_comparison_short="fail"
      return
      ;;
  esac
  if [[ "${e2e_result[cpu]}" != works* ]]; then
    e2e_comparison="unmeasured: the cpu control did not work, as its result above says, so there"
    e2e_comparison+=" is nothing to compare against"
    e2e_comparison_short="unmeasured, because the cpu control did not work"
    return
  fi

  run_stage "train comparison" 30 "$compare_log" \
    "$java" "${jvm_options[@]}" -cp "$classpath" dev.kiln.benchmarks.GpuReport compare-training \
    "$work/train-run-${gpu//:/}/history.csv" "$work/train-run-cpu/history.csv" "$train_epochs"
  append_crash_logs "$compare_log"
  cat "$compare_log" >>"$train_log"
  e2e_seconds=$((e2e_seconds + stage_seconds))
  judge_comparison "$compare_log"
  e2e_comparison="$comparison_outcome"

  e2e_comparison_short="${e2e_comparison%%:*}"
  if [ "$e2e_comparison_short" = unmeasured ]; then
    e2e_comparison_short="unmeasured, because ${e2e_comparison#unmeasured: }"
  fi
}

# history_table CSV_A CSV_B: prints one Markdown table row per epoch of two history.csv files,
# with the training loss, the validation NME in % and the images per second of each, or "none".
history_table() {
  local csv
  for csv in "$1" "$2"; do
    [ -f "$csv" ] || csv=/dev/null
    tail -n +2 "$csv"
    echo "--"
  done | awk -F, '
    $0 == "--" { file++; next }
    NF >= 7 {
      epoch = $1 + 0; if (epoch > last) last = epoch
      loss[file, epoch] = $2; nme[file, epoch] = sprintf("%.2f", 100 * $4); rate[file, epoch] = $7
    }
    function value(table, f, e) { return ((f, e) in table) ? table[f, e] : "none" }
    END {
      for (e = 1; e <= last; e++) {
        printf "| %d | %s | %s | %s | %s | %s | %s |\n", e, value(loss, 0, e), value(loss, 1, e),
          value(nme, 0, e), value(nme, 1, e), value(rate, 0, e), value(rate, 1, e)
      }
    }'
}

# Stores the report section, summary row and headline sentence of the train stage.
render_train_section() {
  local gpu="$e2e_gpu" lines=() epoch_rows libraries dataset_counts
  dataset_counts="$(printf '%s' "$dataset_line" | sed 's/^wrote \(.*\) to .*/\1/')"
  lines+=("\`kiln train --model default --epochs $train_epochs --batch-size 16 --seed 1\`"
    "(dev.kiln.keypoints.cli.Main with the JVM options of the kiln launcher) on $gpu and then on"
    "cpu, the control, on a synthetic dataset from dev.kiln.benchmarks.SyntheticFaces"
    "(${dataset_counts:-not written; see training.log}). Both runs start from the same weights."
    "Full output, with each run folder's devices.txt, history.csv and options.properties, in"
    "training.log." "")

  lines+=("| | $gpu | cpu |" "|---|---|---|"
    "| result | $(cell "${e2e_result[$gpu]}") | $(cell "${e2e_result[cpu]}") |"
    "| exit status | ${e2e_rc[$gpu]} | ${e2e_rc[cpu]} |"
    "| epochs completed | ${e2e_epochs[$gpu]:-0} of $train_epochs | ${e2e_epochs[cpu]:-0} of $train_epochs |"
    "| devices.txt | $(cell "${e2e_devices[$gpu]:-none}") | $(cell "${e2e_devices[cpu]:-none}") |"
    "| seconds | ${e2e_seconds_of[$gpu]} | ${e2e_seconds_of[cpu]} |")
  libraries="$(grep -m1 "^device $gpu: " "$work/train-${gpu//:/}.log" | sed "s/^device $gpu: //")"
  if [ -n "$libraries" ]; then
    lines+=("" "Libraries on $gpu, as kiln train printed them: $(cell "$libraries").")
  fi

  epoch_rows="$(history_table "$work/train-run-${gpu//:/}/history.csv" \
    "$work/train-run-cpu/history.csv")"
  if [ -n "$epoch_rows" ]; then
    lines+=("" "Per epoch, from history.csv (NME is the validation NME in %, inter-ocular):" ""
      "| epoch | train loss $gpu | train loss cpu | val NME $gpu | val NME cpu | images/s $gpu | images/s cpu |"
      "|---|---|---|---|---|---|---|" "$epoch_rows")
  fi
  # NOTE: 8 points is GpuReport.TrainingComparison.NME_TOLERANCE, whose Javadoc gives the
  # measurements behind it. Change the two together.
  local comparison_reason="${e2e_comparison#*: }"
  lines+=("" "**Comparison of $gpu with the cpu control: ${e2e_comparison%%:*}.**"
    "$(cell "${comparison_reason^}")." ""
    "It passes when the $gpu run has all $train_epochs epochs, finite losses and NME in each, a"
    "training loss and validation NME that fell from the first epoch to the last, and a last"
    "validation NME within 8 percentage points of the cpu control's. Both runs start from the same"
    "weights and see the same batches, but the GPU draws other dropout masks and sums in another"
    "order, so the NMEs cannot match exactly. The cpu control's last NME spread over 7.7 points"
    "across 12 training seeds, which also vary the weights and the batch order, so 8 points covers"
    "the difference that dropout masks make. The cpu run needs no GPU, so it is measured on every"
    "machine, but the comparison is unmeasured until the $gpu run works.")
  mapfile -t -O "${#lines[@]}" lines < <(evaluate_section_lines)
  add_section 53 "kiln train end to end on $gpu, with a cpu control" "${lines[@]}"

  summary_rows+=("| train end to end | $(cell "$gpu: ${e2e_short[$gpu]}; cpu: ${e2e_short[cpu]}; comparison: $e2e_comparison_short") | $e2e_seconds |")
  summary_rows+=("| train end to end: evaluate on $evaluate_device against cpu | $(cell "$(evaluate_summary)") | $evaluate_seconds |")
  headline="$headline $(train_headline_sentence)"
}

# Prints the headline's sentence on the train stage. It gives the reason for an unmeasured run
# itself, except where that reason is the device's unusable message, which the headline has just
# stated.
train_headline_sentence() {
  local command="\`kiln train --device $e2e_gpu\`" reason
  case "${e2e_result[$e2e_gpu]}" in
    works*)
      echo "$command works end to end ($train_epochs of $train_epochs epochs on synthetic faces)." \
        "Its comparison with the cpu control: $e2e_comparison_short."
      ;;
    fails*)
      echo "$command fails, so its comparison with the cpu control fails too. The train section" \
        "gives the error."
      ;;
    *)
      reason="${e2e_result[$e2e_gpu]#unmeasured: }"
      if [ -n "$unusable_message" ] && [[ "$reason" == *"$unusable_message"* ]]; then
        echo "Because of this, $command is unmeasured, and so is its comparison with the cpu" \
          "control."
      else
        echo "$command is unmeasured, because $reason, and so is its comparison with the cpu" \
          "control."
      fi
      ;;
  esac
}

train_log="$work/train-e2e.log"
e2e_seconds=0
run_stage "train data" 20 "$train_log" \
  "$java" "${jvm_options[@]}" -Djava.awt.headless=true -cp "$classpath" \
  dev.kiln.benchmarks.SyntheticFaces "$train_dataset" 192 32 1
append_crash_logs "$train_log"
e2e_seconds=$((e2e_seconds + stage_seconds))
dataset_line="$(grep -m1 '^wrote ' "$train_log")"
dataset_failure=""
if [ -z "$dataset_line" ] && [ "$stage_rc" -eq 125 ]; then
  dataset_failure="unmeasured: the dataset stage was skipped (${stage_result#not run: })"
elif [ -z "$dataset_line" ]; then
  dataset_failure="$(grep -v '^== ' "$train_log" |
    grep -m1 -E '^(SyntheticFaces: |Error: |Exception in thread)')"
  dataset_failure="fails: no synthetic dataset ($stage_result)${dataset_failure:+: $dataset_failure}"
  overall_ok=false
fi
# Per device: the result with its reason, a short form for the summary table, the exit status,
# the epochs in history.csv, the lines of devices.txt and the run's seconds.
declare -A e2e_result=() e2e_short=() e2e_rc=() e2e_epochs=() e2e_devices=() e2e_seconds_of=()
# The same for the two evaluations of the control's checkpoint, which evaluate-lib.sh fills in.
declare -A evaluate_result=() evaluate_rc=() evaluate_nme=() evaluate_seconds_of=()
evaluate_comparison="unmeasured: the evaluations did not run"
evaluate_seconds=0
e2e_comparison="unmeasured: the runs did not finish"
e2e_comparison_short="$e2e_comparison"
# kiln train names a device by its index, cuda:0 for cuda, in its messages and devices.txt.
e2e_gpu="$device"
[ "$e2e_gpu" = cuda ] && e2e_gpu=cuda:0
for train_device in "$e2e_gpu" cpu; do
  run_folder="$work/train-run-${train_device//:/}"
  run_log="$work/train-${train_device//:/}.log"
  if [ -n "$dataset_failure" ]; then
    e2e_result[$train_device]="$dataset_failure"
    e2e_short[$train_device]="${dataset_failure%%:*}: no dataset"
    e2e_rc[$train_device]="none"
    e2e_seconds_of[$train_device]=0
    : >"$run_log"
  else
    run_stage "train on $train_device" 50 "$run_log" \
      "$java" "${jvm_options[@]}" "${kiln_jvm_options[@]}" -cp "$classpath" \
      dev.kiln.keypoints.cli.Main train --data "$train_dataset" --model default \
      --epochs "$train_epochs" --batch-size 16 --seed 1 --device "$train_device" \
      --output "$run_folder"
    append_crash_logs "$run_log"
    e2e_seconds=$((e2e_seconds + stage_seconds))
    summarize_train_run "$train_device" "$run_log" "$run_folder"
  fi
  cat "$run_log" >>"$train_log"
  # The run folder's text files go into the log too, but the checkpoints stay behind.
  for file in devices.txt history.csv options.properties; do
    if [ -f "$run_folder/$file" ]; then
      echo "== $run_folder/$file" >>"$train_log"
      cat "$run_folder/$file" >>"$train_log"
    fi
  done
done
compare_train_runs
evaluate_control_checkpoint
cat "$train_log" >>"$training_log"
render_train_section
render_report

# ---- 7. PyTorch's training steps on the same GPU ----
# The same presets, batches and step counts as the kiln timings, through pytorch_bench.py, where
# the machine's python3 has a PyTorch that can use CUDA. Otherwise the report gives the reason, and
# the kiln/PyTorch ratio stays unmeasured, never estimated.
pytorch_log="$work/pytorch.log"
pytorch_bench="$bundle/pytorch_bench.py"
if [ ! -f "$pytorch_bench" ]; then
  pytorch_bench="$here/../pytorch_bench.py"
fi
pytorch_rows=()
pytorch_absent=""
pytorch_seconds=0
# The probe distinguishes a python3 without PyTorch (exit status 3) from a PyTorch that cannot use
# CUDA (exit status 4), and names the interpreter, because the PATH may contain several.
pytorch_probe='
import sys
print("python.executable=" + sys.executable)
print("python.version=" + sys.version.split()[0])
try:
    import torch
except ImportError as error:
    print("torch.missing=" + type(error).__name__ + ": " + str(error))
    sys.exit(3)
print("torch.version=" + torch.__version__)
print("torch.cuda=" + str(torch.version.cuda))
if not torch.cuda.is_available():
    sys.exit(4)
print("torch.gpu=" + torch.cuda.get_device_name(0))
'
if ! command -v python3 >/dev/null; then
  pytorch_absent="python3 is not on the PATH"
else
  run_stage "pytorch check" 60 "$pytorch_log" python3 -c "$pytorch_probe"
  pytorch_seconds=$((pytorch_seconds + stage_seconds))
  python_about="python3 $(key_value "$pytorch_log" python.version) at"
  python_about="$python_about $(key_value "$pytorch_log" python.executable)"
  if [ "$stage_rc" -eq 125 ]; then
    pytorch_absent="the PyTorch stage was skipped (${stage_result#not run: })"
  elif [ "$stage_rc" -eq 3 ]; then
    pytorch_absent="$python_about has no PyTorch ($(key_value "$pytorch_log" torch.missing))"
  elif [ "$stage_rc" -eq 4 ]; then
    pytorch_absent="PyTorch $(key_value "$pytorch_log" torch.version) in $python_about cannot use"
    pytorch_absent="$pytorch_absent CUDA: torch.cuda.is_available() is False"
    if [ "$(key_value "$pytorch_log" torch.cuda)" = None ]; then
      pytorch_absent="$pytorch_absent, because this PyTorch build has no CUDA support"
      pytorch_absent="$pytorch_absent (torch.version.cuda is None)"
    else
      pytorch_absent="$pytorch_absent, although it was built for CUDA"
      pytorch_absent="$pytorch_absent $(key_value "$pytorch_log" torch.cuda); see machine.log for"
      pytorch_absent="$pytorch_absent the driver"
    fi
  elif [ "$stage_rc" -ne 0 ]; then
    pytorch_absent="the PyTorch check with python3 at $(command -v python3) failed"
    pytorch_absent="$pytorch_absent ($stage_result): $(grep -v '^== ' "$pytorch_log" | tail -1)"
  fi
fi
if [ -z "$pytorch_absent" ]; then
  # The lenet-20m timing at batch 64 first, because it decides the target, then every preset at
  # the GPU_CHECK_TRAINING batch.
  for models_and_batch in "lenet-20m:64" "${presets// /,}:$train_batch"; do
    models="${models_and_batch%%:*}"
    batch="${models_and_batch##*:}"
    [ -n "$models" ] || models="default,naimishnet,lenet-20m,lenet-48m"
    run_stage "pytorch training $models batch $batch" 150 "$pytorch_log" \
      python3 "$pytorch_bench" run --device "$device" --models "$models" --batches "$batch" \
      --modes train --warmup "$train_warmup" --warmup-seconds "$warmup_seconds" \
      --repeat-seconds 0 --repeats "$train_steps" --steps 1
    pytorch_seconds=$((pytorch_seconds + stage_seconds))
    if [ "$stage_rc" -ne 0 ]; then
      pytorch_rows+=("| $models | $batch | $(cell "$stage_result; see comparisons.log") | | | |")
    fi
  done
  # One row per throughput record. GpuReport compare-steps turns each repeat's images/s into that
  # step's ms and decides the lenet-20m verdict by the rule of the CPU comparison table, on
  # unrounded values. Only the text is rounded (ratios to 3 decimals), so 1.004 is not met.
  step_log="$work/compare-steps.log"
  : >"$step_log"
  while IFS=$'\t' read -r _ _ model batch _ rates; do
    kiln_steps="${kiln_step_ms[$model:$batch]:-}"
    kiln_missing="${kiln_step_missing[$model:$batch]:-the training stage did not time it}"
    if ! compare_steps "$batch" "$rates" "$kiln_steps" "$step_log"; then
      overall_ok=false
      pytorch_rows+=("| $model | $batch | $(cell "$step_error") | | | |")
      if [ "$model:$batch" = lenet-20m:64 ]; then
        training_target="unmeasured: $step_error"
      fi
      continue
    fi
    torch_shown="$(step_spread "$step_pytorch_ms")"
    read -r _ torch_median _ <<<"$step_pytorch_ms"
    torch_median="$(rounded 2 "$torch_median")"
    kiln_shown="none"
    ratio_shown="unmeasured: kiln has no timing on $device. Reason: $kiln_missing"
    verdict_shown="unmeasured"
    if [ -n "$kiln_steps" ]; then
      kiln_shown="$(step_spread "$step_kiln_ms")"
      ratio_shown="$(rounded 3 "$step_ratio")"
      verdict_shown="$step_verdict"
    fi
    if [ "$model:$batch" = lenet-20m:64 ] && [ -n "$kiln_steps" ]; then
      read -r _ kiln_median _ <<<"$step_kiln_ms"
      training_target="$verdict_shown: kiln $(rounded 2 "$kiln_median") ms, PyTorch"
      training_target="$training_target $torch_median ms per step (medians),"
      training_target="$training_target ${ratio_shown}× PyTorch's time. Steps took $kiln_shown ms"
      training_target="$training_target in kiln and $torch_shown ms in PyTorch (min / median / max)"
    elif [ "$model:$batch" = lenet-20m:64 ]; then
      training_target="unmeasured: PyTorch took $torch_median ms per step, but kiln has no timing"
      training_target="$training_target on $device. Reason: $kiln_missing"
    fi
    pytorch_rows+=("| $model | $batch | $torch_shown | $kiln_shown | $(cell "$ratio_shown") | $(cell "$verdict_shown") |")
  done < <(awk -F'\t' '$1 == "throughput" && $2 == "pytorch"' "$pytorch_log")
  cat "$step_log" >>"$pytorch_log" 2>/dev/null
  if [ "${#pytorch_rows[@]}" -eq 0 ]; then
    pytorch_rows+=("| | | no PyTorch timing finished; see comparisons.log | | | |")
  fi
  if [[ "$training_target" == "unmeasured: the training and PyTorch stages did not run" ]]; then
    training_target="unmeasured: PyTorch's lenet-20m timing at batch 64 did not finish"
  fi
  # The first run's info records: versions, then the precision settings and the environment
  # variables that can override them.
  pytorch_about="$(awk -F'\t' '$1 == "info" && $2 == "pytorch" && !seen[$3]++ &&
    $3 ~ /^(torch|cuda|gpu|cudnn)$/ { print $3 " " $4 }' "$pytorch_log" | paste -sd, |
    sed 's/,/, /g')"
  pytorch_precision="$(awk -F'\t' '$1 == "info" && $2 == "pytorch" && !seen[$3]++ &&
    $3 ~ /^(cudnn_allow_tf32|matmul_allow_tf32|matmul_fp32_precision|cudnn_conv_fp32_precision|cudnn_benchmark|NVIDIA_TF32_OVERRIDE|TORCH_ALLOW_TF32_CUBLAS_OVERRIDE)$/ {
    print $3 "=" $4 }' "$pytorch_log" | paste -sd' ')"
  add_section 55 "PyTorch training steps on $device" \
    "pytorch_bench.py run --device $device (${pytorch_about:-versions not printed}): the same presets" \
    "and batches, a warm-up of at least $train_warmup steps and at least $warmup_seconds s, and" \
    "$train_steps timed steps, each ending with torch.cuda.synchronize(). Both steps use the MSE" \
    "loss and Adam. A PyTorch step's ms is the batch times 1000 over its repeat's images/s. The" \
    "medians are those of the steps' times on both sides, and the ratio is rounded only for" \
    "display. The verdict follows the rule of the CPU comparison table: a tie where kiln's" \
    "min-max range of step times overlaps PyTorch's range times 1.0, else met where the ratio" \
    "of the medians is at most 1.0 and not met where it is above. Only lenet-20m at batch 64" \
    "has this target. Full output in comparisons.log." "" \
    "Precision: $(cell "${pytorch_precision:-not printed}"). pytorch_bench.py turns TF32 and" \
    "cuDNN's benchmark mode off, because kiln's convolutions use CUDNN_FMA_MATH, its matrix" \
    "products cuBLAS's default math, and it picks cuDNN's algorithms by heuristic." "" \
    "| preset | batch | PyTorch ms min / median / max | kiln ms min / median / max | kiln / PyTorch | verdict at 1.0× |" \
    "|---|---|---|---|---|---|" \
    "${pytorch_rows[@]}"
  summary_rows+=("| pytorch | ${#pytorch_rows[@]} PyTorch timings on the GPU | $pytorch_seconds |")
else
  training_target="unmeasured: $pytorch_absent"
  add_section 55 "PyTorch training steps on $device" \
    "$(cell "Not measured, because $pytorch_absent"). The kiln/PyTorch ratio is therefore" \
    "unmeasured, and this report gives no estimate in its place."
  summary_rows+=("| pytorch | $(cell "not measured: $pytorch_absent") | $pytorch_seconds |")
fi
cat "$pytorch_log" >>"$comparisons_log" 2>/dev/null
render_targets
render_report

# ---- 8. Layers of lenet-20m with and without the vendor libraries ----
# The ops use whichever kernels the process registered for the device, so the two columns come from
# two runs of the same timer: the default selection, and -Dkiln.cuda.vendor=kiln.
layers_seconds=0
for vendor in auto kiln; do
  vendor_options=()
  [ "$vendor" = kiln ] && vendor_options=(-Dkiln.cuda.vendor=kiln)
  run_stage "layers lenet-20m ($vendor)" 90 "$work/layers-$vendor.log" \
    "$java" "${jvm_options[@]}" "${kiln_jvm_options[@]}" "${vendor_options[@]}" -cp "$classpath" \
    dev.kiln.benchmarks.DeviceLayerTimer --device "$device" lenet-20m 64 3 10
  append_crash_logs "$work/layers-$vendor.log"
  cat "$work/layers-$vendor.log" >>"$comparisons_log"
  layers_seconds=$((layers_seconds + stage_seconds))
done
layer_rows="$(join_layer_timings "$work/layers-auto.log" "$work/layers-kiln.log")"
if [ -n "$layer_rows" ]; then
  layers_summary="$(printf '%s\n' "$layer_rows" | wc -l) layers timed"
  add_section 60 "Layers of lenet-20m on $device: vendor libraries against kiln's kernels" \
    "Forward plus backward (input and weight gradients) at batch 64, median of 10 after 3" \
    "untimed, from dev.kiln.benchmarks.DeviceLayerTimer. The provider column names the path" \
    "that the default run chose for the layer's library (jcuda, direct or kiln); the kiln column" \
    "comes from a second run with -Dkiln.cuda.vendor=kiln. Full output in comparisons.log." "" \
    "| layer | provider | default ms | kiln ms | kiln / default |" "|---|---|---|---|---|" \
    "$layer_rows"
else
  layers_summary="$(grep -h -m1 '^DeviceLayerTimer: ' "$work"/layers-*.log | head -1 |
    sed 's/^DeviceLayerTimer: //')"
  layers_summary="no layer timed: ${layers_summary:-$stage_result; see comparisons.log}"
  add_section 60 "Layers of lenet-20m on $device: vendor libraries against kiln's kernels" \
    "$(cell "$layers_summary")."
fi
summary_rows+=("| layers | $(cell "$layers_summary") | $layers_seconds |")
render_report

# ---- 9. The kernels tests ----
# They run under CPU emulation and need no GPU, so they come last, where a slow earlier stage
# costs them and not the GPU's results.
run_suite kernels 70 180 kernels
if [ -n "${suite_skipped[core]:-}" ]; then
  headline="$headline The core suite skipped ${suite_skipped[core]} tests"
  if [ "$usable" = true ]; then
    headline="$headline."
  else
    headline="$headline and ran its device tests on emulated alone."
  fi
fi
if [ -n "${suite_skipped[kernels]:-}" ]; then
  headline="$headline The kernels tests ran under CPU emulation, as they do on every machine for now."
fi
render_report

rm -rf "$work"
echo "gpu-check: wrote $report after $(($(date +%s) - start)) s"
cat "$report"
# The exit status is 0 for a run that finished on a machine without a usable GPU too, so the last
# line states whether anything was measured on the GPU.
gpu_figures=()
[ "$usable" = true ] && [ -n "${suite_skipped[core]:-}" ] && gpu_figures+=("core tests")
[[ "$gemm_target" != unmeasured* ]] && gpu_figures+=("GEMM rate")
[ "$training_timed" -gt 0 ] && gpu_figures+=("$training_timed training timings")
[[ "${e2e_result[$e2e_gpu]:-}" == works* ]] && gpu_figures+=("kiln train")
[ -n "$layer_rows" ] && gpu_figures+=("layer timings")
if [ "${#gpu_figures[@]}" -gt 0 ]; then
  measured="$(printf '%s, ' "${gpu_figures[@]}")"
  echo "gpu-check: GPU figures measured on $device: ${measured%, }"
elif [ "$usable" = true ]; then
  echo "gpu-check: no GPU figure was measured, although kiln can use $device; the report gives" \
    "each stage's reason"
elif [ "$usable" = false ]; then
  echo "gpu-check: no GPU figure was measured, because kiln cannot use $device; the report's first" \
    "line gives the reason"
else
  echo "gpu-check: no GPU figure was measured, because kiln's CUDA check did not finish"
fi
if [ "$overall_ok" = true ]; then
  exit 0
fi
exit 1
