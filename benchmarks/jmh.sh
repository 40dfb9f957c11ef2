#!/usr/bin/env bash
# Runs the JMH benchmarks of this module and prints JMH's report and then a summary table with
# ms/call, GFLOP/s and images/s. Arguments go to JMH: a regular expression selects benchmarks, and
# -p NAME=VALUE narrows a parameter, for example
#   benchmarks/jmh.sh TrainingBenchmark -p model=default -p batch=32
#   benchmarks/jmh.sh LayerForwardBenchmark -p layer=default/4-conv
#   benchmarks/jmh.sh cpu.GemmBenchmark -p shape=1024x1024x1024 -p path=VECTOR
# The expression matches anywhere in the full name, so GemmBenchmark alone also selects
# DeviceGemmBenchmark, which needs a GPU.
# With no arguments it runs everything, which takes about an hour on 2 cores.
# Build first: JAVA_HOME=$(bin/java-home) mvn -B package -DskipTests -pl benchmarks -am
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
JAVA_HOME="$("$here/../bin/java-home")"
classes="$here/target/classes"
if [ ! -f "$classes/META-INF/BenchmarkList" ] || [ ! -f "$here/target/classpath.txt" ]; then
  echo "jmh.sh: the benchmarks are not built; run from $(dirname "$here"):" >&2
  echo "  JAVA_HOME=\$(bin/java-home) mvn -B package -DskipTests -pl benchmarks -am" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  # "Everything" means everything that runs on the CPU: the GPU product needs a CUDA device.
  set -- -e DeviceGemmBenchmark
fi
exec "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -cp "$classes:$(cat "$here/target/classpath.txt")" dev.kiln.benchmarks.JmhMain "$@"
