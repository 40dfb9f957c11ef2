package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class VendorLibraryTest {

  @Test
  void namesVersionedFiles() {
    assertEquals("libcudnn.so.9", VendorLibrary.CUDNN.fileName(9));
    assertEquals("libcublasLt.so.13", VendorLibrary.fileName("cublasLt", 13));
  }

  @Test
  void loadsCudnnExtLast() {
    List<String> companions = VendorLibrary.CUDNN.companions();
    int extIndex = companions.indexOf("cudnn_ext");

    assertTrue(extIndex >= 0, "cuDNN 9.24 opens libcudnn_ext by bare name: " + companions);
    for (String earlier : List.of("cudnn_graph", "cudnn_ops", "cudnn_cnn")) {
      assertTrue(companions.indexOf(earlier) < extIndex, earlier + " must load before cudnn_ext");
    }
    assertFalse(
        companions.contains("cudnn_engines_tensor_ir"),
        "cuDNN loads its tensor IR engine itself; a copy loaded ahead of it breaks before 9.26");
  }

  @Test
  void rejectsEmptyVersionList() {
    var error =
        assertThrows(
            IllegalArgumentException.class, () -> new VendorLibrary("x", List.of(), List.of()));
    assertTrue(error.getMessage().contains("at least one version"), error.getMessage());
  }
}
