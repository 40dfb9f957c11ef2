package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Tests status translation: the library's own string first, kiln's tables only as fallback. */
class StatusNamesTest {

  @Test
  void cudnnLibraryStringWins() {
    // cuDNN 8 numbers BAD_PARAM 3, which the cuDNN 9 table does not contain; the loaded
    // library's own string is used as it is.
    assertEquals(
        "CUDNN_STATUS_BAD_PARAM", StatusNames.cudnn(3, status -> "CUDNN_STATUS_BAD_PARAM"));
  }

  @Test
  void cudnnFallbackNamesCudnn9Codes() {
    assertEquals(
        "CUDNN_STATUS_BAD_PARAM, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(2000, null));
    assertEquals(
        "CUDNN_STATUS_NOT_SUPPORTED_SHAPE, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(3002, null));
    assertEquals(
        "CUDNN_STATUS_EXECUTION_FAILED, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(5000, null));
  }

  @Test
  void cudnnFallbackNamesAliasAndNewCodes() {
    // 2001 is a deprecated alias with a number of its own, and 3013 is the highest
    // NOT_SUPPORTED code in the cuDNN 9.6 header.
    assertEquals(
        "CUDNN_STATUS_INVALID_VALUE, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(2001, null));
    assertEquals(
        "CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(3013, null));
    assertEquals(
        "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(1002, null));
  }

  @Test
  void cudnnUnknownCodeNamesCategory() {
    String text = StatusNames.cudnn(2999, null);

    assertTrue(text.startsWith("unknown code in the CUDNN_STATUS_BAD_PARAM category"), text);
    assertTrue(text.contains("cuDNN 9"), text);
    assertTrue(StatusNames.cudnn(77, null).startsWith("unknown code, "));

    String uncategorized = StatusNames.cudnn(1999, null);
    assertTrue(
        uncategorized.startsWith("unknown code in the uncategorized range (1xxx), "),
        uncategorized);
  }

  @Test
  void blankOrFailingLibraryFallsBack() {
    assertEquals(
        "CUDNN_STATUS_NOT_INITIALIZED, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(1001, status -> " "));
    assertEquals(
        "CUDNN_STATUS_NOT_INITIALIZED, named from kiln's table of cuDNN 9 codes",
        StatusNames.cudnn(
            1001,
            status -> {
              throw new IllegalStateException("library closed");
            }));
  }

  @Test
  void cublasFallbackAndLibraryString() {
    assertEquals(
        "CUBLAS_STATUS_INVALID_VALUE, named from kiln's table", StatusNames.cublas(7, null));
    assertEquals("the value is invalid", StatusNames.cublas(7, status -> "the value is invalid"));
    assertEquals("unknown code, named from kiln's table", StatusNames.cublas(99, null));
  }

  @Test
  void vendorExceptionNamesCallStatusAndText() {
    VendorException e =
        new VendorException("cublasSgemm_v2", 7, "CUBLAS_STATUS_INVALID_VALUE", "m=0, n=4, k=4");

    assertEquals(
        "cublasSgemm_v2(m=0, n=4, k=4) failed with status 7 (CUBLAS_STATUS_INVALID_VALUE)",
        e.getMessage());
    assertEquals("cublasSgemm_v2", e.call());
    assertEquals(7, e.status());
    assertEquals(
        "cudnnCreate failed with status 1001 (x)",
        new VendorException("cudnnCreate", 1001, "x", "").getMessage());
  }
}
