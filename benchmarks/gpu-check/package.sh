#!/usr/bin/env bash
# Builds kiln and assembles dist/gpu-check/, a bundle that runs kiln's GPU check on a machine with
# no Java and no network. It contains a jlink runtime (runtime.tar.gz), kiln's jars with their runtime dependencies,
# the test classes of core and kernels, JUnit's console launcher and pytorch_bench.py. gpu-check.sh
# runs it there.
#
# Usage, from anywhere inside the repository: benchmarks/gpu-check/package.sh
# Environment: GPU_CHECK_MAX_MIB, the size limit of the bundle in MiB (default 56), because the
#   bundle travels with the working tree and the device machine takes 64 MiB in all.
# Needs: a JDK 25 (bin/java-home finds it), Maven, and ~/.m2 or Maven Central for JUnit's console
#   launcher. The kernels module builds kiln.fatbin only where nvcc is on the PATH; without it the
#   bundle still works, but the GPU can then run only the tests that bring their own PTX.
# The build runs `mvn package`, not `install`, so it leaves kiln's own artifacts out of ~/.m2.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
JAVA_HOME="$(bin/java-home)"
export JAVA_HOME
max_mib="${GPU_CHECK_MAX_MIB:-56}"
dist="$root/dist/gpu-check"
# Plain output for logs: -B and style.color=never turn Maven's colours off. Maven 3.8's console
# library, Jansi 2.4, would still write a colour reset (ESC [ 0 m) each time Maven installs or
# removes it. The project's .mvn/jvm.config sets jansi.noreset, which stops that.
maven=(mvn -B -q --no-transfer-progress -Dstyle.color=never -Dspotless.check.skip=true)
dependency_plugin=org.apache.maven.plugins:maven-dependency-plugin:3.9.0

say() {
  echo "package.sh: $*"
}

# ---- 1. Build and class paths. -DskipTests still compiles the test classes into each module's
# target. In the same Maven call, build-classpath writes each module's test class path (a superset
# of its runtime class path), so the bundle contains every jar that the tests and mains of core,
# kernels and benchmarks load. Because `package` runs in the whole reactor, Maven resolves kiln's
# own modules to the jars in their target folders, so nothing needs to be installed into ~/.m2,
# and the build also works offline (-o) once ~/.m2 has the third-party artifacts. ----
say "building kiln and resolving the class paths (mvn package -DskipTests)"
"${maven[@]}" package -DskipTests "$dependency_plugin:build-classpath" \
  -Dmdep.includeScope=test -Dmdep.outputFile=target/gpu-check-classpath.txt

jar_of() {
  local module="$1" artifact="$2"
  local jar
  jar="$(ls "$root/$module/target/$artifact"-*.jar 2>/dev/null | grep -v -e '-tests\.jar$' \
    -e '-sources\.jar$' | head -1 || true)"
  if [ -z "$jar" ]; then
    echo "package.sh: no jar of $artifact in $module/target after the build" >&2
    exit 1
  fi
  echo "$jar"
}

# ---- 2. JUnit's console launcher. ----
junit_version="$(sed -n 's:.*<junit.version>\(.*\)</junit.version>.*:\1:p' pom.xml | head -1)"
bom="$HOME/.m2/repository/org/junit/junit-bom/$junit_version/junit-bom-$junit_version.pom"
if [ ! -f "$bom" ]; then
  echo "package.sh: the JUnit BOM $junit_version is not in ~/.m2 ($bom); the build above should" \
    "have fetched it, so check the junit.version property in pom.xml" >&2
  exit 1
fi
# The console launcher belongs to the JUnit Platform, whose version the BOM pins (1.x for
# JUnit 5, the same number as Jupiter from JUnit 6 on).
platform_version="$(grep -A1 '<artifactId>junit-platform-launcher</artifactId>' "$bom" |
  sed -n 's:.*<version>\(.*\)</version>.*:\1:p' | head -1)"
console="org.junit.platform:junit-platform-console-standalone:$platform_version"
say "fetching $console"
"${maven[@]}" "$dependency_plugin:get" -Dartifact="$console" -Dtransitive=false
console_jar="$HOME/.m2/repository/org/junit/platform/junit-platform-console-standalone/$platform_version/junit-platform-console-standalone-$platform_version.jar"

# ---- 3. Assemble the class files. ----
say "assembling $dist"
rm -rf "$dist"
mkdir -p "$dist/lib" "$dist/junit" "$dist/test-classes"
cp "$console_jar" "$dist/junit/junit-platform-console-standalone.jar"
for module in kernels core nn keypoints benchmarks; do
  cp "$(jar_of "$module" "kiln-$module")" "$dist/lib/"
done
# Third-party jars: every entry of the class paths that is a jar outside the reactor, less what the
# console launcher already contains (JUnit, opentest4j, apiguardian) and JMH with its dependencies,
# which only the JMH benchmarks load. The reactor's own entries lie under $root, in the modules'
# target folders, and the loop above copied the jars among them. Each class path file ends without
# a newline, so each gets its own.
for module in core kernels benchmarks; do
  tr ':' '\n' <"$module/target/gpu-check-classpath.txt"
  echo
done | sort -u |
  grep -v -e '/org/junit/' -e '/org/opentest4j/' -e '/org/apiguardian/' -e '/org/openjdk/jmh/' \
    -e '/net/sf/jopt-simple/' -e '/org/apache/commons/commons-math3/' \
    -e '/dev/kiln/' -e '^$' |
  while read -r jar; do
    case "$jar" in
      "$root"/*) ;;
      *) cp "$jar" "$dist/lib/" ;;
    esac
  done
# jcuda-natives carries the JNI library of NVIDIA's PTX compiler (24 MB, about 9 MB zipped), which
# kiln never calls, because the driver compiles PTX itself in cuModuleLoadData.
for natives in "$dist"/lib/jcuda-natives-*.jar; do
  if command -v zip >/dev/null; then
    zip -q -d "$natives" 'lib/libJNvPTXCompiler-*' || true
  else
    say "WARNING: zip is not installed, so $natives keeps the PTX compiler's JNI library"
  fi
done
cp -r core/target/test-classes "$dist/test-classes/core"
# PyTorch's side of the training comparison, which gpu-check.sh runs with the GPU machine's own
# python3 where that has PyTorch with CUDA.
cp benchmarks/pytorch_bench.py "$dist/pytorch_bench.py"
cp -r kernels/target/test-classes "$dist/test-classes/kernels"
# Another build in the same tree, such as `mvn test -pl core`, may be recompiling the test classes
# while they are copied, so check that every test source has its class.
for module in core kernels; do
  for source in $(cd "$module/src/test/java" && find . -name '*.java'); do
    class="${source%.java}.class"
    if [ ! -f "$dist/test-classes/$module/$class" ]; then
      echo "package.sh: $module's test class ${class#./} is missing from the bundle, probably" \
        "because another build was compiling $module at the same time; run package.sh again" >&2
      exit 1
    fi
  done
done

# unzip exits with 11 when the jar has no fatbin, which pipefail would turn into an exit of this
# script before the warning below.
fatbin_bytes="$(unzip -l "$dist"/lib/kiln-kernels-*.jar dev/kiln/kernels/kiln.fatbin 2>/dev/null |
  awk '$4 == "dev/kiln/kernels/kiln.fatbin" { print $1 }' || true)"
if [ -z "$fatbin_bytes" ]; then
  say "WARNING: the kernels jar has no kiln.fatbin (nvcc missing or skipped), so on the GPU only" \
    "the tests with their own PTX can run"
fi

# ---- 4. The Java runtime, with only the modules that the jars and test classes use. ----
# jdeps resolves the inputs among themselves, and a --class-path that repeats them adds
# split-package warnings to the output. The last line is the module list.
modules="$("$JAVA_HOME/bin/jdeps" --print-module-deps --ignore-missing-deps --multi-release 25 \
  "$dist"/lib/*.jar "$dist/junit"/*.jar "$dist"/test-classes/* 2>&1 | tail -1)"
if ! [[ "$modules" =~ ^[a-z][a-z0-9.,]*$ ]]; then
  echo "package.sh: jdeps did not print a module list; its last line was: $modules" >&2
  exit 1
fi
# java.desktop stays, because the train stage of gpu-check.sh writes and decodes JPEG images and
# plots curves.png (javax.imageio, java.awt). It makes the packed runtime 9 MB larger, 32 MB in
# all (measured on 2026-12-05 with Temurin 25.0.3).
# jdk.incubator.vector: core's GEMM, listed again in case jdeps leaves out the incubator module.
# jdk.jfr: -XX:StartFlightRecording, to profile a training step on the GPU.
modules="$(echo "$modules,java.desktop,jdk.incubator.vector,jdk.jfr" | tr ',' '\n' | sort -u |
  paste -sd,)"
say "jlink modules: $modules"
# Without java.desktop, jlink's own --compress zip-6 made a 46 MB runtime, of which 24 MB are
# libjvm.so that it leaves as is, while an uncompressed image packed with tar and gzip was 23 MB.
# gpu-check.sh unpacks it in about a second.
runtime="$root/dist/gpu-check-runtime"
rm -rf "$runtime"
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --output "$runtime" \
  --strip-debug --no-man-pages --no-header-files 2>&1 |
  grep -v 'Using incubator modules' || true
if command -v strip >/dev/null; then
  # jlink's --strip-debug leaves libjvm.so's symbol table, about 5 MB of its 29 MB.
  strip --strip-unneeded "$runtime/lib/server/libjvm.so"
fi
"$runtime/bin/java" --add-modules jdk.incubator.vector -version 2>&1 | tail -1
tar -czf "$dist/runtime.tar.gz" -C "$runtime" .

# ---- 5. Manifest and size. ----
{
  echo "kiln GPU check bundle"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
  echo "java: $("$runtime/bin/java" -version 2>&1 | head -1)"
  echo "modules: $modules"
  echo "junit console launcher: $platform_version"
  echo "fatbin: ${fatbin_bytes:-missing} bytes"
  echo "files:"
  (cd "$dist" && find . -type f -name '*.jar' -printf '  %p %s\n' | sort)
} >"$dist/MANIFEST.txt"

size_bytes="$(du -sb "$dist" | cut -f1)"
size_mib="$(awk -v b="$size_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
say "bundle size: $size_mib MiB in $dist" \
  "(runtime.tar.gz $(du -sh "$dist/runtime.tar.gz" | cut -f1)," \
  "lib $(du -sh "$dist/lib" | cut -f1), junit $(du -sh "$dist/junit" | cut -f1)," \
  "test classes $(du -sh "$dist/test-classes" | cut -f1))"
if [ "$size_bytes" -gt $((max_mib * 1048576)) ]; then
  echo "package.sh: the bundle is $size_mib MiB, over the limit of $max_mib MiB; drop modules or" \
    "jars, or raise GPU_CHECK_MAX_MIB if the device machine takes more" >&2
  exit 1
fi
