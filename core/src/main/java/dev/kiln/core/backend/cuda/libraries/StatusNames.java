package dev.kiln.core.backend.cuda.libraries;

import java.util.Map;
import java.util.function.IntFunction;

/**
 * Names of cuBLAS and cuDNN status codes, for messages.
 *
 * <p>The loaded library is always asked first ({@code cublasGetStatusString}, {@code
 * cudnnGetErrorString}), because cuDNN 9 renumbered its status codes: {@code
 * CUDNN_STATUS_BAD_PARAM} is 3 in cuDNN 8 and 2000 in cuDNN 9, so a table compiled into kiln would
 * name the wrong error on the other version. The tables here are the fallback for messages written
 * when the library is not loaded, for example in a reason that explains why it was not.
 */
public final class StatusNames {

  /** The cuDNN version whose numbering {@link #CUDNN_9} contains. */
  public static final String CUDNN_TABLE_VERSION = "cuDNN 9";

  /**
   * cuDNN 9 status codes, from {@code cudnnStatus_t} in cuDNN 9.6's {@code cudnn_graph.h}. The
   * thousands digit is the category (1 uncategorized, 2 bad parameter, 3 not supported, 4 internal
   * error, 5 execution failed), so an unknown code still names its category. The header's 1xxx
   * range is headed "Uncategorized errors" and mixes setup failures such as {@code
   * CUDNN_STATUS_NOT_INITIALIZED} with version, license and deprecation errors. Of the deprecated
   * aliases at the end of the enum, only {@code CUDNN_STATUS_INVALID_VALUE} (2001) has a number of
   * its own, so it is listed. The others share the number of a current code and go by its name.
   */
  static final Map<Integer, String> CUDNN_9 =
      Map.ofEntries(
          Map.entry(0, "CUDNN_STATUS_SUCCESS"),
          Map.entry(1001, "CUDNN_STATUS_NOT_INITIALIZED"),
          Map.entry(1002, "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH"),
          Map.entry(1003, "CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH"),
          Map.entry(1004, "CUDNN_STATUS_DEPRECATED"),
          Map.entry(1005, "CUDNN_STATUS_LICENSE_ERROR"),
          Map.entry(1006, "CUDNN_STATUS_RUNTIME_IN_PROGRESS"),
          Map.entry(1007, "CUDNN_STATUS_RUNTIME_FP_OVERFLOW"),
          Map.entry(1008, "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED"),
          Map.entry(2000, "CUDNN_STATUS_BAD_PARAM"),
          Map.entry(2001, "CUDNN_STATUS_INVALID_VALUE"),
          Map.entry(2002, "CUDNN_STATUS_BAD_PARAM_NULL_POINTER"),
          Map.entry(2003, "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER"),
          Map.entry(2004, "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED"),
          Map.entry(2005, "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND"),
          Map.entry(2006, "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT"),
          Map.entry(2007, "CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH"),
          Map.entry(2008, "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH"),
          Map.entry(2009, "CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES"),
          Map.entry(2010, "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE"),
          Map.entry(2011, "CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH"),
          Map.entry(2012, "CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE"),
          Map.entry(3000, "CUDNN_STATUS_NOT_SUPPORTED"),
          Map.entry(3001, "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN"),
          Map.entry(3002, "CUDNN_STATUS_NOT_SUPPORTED_SHAPE"),
          Map.entry(3003, "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE"),
          Map.entry(3004, "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT"),
          Map.entry(3005, "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER"),
          Map.entry(3006, "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART"),
          Map.entry(3007, "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH"),
          Map.entry(3008, "CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING"),
          Map.entry(3009, "CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE"),
          Map.entry(3010, "CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT"),
          Map.entry(3011, "CUDNN_STATUS_NOT_SUPPORTED_PADDING"),
          Map.entry(3012, "CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM"),
          Map.entry(3013, "CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API"),
          Map.entry(4000, "CUDNN_STATUS_INTERNAL_ERROR"),
          Map.entry(4001, "CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED"),
          Map.entry(4002, "CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE"),
          Map.entry(4003, "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED"),
          Map.entry(4004, "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED"),
          Map.entry(4005, "CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM"),
          Map.entry(4006, "CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED"),
          Map.entry(5000, "CUDNN_STATUS_EXECUTION_FAILED"),
          Map.entry(5001, "CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER"),
          Map.entry(5002, "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS"),
          Map.entry(5003, "CUDNN_STATUS_EXECUTION_FAILED_CUDART"),
          Map.entry(5004, "CUDNN_STATUS_EXECUTION_FAILED_CURAND"));

  /** cuBLAS status codes, from {@code cublasStatus_t}; the same numbers in cuBLAS 11 to 13. */
  static final Map<Integer, String> CUBLAS =
      Map.of(
          0, "CUBLAS_STATUS_SUCCESS",
          1, "CUBLAS_STATUS_NOT_INITIALIZED",
          3, "CUBLAS_STATUS_ALLOC_FAILED",
          7, "CUBLAS_STATUS_INVALID_VALUE",
          8, "CUBLAS_STATUS_ARCH_MISMATCH",
          11, "CUBLAS_STATUS_MAPPING_ERROR",
          13, "CUBLAS_STATUS_EXECUTION_FAILED",
          14, "CUBLAS_STATUS_INTERNAL_ERROR",
          15, "CUBLAS_STATUS_NOT_SUPPORTED",
          16, "CUBLAS_STATUS_LICENSE_ERROR");

  private StatusNames() {}

  /**
   * Describes a cuDNN status: the library's own string where {@code library} returns one, else the
   * name from the cuDNN 9 table, marked as such.
   *
   * @param library the loaded library's {@code cudnnGetErrorString}, or null where none is loaded
   */
  public static String cudnn(int status, IntFunction<String> library) {
    String own = ask(library, status);
    if (own != null) {
      return own;
    }
    String name = CUDNN_9.get(status);
    if (name == null) {
      name = "unknown code" + cudnnCategory(status);
    }
    return name + ", named from kiln's table of " + CUDNN_TABLE_VERSION + " codes";
  }

  /**
   * Describes a cuBLAS status: the library's own string where {@code library} returns one, else the
   * name from kiln's table.
   *
   * @param library the loaded library's {@code cublasGetStatusString}, or null where none is loaded
   */
  public static String cublas(int status, IntFunction<String> library) {
    String own = ask(library, status);
    if (own != null) {
      return own;
    }
    return CUBLAS.getOrDefault(status, "unknown code") + ", named from kiln's table";
  }

  /** Names the category of a cuDNN 9 code by its thousands digit, or returns "". */
  private static String cudnnCategory(int status) {
    return switch (status / 1000) {
      case 1 -> " in the uncategorized range (1xxx)";
      case 2 -> " in the CUDNN_STATUS_BAD_PARAM category";
      case 3 -> " in the CUDNN_STATUS_NOT_SUPPORTED category";
      case 4 -> " in the CUDNN_STATUS_INTERNAL_ERROR category";
      case 5 -> " in the CUDNN_STATUS_EXECUTION_FAILED category";
      default -> "";
    };
  }

  /** Calls the library's string function, treating a failure or a blank result as no string. */
  private static String ask(IntFunction<String> library, int status) {
    if (library == null) {
      return null;
    }
    try {
      String text = library.apply(status);
      return text == null || text.isBlank() ? null : text;
    } catch (RuntimeException e) {
      return null;
    }
  }
}
