package dev.kiln.core.backend.cuda.libraries;

/**
 * A cuBLAS or cuDNN call that returned a status other than success.
 *
 * <p>The message names the call, the numeric status and the library's own description, for example
 * {@code cudnnConvolutionForward failed with status 2000 (CUDNN_STATUS_BAD_PARAM)}. The description
 * comes from the library itself where it is loaded ({@code cublasGetStatusString}, {@code
 * cudnnGetErrorString}), because cuDNN 9 renumbered its codes and only the loaded library uses its
 * own numbering.
 */
public final class VendorException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  private final String call;
  private final int status;

  /**
   * Creates the exception.
   *
   * @param call the library function that failed, such as {@code cublasSgemm_v2}
   * @param status the status code it returned
   * @param description the library's text for the code
   * @param arguments the arguments that matter, already formatted; may be empty
   */
  public VendorException(String call, int status, String description, String arguments) {
    super(
        call
            + (arguments.isEmpty() ? "" : "(" + arguments + ")")
            + " failed with status "
            + status
            + " ("
            + description
            + ")");
    this.call = call;
    this.status = status;
  }

  /** Returns the name of the function that failed. */
  public String call() {
    return call;
  }

  /** Returns the status code that it returned. */
  public int status() {
    return status;
  }
}
