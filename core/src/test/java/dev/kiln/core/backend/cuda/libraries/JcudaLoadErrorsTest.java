package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Tests the one-line summaries of JCuda's load errors and the JCudnn version explanation. */
class JcudaLoadErrorsTest {

  /** The shape of JCuda 12.6's message, shortened: two attempts with their stack traces. */
  private static final String MESSAGE =
      """
      Error while loading native library "JCublas2-12.6.0-linux-x86_64"
      Operating system name: Linux
      ---(start of nested stack traces)---
      Stack trace from the attempt to load the library as a file:
      java.lang.UnsatisfiedLinkError: no JCublas2-12.6.0-linux-x86_64 in java.library.path
      \tat java.base/java.lang.ClassLoader.loadLibrary(ClassLoader.java:2285)
      Stack trace from the attempt to load the library as a resource:
      java.lang.UnsatisfiedLinkError: /tmp/libJCublas2.so: libcublas.so.12: cannot open shared\
       object file: No such file or directory
      \tat java.base/jdk.internal.loader.NativeLibraries.load(Native Method)
      ---(end of nested stack traces)---
      """;

  @Test
  void keepsFirstLineAndResourceCause() {
    assertEquals(
        "Error while loading native library \"JCublas2-12.6.0-linux-x86_64\": "
            + "java.lang.UnsatisfiedLinkError: /tmp/libJCublas2.so: libcublas.so.12: cannot open"
            + " shared object file: No such file or directory",
        JcudaLoadErrors.summarize(new UnsatisfiedLinkError(MESSAGE)));
  }

  @Test
  void oneLineErrorKeepsItsClass() {
    assertEquals(
        "java.lang.NoClassDefFoundError: Could not initialize class jcuda.jcublas.JCublas2",
        JcudaLoadErrors.summarize(
            new NoClassDefFoundError("Could not initialize class jcuda.jcublas.JCublas2")));
    assertEquals(
        "java.lang.UnsatisfiedLinkError", JcudaLoadErrors.summarize(new UnsatisfiedLinkError()));
  }

  @Test
  void jcudnnMissingJniLibraryIsExplained() {
    String reason =
        JcudnnDnn.loadFailure(
            "Error while loading native library \"JCudnn-12.6.0-linux-x86_64\":"
                + " java.io.IOException: No resource found with name"
                + " '/lib/libJCudnn-12.6.0-linux-x86_64.so'",
            "12.6.0");

    assertTrue(reason.startsWith("JCudnn 11.7.0 failed to load"), reason);
    assertTrue(reason.contains("named after JCuda 12.6.0"), reason);
    assertTrue(reason.contains("even where libcudnn.so.8 exists"), reason);
    assertTrue(reason.endsWith("kiln's JCuda path therefore has no cuDNN"), reason);
  }

  @Test
  void jcudnnMissingCudnnNamesLibrary() {
    String reason =
        JcudnnDnn.loadFailure(
            "java.lang.UnsatisfiedLinkError: libcudnn.so.8: cannot open shared object file",
            "11.7.0");

    assertTrue(reason.endsWith("it needs libcudnn.so.8 (cuDNN 8) on the library path"), reason);
  }
}
