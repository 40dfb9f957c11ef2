package dev.kiln.nn.golden;

import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.io.Safetensors;
import dev.kiln.nn.io.SafetensorsFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;

/**
 * Locates and loads the PyTorch reference cases: safetensors files of float64 tensors whose {@code
 * __metadata__} values are strings holding JSON, such as {@code "3"}, {@code "true"} or {@code
 * "[0.9, 0.999]"}.
 *
 * <p>The folder comes from the system property {@code kiln.golden}, which the Maven build passes
 * and which may be an empty string meaning unset, or else from the environment variable {@code
 * KILN_GOLDEN}. Tests that need the cases are skipped when neither is set.
 */
public final class GoldenCases {
  /** System property naming the folder of reference cases. */
  public static final String PROPERTY = "kiln.golden";

  /** Environment variable naming the folder when the property is unset. */
  public static final String ENVIRONMENT = "KILN_GOLDEN";

  private static boolean skipPrinted;

  private GoldenCases() {}

  /** Prints the reason for skipping once per test run, so it shows in the build output. */
  private static synchronized void printSkipOnce(String message) {
    if (!skipPrinted) {
      skipPrinted = true;
      System.err.println("Skipping the PyTorch parity tests: " + message);
    }
  }

  /**
   * Returns the folder of reference cases. Skips the calling test when no folder is configured, and
   * fails it when the configured folder does not exist.
   */
  public static Path folder() {
    String property = System.getProperty(PROPERTY);
    String environment = System.getenv(ENVIRONMENT);
    if ((property == null || property.isBlank())
        && (environment == null || environment.isBlank())) {
      printSkipOnce(
          "the golden folder is not set; pass -D"
              + PROPERTY
              + "=PATH to Maven or set "
              + ENVIRONMENT);
    }
    return resolve(property, environment);
  }

  /**
   * Returns the folder named by {@code property}, or by {@code environment} when the property is
   * null or blank, with the skip and failure rules of {@link #folder()}.
   */
  public static Path resolve(String property, String environment) {
    String setting = property;
    String source = "-D" + PROPERTY;
    if (setting == null || setting.isBlank()) {
      setting = environment;
      source = ENVIRONMENT;
    }
    if (setting == null || setting.isBlank()) {
      String message =
          "golden folder is not set: pass -D"
              + PROPERTY
              + "=PATH to Maven or set the environment variable "
              + ENVIRONMENT
              + " to the folder of PyTorch reference cases";
      Assumptions.abort(message);
    }

    Path folder = Path.of(setting);
    // Maven runs each module's tests in the module's folder, so a relative path such as
    // ../shared/golden is meant from the repository root, which the build passes as kiln.root.
    String root = System.getProperty("kiln.root");
    if (!folder.isAbsolute() && root != null && !root.isBlank()) {
      folder = Path.of(root).resolve(folder).normalize();
    }
    if (!Files.isDirectory(folder)) {
      fail(
          "golden folder "
              + folder.toAbsolutePath()
              + " (from "
              + source
              + ") does not exist or is not a folder; fix the path or unset "
              + source);
    }
    return folder;
  }

  /** Loads the case {@code fileName}, such as {@code "linear_3x7_to_5.safetensors"}. */
  public static GoldenCase load(String fileName) {
    Path file = folder().resolve(fileName);
    try {
      return new GoldenCase(Safetensors.read(file));
    } catch (IOException e) {
      throw new UncheckedIOException("failed to load golden case " + file, e);
    }
  }

  /** One reference case: its tensors, read on request, and its metadata. */
  public record GoldenCase(SafetensorsFile file) {

    /** Returns the tensor {@code name}, as stored (float64 for the PyTorch cases). */
    public Tensor tensor(String name) {
      try {
        return file.tensor(name);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /** Returns whether the case contains a tensor named {@code name}. */
    public boolean has(String name) {
      return file.contains(name);
    }

    /** Returns the metadata of the case, values as stored. */
    public Map<String, String> metadata() {
      return file.metadata();
    }

    /** Returns the raw metadata string of {@code key}; fails if the key is missing. */
    public String meta(String key) {
      String value = file.metadata().get(key);
      if (value == null) {
        throw new IllegalArgumentException(
            "golden case "
                + file.file().getFileName()
                + " has no metadata key \""
                + key
                + "\"; its keys are "
                + file.metadata().keySet());
      }
      return value;
    }

    /** Returns the metadata value of {@code key} parsed as a JSON number, such as "1e-08". */
    public double metaDouble(String key) {
      return parseDouble(key, meta(key).strip());
    }

    /** Returns the metadata value of {@code key} parsed as an integer, such as "3". */
    public int metaInt(String key) {
      String text = meta(key).strip();
      try {
        return Integer.parseInt(text);
      } catch (NumberFormatException e) {
        throw invalid(key, text, "an integer", e);
      }
    }

    /** Returns the metadata value of {@code key} parsed as a JSON boolean, "true" or "false". */
    public boolean metaBool(String key) {
      String text = meta(key).strip();
      return switch (text) {
        case "true" -> true;
        case "false" -> false;
        default -> throw invalid(key, text, "true or false", null);
      };
    }

    /** Returns the metadata value of {@code key} parsed as a JSON array of numbers. */
    public double[] metaDoubles(String key) {
      String text = meta(key).strip();
      if (!text.startsWith("[") || !text.endsWith("]")) {
        throw invalid(key, text, "a JSON array of numbers", null);
      }

      String body = text.substring(1, text.length() - 1).strip();
      if (body.isEmpty()) {
        return new double[0];
      }
      String[] parts = body.split(",", -1);
      double[] values = new double[parts.length];
      for (int i = 0; i < parts.length; i++) {
        values[i] = parseDouble(key, parts[i].strip());
      }
      return values;
    }

    private double parseDouble(String key, String text) {
      // Double.parseDouble also takes forms JSON lacks ("1d", "0x1p3"), so check the characters.
      if (!text.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?")) {
        throw invalid(key, text, "a JSON number", null);
      }
      return Double.parseDouble(text);
    }

    private IllegalArgumentException invalid(
        String key, String text, String expected, Throwable cause) {
      return new IllegalArgumentException(
          "golden case "
              + file.file().getFileName()
              + " metadata \""
              + key
              + "\" is \""
              + text
              + "\", expected "
              + expected,
          cause);
    }
  }
}
