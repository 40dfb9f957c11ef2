package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.ops.Convolution;
import dev.kiln.core.ops.Elementwise;
import dev.kiln.core.ops.MatMul;
import dev.kiln.core.ops.Pooling;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs a small training step in a child JVM that lacks the jdk.incubator.vector module, as a
 * service that embeds kiln without {@code --add-modules jdk.incubator.vector} does, and compares
 * its results with the same step in this JVM, which has the module and takes the Vector API paths.
 */
class NoVectorModuleTest {

  private static final String VECTOR_MODULE = "jdk.incubator.vector";

  /** JVM option that the CPU backend's notice names when the module is missing. */
  private static final String NOTICE_OPTION = "--add-modules jdk.incubator.vector";

  /** Input [1, 8, 124, 124], so the first 3x3 convolution's column matrix is 72 x (122 * 122). */
  private static final int CHANNELS = 8;

  private static final int SIZE = 124;

  /** Name of the child's first output line, 1 when it has the module and 0 when not. */
  private static final String PRESENT = "vector-module-present";

  private static final String CLASS_LOG = "classes.log";

  /** Seconds the child JVM may run. It took about 0.5 s on a 2-core x86-64 container. */
  private static final long CHILD_TIMEOUT_SECONDS = 120;

  /** Class-load log lines: "[0.031s][info][class,load] dev.kiln.X source: ...". */
  private static final Pattern LOADED_CLASS =
      Pattern.compile("\\]\\s(dev\\.kiln\\.\\S+)\\ssource:");

  /** The one run of the child JVM, which all tests here inspect. */
  private static Child child;

  @TempDir static Path childDir;

  @BeforeAll
  static void runChildOnce() throws IOException, InterruptedException {
    child = runChild(childDir);
  }

  @Test
  void testJvmHasVectorModule() {
    assertTrue(
        ModuleLayer.boot().findModule(VECTOR_MODULE).isPresent(),
        "the core tests must run with " + NOTICE_OPTION + ", as the surefire argLine sets");
    assertTrue(VectorSupport.available(), "VectorSupport misses the module");
  }

  @Test
  void workloadReachesVectorPaths() {
    long columnSize = (long) CHANNELS * 3 * 3 * (SIZE - 2) * (SIZE - 2);
    assertTrue(
        columnSize >= Conv2dKernels.IMPLICIT_MIN_COLUMN_SIZE,
        "the first convolution must take the implicit-GEMM method, column size " + columnSize);
  }

  @Test
  void childRunsWithoutVectorModule() {
    assertEquals(0, child.exitCode(), "child JVM failed:\n" + child.stderr());
    float[] present = parse(child.stdout()).get(PRESENT);
    assertEquals(0f, present[0], "the child JVM must run without " + VECTOR_MODULE);
  }

  @Test
  void plainPathsMatchVectorPaths() {
    assertEquals(0, child.exitCode(), "child JVM failed:\n" + child.stderr());
    Map<String, float[]> actual = parse(child.stdout());
    actual.remove(PRESENT);

    Map<String, float[]> expected = Workload.run();
    assertEquals(expected.keySet(), actual.keySet(), "result names");
    for (Map.Entry<String, float[]> entry : expected.entrySet()) {
      String name = entry.getKey();
      KernelAsserts.assertAllClose(
          toDoubles(entry.getValue()),
          toDoubles(actual.get(name)),
          KernelAsserts.F32_TOLERANCE,
          name);
    }
  }

  @Test
  void childLogsNoticeOnce() {
    assertEquals(0, child.exitCode(), "child JVM failed:\n" + child.stderr());
    long notices = child.stderr().lines().filter(line -> line.contains(NOTICE_OPTION)).count();
    assertEquals(1, notices, "notice lines in the child's log:\n" + child.stderr());
  }

  @Test
  void childLoadsNoVectorApiClass() throws IOException {
    assertEquals(0, child.exitCode(), "child JVM failed:\n" + child.stderr());
    List<String> loaded = loadedKilnClasses(childDir.resolve(CLASS_LOG));
    assertTrue(loaded.contains(Gemm.class.getName()), "class-load log lists no Gemm: " + loaded);
    for (String name : loaded) {
      assertFalse(
          referencesVectorApi(name), name + " names jdk.incubator.vector, yet the child loaded it");
    }
  }

  /**
   * The step that both JVMs run: a convolution large enough for the implicit-GEMM method, ELU, 2x2
   * max pooling, a strided convolution through im2col and the GEMM, ReLU and a linear layer, with
   * the backward pass, plus one plain GEMM. With the module these steps run in VectorGemm,
   * ConvPanels, StridedPanels, VectorMath, VectorElementwise and VectorPool2d.
   */
  static final class Workload {

    private Workload() {}

    /** Prints the presence of the module, then one line per result: the name and its values. */
    public static void main(String[] args) {
      boolean present = ModuleLayer.boot().findModule(VECTOR_MODULE).isPresent();
      StringBuilder out = new StringBuilder();
      out.append(PRESENT).append(' ').append(present ? 1f : 0f).append('\n');
      for (Map.Entry<String, float[]> entry : run().entrySet()) {
        out.append(entry.getKey());
        for (float value : entry.getValue()) {
          out.append(' ').append(value);
        }
        out.append('\n');
      }
      System.out.print(out);
      System.out.flush();
    }

    static Map<String, float[]> run() {
      Random random = new Random(20);
      Tensor x = gaussian(random, 1, CHANNELS, SIZE, SIZE).requiresGrad(true);
      Tensor w1 = gaussian(random, 8, CHANNELS, 3, 3).mul(0.1).detach().requiresGrad(true);
      Tensor b1 = gaussian(random, 8).mul(0.1).detach().requiresGrad(true);
      Tensor w2 = gaussian(random, 4, 8, 3, 3).mul(0.1).detach().requiresGrad(true);
      Tensor b2 = gaussian(random, 4).mul(0.1).detach().requiresGrad(true);
      int features = 4 * 30 * 30;
      Tensor w3 = gaussian(random, 10, features).mul(0.02).detach().requiresGrad(true);
      Tensor b3 = gaussian(random, 10).requiresGrad(true);

      int[] ones = {1, 1};
      int[] zeros = {0, 0};
      Tensor h = Convolution.conv2d(x, w1, b1, ones, zeros, ones);
      h = Elementwise.elu(h, 1.0);
      h = Pooling.maxPool2d(h, new int[] {2, 2}, new int[] {2, 2}, zeros);
      h = Convolution.conv2d(h, w2, b2, new int[] {2, 2}, zeros, ones);
      h = Elementwise.relu(h);
      Tensor y = MatMul.linear(h.flatten(), w3, b3);
      Tensor loss = y.mul(y).sum();
      loss.backward();

      Map<String, float[]> results = new LinkedHashMap<>();
      results.put("loss", loss.toFloatArray());
      results.put("output", y.toFloatArray());
      results.put("grad-x", x.grad().toFloatArray());
      results.put("grad-w1", w1.grad().toFloatArray());
      results.put("grad-b1", b1.grad().toFloatArray());
      results.put("grad-w2", w2.grad().toFloatArray());
      results.put("grad-b2", b2.grad().toFloatArray());
      results.put("grad-w3", w3.grad().toFloatArray());
      results.put("grad-b3", b3.grad().toFloatArray());
      results.put("gemm", gemm(random));
      return results;
    }

    /** Returns C = A B for A 64 x 96 and B 96 x 80, far above {@link Gemm#VECTOR_MIN_WORK}. */
    private static float[] gemm(Random random) {
      int m = 64;
      int n = 80;
      int k = 96;
      Storage a = Storage.wrap(values(random, m * k));
      Storage b = Storage.wrap(values(random, k * n));
      Storage c = Storage.wrap(new float[m * n]);
      Gemm.gemm(false, false, m, n, k, a, 0, b, 0, c, 0, false);
      return c.floats();
    }

    private static Tensor gaussian(Random random, int... shape) {
      int size = 1;
      for (int dim : shape) {
        size *= dim;
      }
      return Tensor.of(values(random, size), shape);
    }

    private static float[] values(Random random, int size) {
      float[] values = new float[size];
      for (int i = 0; i < size; i++) {
        values[i] = (float) random.nextGaussian();
      }
      return values;
    }
  }

  private record Child(int exitCode, String stdout, String stderr) {}

  /**
   * Starts {@link Workload} in a JVM of this JDK with this test's class path and without the
   * module, logging its class loads to {@link #CLASS_LOG} in {@code dir}.
   */
  private static Child runChild(Path dir) throws IOException, InterruptedException {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> command = new ArrayList<>();
    command.add(java.toString());
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add("-Dkiln.threads=2");
    command.add("-Xlog:class+load=info:file=" + dir.resolve(CLASS_LOG));
    command.add(Workload.class.getName());
    ProcessBuilder builder = new ProcessBuilder(command);
    // These variables add JVM options to every launch, and one of them could add the module back.
    builder.environment().remove("JDK_JAVA_OPTIONS");
    builder.environment().remove("JAVA_TOOL_OPTIONS");
    builder.environment().remove("_JAVA_OPTIONS");
    Path stdout = dir.resolve("stdout.txt");
    Path stderr = dir.resolve("stderr.txt");
    builder.redirectOutput(stdout.toFile());
    builder.redirectError(stderr.toFile());
    Process process = builder.start();
    if (!process.waitFor(CHILD_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("child JVM timed out after " + CHILD_TIMEOUT_SECONDS + " s");
    }
    return new Child(process.exitValue(), Files.readString(stdout), Files.readString(stderr));
  }

  private static Map<String, float[]> parse(String stdout) {
    Map<String, float[]> results = new LinkedHashMap<>();
    for (String line : stdout.split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      String[] fields = line.trim().split(" ");
      float[] values = new float[fields.length - 1];
      for (int i = 1; i < fields.length; i++) {
        values[i - 1] = Float.parseFloat(fields[i]);
      }
      results.put(fields[0], values);
    }
    assertNotNull(results.get(PRESENT), "child output:\n" + stdout);
    return results;
  }

  /** Returns the names of the dev.kiln classes in the log, hidden classes excepted. */
  private static List<String> loadedKilnClasses(Path classLog) throws IOException {
    List<String> names = new ArrayList<>();
    for (String line : Files.readAllLines(classLog)) {
      Matcher matcher = LOADED_CLASS.matcher(line);
      // Hidden classes, such as lambdas, have a '/' in their name and no class file.
      if (matcher.find() && !matcher.group(1).contains("/")) {
        names.add(matcher.group(1));
      }
    }
    return names;
  }

  /** Tests whether the class file of {@code className} names a jdk.incubator.vector type. */
  private static boolean referencesVectorApi(String className) throws IOException {
    String resource = "/" + className.replace('.', '/') + ".class";
    try (InputStream in = NoVectorModuleTest.class.getResourceAsStream(resource)) {
      assertNotNull(in, "class file " + resource + " not found");
      String bytes = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
      return bytes.contains("jdk/incubator/vector");
    }
  }

  private static double[] toDoubles(float[] values) {
    double[] doubles = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      doubles[i] = values[i];
    }
    return doubles;
  }
}
