# Stage runner and report writer for gpu-check.sh, which sources this file. Shell functions only.
# They use these variables of gpu-check.sh: start, budget, reserve_s, min_stage_s, work, out,
# report, sections, summary_rows, overall_ok, device, classpath (shown as CLASSPATH in the logs),
# java, jvm_options, headline and unusable_message.

# Prints TEXT with each copy of kiln's message on why the device is not usable replaced by a short
# pointer to the report's bold first line, which states that message once. Every stage that needs
# the GPU repeats the message in its own words around it, so without this the report would give the
# same two lines in a dozen places. Prints TEXT unchanged where the device is usable or the
# availability stage did not finish.
refer_to_reason() {
  local text="$1"
  if [ -n "${unusable_message:-}" ]; then
    text="${text//"$unusable_message"/$device is not usable (reason at the top)}"
  fi
  printf '%s' "$text"
}

# Prints TEXT as one Markdown table cell: one line, pipes escaped, at most 300 characters, and the
# device's unusable message shortened by refer_to_reason before the cut.
cell() {
  local text
  text="$(refer_to_reason "$1" | tr '\n' ' ' | sed 's/|/\\|/g')"
  if [ "${#text}" -gt 300 ]; then
    text="${text:0:297}..."
  fi
  printf '%s' "$text"
}

# add_section KEY TITLE LINE...: stores a report section. The report orders sections by KEY.
add_section() {
  local key="$1" title="$2"
  shift 2
  {
    echo "## $title"
    echo
    printf '%s\n' "$@"
    echo
  } >"$sections/$key.md"
}

# Prints the seconds left for stages, after the reserve for the final report.
seconds_left() {
  echo $((budget - ($(date +%s) - start) - reserve_s))
}

# run_stage NAME CAP LOG COMMAND...: runs COMMAND under `timeout` for CAP seconds or what is left
# of the budget, whichever is less, appending its output to LOG. Sets stage_rc (125 when the stage
# did not start, 124 or 137 when it timed out), stage_seconds and stage_result, a phrase for the
# report.
run_stage() {
  local name="$1" cap="$2" log="$3"
  shift 3
  local left limit began
  left="$(seconds_left)"
  if [ "$left" -lt "$min_stage_s" ]; then
    stage_rc=125
    stage_seconds=0
    stage_result="not run: $((left > 0 ? left : 0)) s of the ${budget} s budget were left, fewer"
    stage_result="$stage_result than the ${min_stage_s} s a stage needs"
    echo "== $name: $stage_result" >>"$log"
    overall_ok=false
    return
  fi

  limit=$((cap < left ? cap : left))
  local shown="$*"
  echo "== $name (limit ${limit} s): ${shown//"$classpath"/CLASSPATH}" >>"$log"
  echo "gpu-check: $name (limit ${limit} s)"
  began="$(date +%s)"
  # SIGQUIT first, because a JVM prints a thread dump on it, which shows in the log where a hung
  # run stood. SIGKILL follows 10 s later.
  timeout --signal=QUIT --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  stage_rc=$?
  stage_seconds=$(($(date +%s) - began))

  case "$stage_rc" in
    0) stage_result="finished in ${stage_seconds} s" ;;
    124 | 137)
      stage_result="timed out after ${limit} s"
      overall_ok=false
      ;;
    *) stage_result="exit status ${stage_rc} after ${stage_seconds} s" ;;
  esac
  echo "== $name: $stage_result" >>"$log"
}

# Appends any JVM crash log (hs_err) to LOG, because a crash in native code, such as the CUDA
# driver, leaves its only trace there.
append_crash_logs() {
  local log="$1" crash
  for crash in "$work"/hs_err_pid*.log; do
    [ -e "$crash" ] || continue
    {
      echo "== the JVM crashed; first 120 lines of $(basename "$crash"):"
      head -120 "$crash"
    } >>"$log"
    mv "$crash" "$work/xml/"
    overall_ok=false
  done
}

# suite_attribute FILE NAME: prints attribute NAME of the first <testsuite> element in FILE.
suite_attribute() {
  sed -n "s/.*<testsuite [^>]*\b$2=\"\([0-9]*\)\".*/\1/p" "$1" | head -1
}

# summarize_suite NAME KEY LOG: reads the JUnit XML of suite NAME and adds its report section
# (under KEY) and summary row.
summarize_suite() {
  local name="$1" key="$2" log="$3"
  local xml="$work/xml/$name/TEST-junit-jupiter.xml"
  local title="$name tests"
  local about="${suite_about[$name]:-}"
  # The log a suite's output ends up in; suite_log overrides the default name.
  local log_name="${suite_log[$name]:-$name-tests.log}"
  if [ "$stage_rc" -eq 125 ]; then
    add_section "$key" "$title" "$about" "" "$(cell "$stage_result")."
    summary_rows+=("| $title | $(cell "$stage_result") | 0 |")
    return
  fi
  if [ ! -f "$xml" ]; then
    # The launcher writes its XML only at the end, so count the test feed's lines instead, and name
    # the test that was running when the launcher stopped.
    local passed failed_feed last
    passed="$(grep -c ':: SUCCESSFUL$' "$log")"
    failed_feed="$(grep -c ':: FAILED$' "$log")"
    last="$(grep ':: STARTED$' "$log" | tail -1 | sed 's/ :: STARTED$//')"
    local counts="no report, because the launcher stopped ($stage_result): $passed passed and"
    counts="$counts $failed_feed failed before that"
    add_section "$key" "$title" "$about" "" "$(cell "$counts"). Last test started:" \
      "\`${last:-none}\`. See $log_name; a run that timed out ends with a thread dump there."
    summary_rows+=("| $title | $(cell "$counts") | $stage_seconds |")
    overall_ok=false
    return
  fi
  local total skipped failures errors run failed
  total="$(suite_attribute "$xml" tests)"
  skipped="$(suite_attribute "$xml" skipped)"
  failures="$(suite_attribute "$xml" failures)"
  errors="$(suite_attribute "$xml" errors)"
  run=$((total - skipped))
  suite_skipped[$name]="$skipped"
  failed=$((failures + errors))
  local counts="$run run, $failed failed, $skipped skipped"
  local containers_failed
  containers_failed="$(sed -n 's/^\[ *\([0-9]*\) containers failed.*/\1/p' "$log" | tail -1)"
  if [ "${containers_failed:-0}" -gt 0 ]; then
    counts="$counts, $containers_failed test classes failed to set up"
  fi

  # Each failed test as Class#method: message. The XML keeps one element per line, and the
  # <failure> or <error> element follows its <testcase>.
  local failure_lines
  failure_lines="$(awk '
    /<testcase / {
      name = $0; sub(/.*<testcase name="/, "", name); sub(/".*/, "", name)
      cls = $0; sub(/.*classname="/, "", cls); sub(/".*/, "", cls)
    }
    /<(failure|error)[ >]/ {
      msg = $0
      if (msg ~ /message="/) { sub(/.*message="/, "", msg); sub(/".*/, "", msg) } else { msg = "" }
      print "- `" cls "#" name "`: " substr(msg, 1, 300)
    }' "$xml" | sed 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&#10;/ /g; s/&amp;/\&/g')"
  # The distinct reasons of skipped tests, at most 5: the first line of each <skipped> element,
  # which contains the failed assumption's message or @Disabled's reason.
  local skip_reasons
  skip_reasons="$(grep -o '<skipped.*' "$xml" |
    sed 's/^<skipped><!\[CDATA\[//; s/^<skipped\/*>.*/(no reason given)/; s/\]\]><\/skipped>$//' |
    sed 's/^org\.opentest4j\.TestAbortedException: //; s/^Assumption failed: //' |
    sort | uniq -c | sort -rn | head -5 | sed 's/^ *\([0-9]*\) \(.*\)/- \1 skipped: \2/')"

  local lines=("$about" "" "$counts ($stage_result). Full output in $log_name, XML in"
    "junit-xml.tar.gz.")
  if [ -n "$failure_lines" ]; then
    lines+=("" "Failures:" "$failure_lines")
    overall_ok=false
  fi
  if [ -n "$skip_reasons" ]; then
    lines+=("" "Skip reasons:" "$skip_reasons")
  fi
  if [ "$stage_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    overall_ok=false
  fi
  add_section "$key" "$title" "${lines[@]}"
  summary_rows+=("| $title | $(cell "$counts") | $stage_seconds |")
}

# summarize_training LABEL LOG: sets training_row, the report table row of one training timing
# (LABEL names its preset and batch), from the output of its run in LOG, and counts the timings
# that ran on the device. Sets training_missing to the reason where the timing is missing, and to
# nothing where it ran.
summarize_training() {
  local label="$1" log="$2" result error text
  training_missing=""
  result="$(grep -E '^(device=[^ ]+ )?preset=' "$log" | tail -1)"
  if [ "$stage_rc" -eq 0 ] && [[ "$result" == *"device=$device"* ]]; then
    training_row="| $label | $(cell "$result") |"
    training_timed=$((training_timed + 1))
    return
  fi
  if [ "$stage_rc" -eq 0 ] && [ -n "$result" ]; then
    text="the timer printed no device=$device, so it may have run on the CPU, and this timing is"
    text="$text not counted: $result"
  elif [ "$stage_rc" -eq 125 ] || [ "$stage_rc" -eq 124 ] || [ "$stage_rc" -eq 137 ]; then
    text="$stage_result"
  else
    # The timer's own rejection, or else the first line of the exception without the thread
    # prefix.
    text="$(grep -m1 '^TrainingStepTimer: ' "$log" | sed 's/^TrainingStepTimer: //')"
    if [ -z "$text" ]; then
      error="$(grep -v '^== ' "$log" | grep -m1 -E '^(Exception in thread|[A-Za-z_.$]+(Exception|Error)\b)' |
        sed 's/^Exception in thread "[^"]*" //')"
      text="the timer failed on $device: ${error:-$stage_result}"
    fi
  fi
  training_missing="$text"
  training_row="| $label | $(cell "$text") |"
}

# Writes the whole report from the summary rows and the stored sections.
render_report() {
  {
    echo "# kiln GPU check"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n): $(($(date +%s) - start)) s of the" \
      "${budget} s budget used."
    echo
    if [ -n "${headline:-}" ]; then
      echo "**$headline**"
      echo
    fi
    echo "| stage | result | seconds |"
    echo "|---|---|---|"
    # The headline above keeps the device's unusable message, and everything below points to it.
    refer_to_reason "$(
      printf '%s\n' "${summary_rows[@]}"
      echo
      cat "$sections"/*.md 2>/dev/null
    )"
    echo
  } >"$report.tmp"
  mv "$report.tmp" "$report"
}

# key_value FILE KEY: prints the value of the last KEY=VALUE line in FILE, or nothing.
key_value() {
  sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -1
}

# unusable_device_reason COMMAND DEVICE LOG: prints the reason from the line with which `kiln
# COMMAND` rejects a DEVICE that it cannot open (exit status 2), or nothing.
unusable_device_reason() {
  sed -n "s/^kiln $1: cannot $1 on $2: \(.*\)\. To $1 on the CPU instead, use --device cpu\.$/\1/p" "$3" |
    head -1
}

# first_error_line COMMAND LOG: prints the first line of LOG that reports an error of `kiln
# COMMAND` (its own message, picocli's or an exception), without the name of the thread.
first_error_line() {
  grep -v '^== ' "$2" |
    grep -m1 -E "^(kiln $1: |Error: |Exception in thread|[A-Za-z_.\$]+(Exception|Error)\b)" |
    sed 's/^Exception in thread "[^"]*" //'
}

# verdict VALUE OPERATOR LIMIT: prints "met" or "not met" for VALUE >= LIMIT or VALUE <= LIMIT
# (OPERATOR is ">=" or "<="), compared as decimal numbers.
verdict() {
  if awk -v value="$1" -v op="$2" -v limit="$3" \
    'BEGIN { exit !(op == ">=" ? value + 0 >= limit + 0 : value + 0 <= limit + 0) }'; then
    echo "met"
  else
    echo "not met"
  fi
}

# step_times LOG: prints the step_ms= field, every timed step's ms in full precision, of the last
# TrainingStepTimer result line in LOG, or nothing.
step_times() {
  grep -E '^device=' "$1" | tail -1 | sed -n 's/.* step_ms=\([^ ]*\).*/\1/p'
}

# compare_steps BATCH PYTORCH_RATES KILN_STEP_MS LOG: runs GpuReport compare-steps on one preset and
# batch, appends its output to LOG, and sets step_pytorch_ms and step_kiln_ms ("min median max" in
# full precision), step_ratio and step_verdict from it. KILN_STEP_MS is TrainingStepTimer's step_ms=
# field, or empty where kiln has no timing, and then the kiln variables, step_ratio and
# step_verdict stay empty. Returns 1 and sets step_error to the reason where GpuReport fails. It
# runs under its own `timeout 30` rather than run_stage, because it only computes on timings that
# are already measured, and run_stage would skip it when less than min_stage_s of the budget is
# left, dropping a measured target's verdict.
compare_steps() {
  local batch="$1" rates="$2" kiln_steps="$3" log="$4" output="$work/compare-steps.out" status
  step_pytorch_ms="" step_kiln_ms="" step_ratio="" step_verdict="" step_error=""
  timeout 30 "$java" "${jvm_options[@]}" -cp "$classpath" dev.kiln.benchmarks.GpuReport \
    compare-steps "$batch" "$rates" "$kiln_steps" >"$output" 2>&1
  status=$?
  {
    echo "== GpuReport compare-steps $batch $rates $kiln_steps: exit status $status"
    cat "$output"
  } >>"$log"
  if [ "$status" -ne 0 ]; then
    step_error="$(grep -m1 '^GpuReport: ' "$output" | sed 's/^GpuReport: //')"
    [ "$status" -eq 124 ] && step_error="it timed out after 30 s"
    step_error="the step comparison (GpuReport compare-steps) failed with exit status $status${step_error:+: $step_error}"
    return 1
  fi
  step_pytorch_ms="$(key_value "$output" pytorch_min_ms) $(key_value "$output" pytorch_median_ms)"
  step_pytorch_ms="$step_pytorch_ms $(key_value "$output" pytorch_max_ms)"
  if [ -n "$kiln_steps" ]; then
    step_kiln_ms="$(key_value "$output" kiln_min_ms) $(key_value "$output" kiln_median_ms)"
    step_kiln_ms="$step_kiln_ms $(key_value "$output" kiln_max_ms)"
    step_ratio="$(key_value "$output" ratio)"
    step_verdict="$(key_value "$output" verdict)"
  fi
}

# step_spread "MIN MEDIAN MAX": prints the three step times in ms with 2 decimals, as
# "min / median / max", for display only.
step_spread() {
  awk -v values="$1" 'BEGIN {
    split(values, ms, " ")
    printf "%.2f / %.2f / %.2f", ms[1], ms[2], ms[3]
  }'
}

# rounded DIGITS VALUE: prints VALUE with DIGITS decimals, for display only.
rounded() {
  awk -v digits="$1" -v value="$2" 'BEGIN { printf "%." digits "f", value }'
}

# join_layer_timings DEFAULT_LOG KILN_LOG: prints one Markdown table row per layer line of
# DeviceLayerTimer in DEFAULT_LOG: layer, provider, its median ms, the median ms of the same layer
# in KILN_LOG (the run with -Dkiln.cuda.vendor=kiln) and kiln's time over the default's.
join_layer_timings() {
  local log
  for log in "$1" "$2"; do
    [ -f "$log" ] || : >"$log"
  done
  awk '
    /^layer=/ {
      layer = ""; provider = ""; ms = ""
      for (i = 1; i <= NF; i++) {
        split($i, pair, "=")
        if (pair[1] == "layer") layer = pair[2]
        if (pair[1] == "provider") provider = pair[2]
        if (pair[1] == "median_ms") ms = pair[2]
      }
      if (FILENAME == ARGV[1]) { order[++count] = layer; chosen[layer] = provider; fast[layer] = ms }
      else { own[layer] = ms }
    }
    END {
      for (i = 1; i <= count; i++) {
        layer = order[i]
        ratio = (layer in own) && fast[layer] > 0 ? sprintf("%.2f", own[layer] / fast[layer]) : "unmeasured"
        printf "| %s | %s | %s | %s | %s |\n", layer, chosen[layer], fast[layer],
          (layer in own) ? own[layer] : "none", ratio
      }
    }' "$1" "$2"
}

# Stores the report's first section: the two performance targets, each "met", "not met" or
# "unmeasured" with the measurement or the reason, from gemm_target and training_target. The
# training target can also be "tie (ranges overlap)". Its 1.0× is GpuReport.StepComparison.TARGET,
# so change the two together.
render_targets() {
  add_section 05 "Targets" \
    "- kiln's own GEMM kernel at 50% or more of cuBLAS's rate at 4096 x 4096 x 4096: $gemm_target" \
    "- a training step of lenet-20m at batch 64 in at most 1.0× PyTorch's time on the same GPU:" \
    "  $training_target"
}
