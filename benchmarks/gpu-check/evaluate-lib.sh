# The evaluate part of gpu-check.sh's train stage, which sources this file after report-lib.sh:
# `kiln evaluate` of the cpu control's best.safetensors on the GPU and on the CPU, and the
# comparison of the two evaluation.json files. Shell functions only. Besides report-lib.sh's
# variables they use these of gpu-check.sh: kiln_jvm_options, train_dataset, train_log, e2e_result
# (the control's result), evaluate_device and evaluate_cap_s.

# evaluate_control_checkpoint: runs `kiln evaluate` of the cpu control's checkpoint on the test
# faces of the synthetic dataset with --device $evaluate_device and then with --device cpu, where
# the control worked, and compares the two evaluation.json files with GpuReport
# compare-evaluation. Sets evaluate_result, evaluate_rc, evaluate_nme and evaluate_seconds_of per
# device, evaluate_comparison ("pass", "fail" or "unmeasured", each followed by the reason), and
# evaluate_seconds, the seconds of all three runs. Appends the runs' output and evaluation.json
# files to train_log.
evaluate_control_checkpoint() {
  local gpu="$evaluate_device" checkpoint="$work/train-run-cpu/best.safetensors" evaluate_on
  evaluate_seconds=0
  evaluate_result=([$gpu]="not run" [cpu]="not run")
  evaluate_rc=([$gpu]=none [cpu]=none)
  evaluate_nme=([$gpu]=none [cpu]=none)
  evaluate_seconds_of=([$gpu]=0 [cpu]=0)
  if [[ "${e2e_result[cpu]}" != works* ]]; then
    evaluate_comparison="unmeasured: the cpu control did not work, as its result above says, so there"
    evaluate_comparison+=" is no checkpoint to evaluate"
    return
  fi
  if [ ! -f "$checkpoint" ]; then
    evaluate_comparison="fail: the cpu control worked, but wrote no best.safetensors to evaluate"
    overall_ok=false
    return
  fi

  for evaluate_on in "$gpu" cpu; do
    local folder="$work/evaluate-${evaluate_on//:/}" log="$work/evaluate-${evaluate_on//:/}.log"
    mkdir -p "$folder"
    run_stage "evaluate on $evaluate_on" "$evaluate_cap_s" "$log" \
      "$java" "${jvm_options[@]}" "${kiln_jvm_options[@]}" -cp "$classpath" \
      dev.kiln.keypoints.cli.Main evaluate --checkpoint "$checkpoint" \
      --csv "$train_dataset/test_frames_keypoints.csv" --images "$train_dataset/test" \
      --device "$evaluate_on" --output "$folder"
    append_crash_logs "$log"
    evaluate_seconds=$((evaluate_seconds + stage_seconds))
    summarize_evaluate_run "$evaluate_on" "$log" "$folder/evaluation.json"
    cat "$log" >>"$train_log"
    if [ -f "$folder/evaluation.json" ]; then
      echo "== $folder/evaluation.json" >>"$train_log"
      cat "$folder/evaluation.json" >>"$train_log"
    fi
  done
  compare_evaluations
}

# summarize_evaluate_run DEVICE LOG JSON: stores the outcome of one `kiln evaluate` run on DEVICE,
# whose output is in LOG and whose evaluation.json is JSON, in the evaluate_* arrays. The result is
# "works" (exit status 0 and an evaluation.json), "unmeasured" with the reason (skipped, or DEVICE
# not usable), or "fails" with the first error line.
summarize_evaluate_run() {
  local evaluate_on="$1" log="$2" json="$3" reason error
  evaluate_rc[$evaluate_on]="$stage_rc"
  evaluate_seconds_of[$evaluate_on]="$stage_seconds"
  # EvaluateCommand rejects a device that it cannot open with exit status 2 and this line.
  reason="$(unusable_device_reason evaluate "$evaluate_on" "$log")"
  if [ "$stage_rc" -eq 125 ]; then
    evaluate_result[$evaluate_on]="unmeasured: the evaluation was skipped (${stage_result#not run: })"
  elif [ "$stage_rc" -eq 2 ] && [ -n "$reason" ]; then
    evaluate_result[$evaluate_on]="unmeasured: $reason"
  elif [ "$stage_rc" -eq 0 ] && [ -f "$json" ]; then
    evaluate_result[$evaluate_on]="works"
    evaluate_nme[$evaluate_on]="$(sed -n 's/^NME: //p' "$log" | tail -1)"
  elif [ "$stage_rc" -eq 0 ]; then
    evaluate_result[$evaluate_on]="fails: exit status 0, but it wrote no evaluation.json"
    overall_ok=false
  else
    error="$(first_error_line evaluate "$log")"
    evaluate_result[$evaluate_on]="fails: $stage_result${error:+: $error}"
    overall_ok=false
  fi
}

# compare_evaluations: sets evaluate_comparison from the two runs' results, and where both worked,
# from GpuReport compare-evaluation.
compare_evaluations() {
  local gpu="$evaluate_device" compare_log="$work/evaluate-compare.log"
  case "${evaluate_result[$gpu]}" in
    unmeasured*)
      evaluate_comparison="unmeasured: there is no $gpu evaluation to compare with the cpu's, because"
      evaluate_comparison+=" ${evaluate_result[$gpu]#unmeasured: }"
      return
      ;;
    fails*)
      evaluate_comparison="fail: the $gpu evaluation failed (${evaluate_result[$gpu]#fails: })"
      return
      ;;
  esac
  if [ "${evaluate_result[cpu]}" != works ]; then
    evaluate_comparison="unmeasured: the cpu evaluation did not work (${evaluate_result[cpu]}), so there is"
    evaluate_comparison+=" nothing to compare against"
    return
  fi

  run_stage "evaluate comparison" 30 "$compare_log" \
    "$java" "${jvm_options[@]}" -cp "$classpath" dev.kiln.benchmarks.GpuReport \
    compare-evaluation "$work/evaluate-${gpu//:/}/evaluation.json" \
    "$work/evaluate-cpu/evaluation.json" "$gpu"
  append_crash_logs "$compare_log"
  cat "$compare_log" >>"$train_log"
  evaluate_seconds=$((evaluate_seconds + stage_seconds))
  judge_comparison "$compare_log"
  evaluate_comparison="$comparison_outcome"
}

# Prints the report lines of the evaluate comparison, for the train stage's section.
# NOTE: 5e-4 is EvaluationComparison.TOLERANCE, whose Javadoc derives it. Change the two together.
evaluate_section_lines() {
  local gpu="$evaluate_device" reason="${evaluate_comparison#*: }"
  printf '%s\n' "" "### kiln evaluate of the cpu control's checkpoint on $gpu and on cpu" "" \
    "\`kiln evaluate --checkpoint best.safetensors\` of the cpu control, on the synthetic test faces," \
    "once with \`--device $gpu\` and once with \`--device cpu\`. Both runs compute the same model," \
    "so only the order of the float32 sums differs. Their evaluation.json files, in training.log," \
    "must name the device that each was asked for, list the same faces, and agree within 5e-4" \
    "(0.05 percentage points) on the NME, each region's NME and every face's NME. That is the" \
    "largest NME shift that reordering the model's longest sum (2304 terms) can cause on these" \
    "faces, an estimate of the scale rather than a proven bound. Each run's limit is" \
    "$evaluate_cap_s s." "" \
    "| | $gpu | cpu |" "|---|---|---|" \
    "| result | $(cell "${evaluate_result[$gpu]}") | $(cell "${evaluate_result[cpu]}") |" \
    "| exit status | ${evaluate_rc[$gpu]} | ${evaluate_rc[cpu]} |" \
    "| NME | ${evaluate_nme[$gpu]} | ${evaluate_nme[cpu]} |" \
    "| seconds | ${evaluate_seconds_of[$gpu]} | ${evaluate_seconds_of[cpu]} |" "" \
    "**Comparison of the evaluation on $gpu with the one on cpu: ${evaluate_comparison%%:*}.**" \
    "$(cell "${reason^}")."
}

# Prints the short form of evaluate_comparison for the summary table: the verdict, with the reason
# where it is unmeasured, and the numbers where it failed.
evaluate_summary() {
  case "$evaluate_comparison" in
    pass*) echo "pass" ;;
    *) echo "$evaluate_comparison" ;;
  esac
}
