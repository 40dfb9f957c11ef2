package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.CudaException;
import dev.kiln.core.backend.cuda.DeviceOutOfMemoryException;
import dev.kiln.core.backend.cuda.libraries.LibraryLoadException;
import dev.kiln.core.backend.cuda.libraries.VendorException;
import dev.kiln.core.backend.cuda.libraries.VendorSelection;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Properties;
import jcuda.driver.CUresult;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * How {@code kiln} reports a failure of the GPU during a command, as one line with the command's
 * name and advice for a command-line user and no stack trace, and an invalid {@code
 * -Dkiln.cuda.vendor}. No GPU is needed, because the exceptions are constructed here.
 */
class MainTest {

  private final StringWriter err = new StringWriter();

  /** Reports {@code error} as thrown by {@code command}, after parsing {@code arguments}. */
  private int report(Exception error, String command, String... arguments) throws Exception {
    CommandLine kiln = Main.newCommandLine();
    String[] line = new String[arguments.length + 1];
    line[0] = command;
    System.arraycopy(arguments, 0, line, 1, arguments.length);
    kiln.parseArgs(line);
    CommandLine subcommand = kiln.getSubcommands().get(command);
    subcommand.setErr(new PrintWriter(err, true));
    return Main.reportFailure(error, subcommand, null);
  }

  @Test
  void outOfMemoryAdvisesBatchSize() throws Exception {
    DeviceOutOfMemoryException error =
        new DeviceOutOfMemoryException(
            "out of memory on cuda:0: could not allocate 4.00 MiB.",
            "Use a smaller batch size, or call emptyCache().",
            4 << 20);

    int status = report(error, "train", "--batch-size", "8");

    String printed = err.toString();
    assertEquals(1, status);
    assertTrue(
        printed.startsWith("kiln train: out of memory on cuda:0: could not allocate 4.00 MiB."),
        printed);
    assertTrue(printed.contains("Lower --batch-size, which is 8 in this run."), printed);
    assertFalse(printed.contains("emptyCache"), printed);
    assertFalse(printed.contains("\tat "), printed);
  }

  @Test
  void outOfMemoryOnResumeNamesNewRun() throws Exception {
    DeviceOutOfMemoryException error =
        new DeviceOutOfMemoryException("out of memory on cuda:0.", "Call emptyCache().", 1);

    int status = report(error, "train", "--resume", "runs/x");

    String printed = err.toString();
    assertEquals(1, status);
    assertTrue(printed.contains("A resumed run keeps the batch size it started with"), printed);
    assertFalse(printed.contains("which is"), printed);
  }

  @Test
  void outOfMemoryWithoutBatchSizeOption() throws Exception {
    DeviceOutOfMemoryException error =
        new DeviceOutOfMemoryException("out of memory on cuda:0.", "Call emptyCache().", 1);

    int status = report(error, "evaluate", "--checkpoint", "best.safetensors");

    String printed = err.toString();
    assertEquals(1, status);
    assertTrue(printed.startsWith("kiln evaluate: out of memory on cuda:0. Stop other"), printed);
    assertTrue(printed.contains("--device cpu"), printed);
    assertFalse(printed.contains("emptyCache"), printed);
  }

  @Test
  void driverErrorPrintedWithAdvice() throws Exception {
    CudaException error =
        CudaException.failure(CUresult.CUDA_ERROR_LAUNCH_FAILED, "cuLaunchKernel", "name=relu");

    int status = report(error, "train");

    String printed = err.toString();
    assertEquals(1, status);
    assertTrue(printed.startsWith("kiln train: cuLaunchKernel(name=relu) failed with"), printed);
    assertTrue(printed.contains("CUDA_ERROR_LAUNCH_FAILED"), printed);
    assertTrue(printed.contains("check the GPU with nvidia-smi"), printed);
    assertFalse(printed.contains("\tat "), printed);
  }

  @Test
  void libraryErrorNamesKilnKernels() throws Exception {
    VendorException error =
        new VendorException("cudnnConvolutionForward", 2000, "CUDNN_STATUS_BAD_PARAM", "");

    int status = report(error, "predict", "--checkpoint", "best.safetensors", "a.jpg");

    String printed = err.toString();
    assertEquals(1, status);
    assertTrue(
        printed.startsWith(
            "kiln predict: cudnnConvolutionForward failed with status 2000"
                + " (CUDNN_STATUS_BAD_PARAM)."),
        printed);
    assertTrue(printed.contains("KILN_JAVA_OPTIONS=-Dkiln.cuda.vendor=kiln"), printed);
  }

  @Test
  void libraryLoadErrorPrintsMessage() throws Exception {
    LibraryLoadException error = new LibraryLoadException("/lib/libcudnn.so.9 lacks 3 functions");

    int status = report(error, "train");

    assertEquals(1, status);
    assertEquals("kiln train: /lib/libcudnn.so.9 lacks 3 functions", err.toString().strip());
  }

  /** Runs {@code kiln predict} of a missing checkpoint with {@code -Dkiln.cuda.vendor=vendor}. */
  private int predictWithVendor(String vendor) {
    String previous = System.getProperty(VendorSelection.PROPERTY);
    System.setProperty(VendorSelection.PROPERTY, vendor);
    try {
      CommandLine kiln = Main.newCommandLine();
      kiln.setOut(new PrintWriter(new StringWriter(), true));
      kiln.setErr(new PrintWriter(err, true));
      return kiln.execute(
          "predict", "--device", "cpu", "--checkpoint", "missing.safetensors", "a.jpg");
    } finally {
      if (previous == null) {
        System.clearProperty(VendorSelection.PROPERTY);
      } else {
        System.setProperty(VendorSelection.PROPERTY, previous);
      }
    }
  }

  @Test
  void invalidVendorFailsEvenOnCpu() {
    int status = predictWithVendor("bogus");

    String printed = err.toString().strip();
    assertEquals(2, status);
    assertTrue(
        printed.startsWith("kiln predict: system property kiln.cuda.vendor=bogus is invalid"),
        printed);
    assertTrue(printed.contains("use auto, jcuda, direct or kiln"), printed);
    assertTrue(printed.contains("KILN_JAVA_OPTIONS"), printed);
  }

  @Test
  void validVendorLetsCommandRun() {
    int status = predictWithVendor(" Direct ");

    String printed = err.toString().strip();
    assertEquals(1, status);
    assertTrue(printed.contains("--checkpoint not found"), printed);
  }

  /** fit-batch's 1 means that the batch was not memorized, so an invalid learning rate gets 2. */
  @Test
  void fitBatchErrorExitsTwo() {
    CommandLine kiln = Main.newCommandLine();
    kiln.setOut(new PrintWriter(new StringWriter()));
    kiln.setErr(new PrintWriter(err, true));

    int status = kiln.execute("fit-batch", "--lr", "-1", "--steps", "1");

    assertEquals(2, status, err.toString());
    assertTrue(err.toString().startsWith("kiln fit-batch: "), err.toString());
  }

  /** predict's images would take the misspelled option, so picocli reports it missing. */
  @Test
  void misspelledRequiredOptionIsUnknown() {
    CommandLine kiln = Main.newCommandLine();
    kiln.setOut(new PrintWriter(new StringWriter()));
    kiln.setErr(new PrintWriter(err, true));

    int status = kiln.execute("predict", "--checkpint", "model.safetensors", "a.jpg");

    String printed = err.toString();
    assertEquals(2, status, printed);
    assertTrue(printed.startsWith("Unknown option: '--checkpint'"), printed);
    assertTrue(printed.contains("Possible solutions: --checkpoint"), printed);
  }

  @Test
  void otherExceptionKeepsStackTrace() {
    NullPointerException bug = new NullPointerException("a bug");

    Exception thrown = assertThrows(Exception.class, () -> report(bug, "train"));

    assertSame(bug, thrown);
    assertEquals("", err.toString());
  }

  @Test
  void heapMessageTakesCauseAndSmallMaximum() {
    CommandLine.Model.CommandSpec train =
        Main.newCommandLine().getSubcommands().get("train").getCommandSpec();
    OutOfMemoryError wrapped = new OutOfMemoryError();
    wrapped.initCause(new OutOfMemoryError("Java heap space"));

    String small = Main.describeHeapExhaustion(wrapped, train, 300L << 20);
    String large = Main.describeHeapExhaustion(new OutOfMemoryError(), train, 3L << 30);

    assertTrue(small.startsWith("out of Java heap memory (Java heap space): "), small);
    assertTrue(small.contains("its maximum of 300 MiB"), small);
    assertTrue(small.contains("such as -Xmx2g"), small);
    assertTrue(large.startsWith("out of Java heap memory: "), large);
    assertTrue(large.contains("its maximum of 3.0 GiB"), large);
    assertTrue(large.contains("such as -Xmx6g"), large);
  }

  @Test
  void loggingDefaultsFillGaps() {
    Properties properties = new Properties();
    properties.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "debug");

    Main.setLoggingDefaults(properties);

    assertEquals("debug", properties.getProperty("org.slf4j.simpleLogger.defaultLogLevel"));
    assertEquals("System.err", properties.getProperty("org.slf4j.simpleLogger.logFile"));
    assertEquals(
        null,
        properties.getProperty("org.slf4j.simpleLogger.log.dev.kiln.keypoints.data.FaceDataset"),
        "a level the user set applies to the dataset's lines too");
  }

  @Test
  void loggingDefaultsQuietDatasetWarnings() {
    Properties properties = new Properties();

    Main.setLoggingDefaults(properties);

    assertEquals("warn", properties.getProperty("org.slf4j.simpleLogger.defaultLogLevel"));
    assertEquals(
        "error",
        properties.getProperty("org.slf4j.simpleLogger.log.dev.kiln.keypoints.data.FaceDataset"));
  }
}
