package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Checks that {@code pytorch_bench.py} prints rates in full precision, and runs its GPU set-up
 * against stand-ins for the torch module, so that the precision settings are checked on a machine
 * without a GPU: one with the allow_tf32 flags of PyTorch 1.13 and one with the fp32_precision
 * settings of PyTorch 2.9 and later. The stand-ins report CUDA as available and start with TF32 and
 * cuDNN's benchmark mode on, so each setting must be turned off. They do not check that a real
 * PyTorch on a GPU honours the settings.
 */
class PytorchBenchTest {
  private static final Path PYTHON = Path.of("/usr/bin/python3");

  /**
   * Python lines that load pytorch_bench.py, whose path is the first argument, as {@code bench}.
   */
  private static final String LOAD_BENCH =
      """
      import importlib.util, sys
      from types import SimpleNamespace as Namespace
      spec = importlib.util.spec_from_file_location("pytorch_bench", sys.argv[1])
      bench = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(bench)
      """;

  private static final String FAKE_TORCH_RUN =
      LOAD_BENCH
          + """
      torch = Namespace(
          __version__="0.0-fake",
          version=Namespace(cuda="12.0"),
          device=lambda kind, index=None: Namespace(type=kind, index=index),
          cuda=Namespace(is_available=lambda: True, synchronize=lambda device: None,
                         get_device_name=lambda device: "fake GPU", device_count=lambda: 1),
          backends=Namespace(
              cudnn=Namespace(allow_tf32=True, benchmark=True, version=lambda: 8900),
              cuda=Namespace(matmul=Namespace(allow_tf32=True)),
              mkldnn=Namespace(is_available=lambda: False)))
      device, synchronize = bench.open_device(torch, "cuda")
      bench.print_info(torch, 1, device)
      """;

  @Test
  void ratesKeepFullPrecision() throws Exception {
    String program =
        LOAD_BENCH
            + """
        print(bench.join_rates([1 / 3, 6400.0, 12800.123456789012]))
        """;
    String output = runWithScript(program, new ProcessBuilder());

    assertEquals("0.3333333333333333,6400.0,12800.123456789011", output.strip());
  }

  @Test
  void cudaIndexPicksDevice() throws Exception {
    String program =
        FAKE_TORCH_RUN.replace("bench.print_info(torch, 1, device)\n", "")
            + """
            print("index", bench.open_device(torch, "cuda:0")[0].index)
            print("argument", bench.device_name("cuda:12"))
            try:
                bench.open_device(torch, "cuda:1")
            except SystemExit as stop:
                print("exit", stop.code)
            """;
    String output = runWithScript(program, new ProcessBuilder());

    List<String> lines = output.lines().toList();
    assertTrue(lines.contains("index 0"), output);
    assertTrue(lines.contains("argument cuda:12"), output);
    assertTrue(lines.contains("exit 3"), output);
    assertTrue(
        output.contains("--device cuda:1 was requested, but this machine has 1 CUDA device;"),
        output);
  }

  @Test
  void cudaTurnsTf32AndBenchmarkOff() throws Exception {
    ProcessBuilder builder = new ProcessBuilder();
    builder.environment().put("NVIDIA_TF32_OVERRIDE", "0");
    builder.environment().remove("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE");
    String output = runWithScript(FAKE_TORCH_RUN, builder);

    List<String> lines = output.lines().toList();
    assertTrue(lines.contains("info\tpytorch\tcudnn_allow_tf32\tFalse"), output);
    assertTrue(lines.contains("info\tpytorch\tmatmul_allow_tf32\tFalse"), output);
    assertTrue(lines.contains("info\tpytorch\tcudnn_benchmark\tFalse"), output);
    assertTrue(lines.contains("info\tpytorch\tNVIDIA_TF32_OVERRIDE\t0"), output);
    assertTrue(lines.contains("info\tpytorch\tTORCH_ALLOW_TF32_CUBLAS_OVERRIDE\tunset"), output);
  }

  /**
   * PyTorch 2.9 and later: the stand-in has the fp32_precision settings, and its old allow_tf32
   * flags raise as a real PyTorch does where the two kinds were mixed, so the script must use the
   * new settings alone.
   */
  @Test
  void cudaUsesNewPrecisionSettings() throws Exception {
    String program =
        LOAD_BENCH
            + """
        class Legacy:
            def __getattr__(self, name):
                if name == "allow_tf32":
                    raise RuntimeError("mix of the legacy and new APIs")
                raise AttributeError(name)
            def __setattr__(self, name, value):
                if name == "allow_tf32":
                    raise RuntimeError("mix of the legacy and new APIs")
                object.__setattr__(self, name, value)
        matmul, cudnn = Legacy(), Legacy()
        matmul.fp32_precision = "tf32"
        cudnn.fp32_precision = "none"
        cudnn.conv = Namespace(fp32_precision="tf32")
        cudnn.rnn = Namespace(fp32_precision="tf32")
        cudnn.benchmark = True
        cudnn.version = lambda: 91300
        torch = Namespace(
            __version__="2.11-fake",
            version=Namespace(cuda="13.0"),
            device=lambda kind, index=None: Namespace(type=kind, index=index),
            cuda=Namespace(is_available=lambda: True, synchronize=lambda device: None,
                           get_device_name=lambda device: "fake GPU", device_count=lambda: 1),
            backends=Namespace(cudnn=cudnn, cuda=Namespace(matmul=matmul),
                               mkldnn=Namespace(is_available=lambda: False)))
        device, synchronize = bench.open_device(torch, "cuda")
        bench.print_info(torch, 1, device)
        print("settings", cudnn.fp32_precision, cudnn.rnn.fp32_precision)
        """;
    String output = runWithScript(program, new ProcessBuilder());

    List<String> lines = output.lines().toList();
    assertTrue(lines.contains("info\tpytorch\tmatmul_fp32_precision\tieee"), output);
    assertTrue(lines.contains("info\tpytorch\tcudnn_conv_fp32_precision\tieee"), output);
    assertTrue(lines.contains("info\tpytorch\tcudnn_benchmark\tFalse"), output);
    assertTrue(lines.contains("settings ieee ieee"), output);
    assertFalse(output.contains("allow_tf32"), output);
  }

  /**
   * A BLAS library without OpenBLAS's functions stops the timing commands with status 4 and the
   * install command. libc plays the reference BLAS, because it loads everywhere and has no
   * openblas_get_corename. PyTorch built with MKL contains its BLAS and passes, and so does any
   * PyTorch on a GPU, where the products run in cuBLAS.
   */
  @Test
  void blasOtherThanOpenBlasStops() throws Exception {
    String program =
        LOAD_BENCH
            + """
        bench.blas_libraries = lambda: ["libc.so.6"]
        def outcome(check):
            try:
                check()
                print("passed")
            except SystemExit as stop:
                print("exit", stop.code)
        def build(blas):
            return Namespace(__config__=Namespace(show=lambda: f" - BLAS_INFO={blas}, LAPACK_INFO=x"))
        cpu, gpu = Namespace(type="cpu"), Namespace(type="cuda")
        outcome(lambda: bench.require_openblas("NumPy"))
        outcome(lambda: bench.require_cpu_blas(build("generic"), cpu))
        outcome(lambda: bench.require_cpu_blas(build("mkl"), cpu))
        outcome(lambda: bench.require_cpu_blas(build("generic"), gpu))
        bench.blas_libraries = lambda: []
        outcome(lambda: bench.require_openblas("NumPy"))
        """;
    String output = runWithScript(program, new ProcessBuilder());

    List<String> outcomes = output.lines().filter(line -> !line.contains(": ")).toList();
    assertEquals(List.of("exit 4", "exit 4", "passed", "passed", "exit 4"), outcomes, output);
    List<String> messages = output.lines().filter(line -> line.contains(": ")).toList();
    assertEquals(3, messages.size(), output);
    assertTrue(
        messages.get(0).startsWith("pytorch_bench.py: NumPy calls the BLAS library libc.so.6,"),
        output);
    assertTrue(messages.get(1).contains("PyTorch (BLAS_INFO=generic) calls"), output);
    assertTrue(messages.get(2).contains("calls the BLAS library none loaded,"), output);
    assertTrue(messages.get(0).endsWith("apt-get install libopenblas0-openmp, and rerun"), output);
  }

  /**
   * The OpenBLAS in NumPy 2.x wheels (scipy-openblas) names its functions
   * scipy_openblas_get_corename64_ and so on, and it passes the check like Debian's OpenBLAS. A
   * stand-in replaces the library, which this machine may lack.
   */
  @Test
  void scipyOpenBlasPasses() throws Exception {
    String program =
        LOAD_BENCH
            + """
        def function(result):
            return lambda: result
        library = Namespace(
            scipy_openblas_get_corename64_=function(b"Haswell"),
            scipy_openblas_get_config64_=function(b"OpenBLAS 0.3.31 USE64BITINT"),
            scipy_openblas_get_parallel64_=function(1))
        bench.ctypes.CDLL = lambda path: library
        path = "/venv/numpy.libs/libscipy_openblas64_-32a4b2a6.so"
        bench.blas_libraries = lambda: [path]
        print(bench.openblas_info())
        print(bench.openblas_threading(path))
        bench.require_openblas("NumPy")
        print("passed")
        """;
    String output = runWithScript(program, new ProcessBuilder());

    List<String> lines = output.lines().toList();
    assertEquals(3, lines.size(), output);
    assertEquals(
        "('/venv/numpy.libs/libscipy_openblas64_-32a4b2a6.so', 'Haswell',"
            + " 'OpenBLAS 0.3.31 USE64BITINT')",
        lines.get(0));
    assertEquals("pthreads", lines.get(1));
    assertEquals("passed", lines.get(2));
  }

  /**
   * An OpenBLAS that runs its own pthreads beside PyTorch's OpenMP threads passes the check with a
   * warning, because the two thread pools compete for the CPUs. OpenBLAS's OpenMP build passes
   * without one. Stand-ins replace the OpenBLAS functions, which this machine may lack.
   */
  @Test
  void pthreadOpenBlasBesideOpenMpWarns() throws Exception {
    String program =
        LOAD_BENCH
            + """
        bench.openblas_info = lambda: ("libopenblas.so.0", "Zen", "OpenBLAS 0.3.21")
        torch = Namespace(__config__=Namespace(
            show=lambda: " - BLAS_INFO=generic, LAPACK_INFO=generic",
            parallel_info=lambda: "ATen parallel backend: OpenMP"))
        for threading in ("pthreads", "OpenMP"):
            bench.openblas_threading = lambda path: threading
            print("OpenBLAS on", threading, flush=True)
            bench.require_cpu_blas(torch, Namespace(type="cpu"))
            sys.stderr.flush()
        """;
    String output = runWithScript(program, new ProcessBuilder());

    List<String> lines = output.lines().toList();
    assertEquals(3, lines.size(), output);
    assertEquals("OpenBLAS on pthreads", lines.get(0));
    assertTrue(lines.get(1).startsWith("pytorch_bench.py: warning: PyTorch runs"), output);
    assertTrue(lines.get(1).contains("apt-get install libopenblas0-openmp"), output);
    assertTrue(lines.get(1).endsWith("apt-get remove libopenblas0-pthread"), output);
    assertEquals("OpenBLAS on OpenMP", lines.get(2));
  }

  /**
   * Runs the Python {@code program} with pytorch_bench.py's path as its argument, in the
   * environment of {@code builder}, and returns its output after checking that it exited with 0.
   * Skips the test where /usr/bin/python3 is missing.
   */
  private static String runWithScript(String program, ProcessBuilder builder) throws Exception {
    assumeTrue(Files.isExecutable(PYTHON), PYTHON + " is not installed");
    Path script = Path.of("pytorch_bench.py").toAbsolutePath();
    Process process =
        builder
            .command(PYTHON.toString(), "-c", program, script.toString())
            .redirectErrorStream(true)
            .start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "python3 timed out");
    assertEquals(0, process.exitValue(), output);
    return output;
  }
}
