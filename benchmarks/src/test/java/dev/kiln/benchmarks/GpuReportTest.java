package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Device;
import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.Test;

class GpuReportTest {

  @Test
  void parsesCudaDeviceWithIndex() {
    Device device = GpuReport.parseCudaDevice("cuda:1");

    assertEquals(Device.Kind.CUDA, device.kind());
    assertEquals(1, device.index());
  }

  @Test
  void parsesBareCudaAsDeviceZero() {
    assertEquals(0, GpuReport.parseCudaDevice("cuda").index());
  }

  @Test
  void rejectsCpuDevice() {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> GpuReport.parseCudaDevice("cpu"));

    assertTrue(error.getMessage().contains("'cpu'"), error.getMessage());
  }

  @Test
  void describesPresentResourceBySize() throws IOException {
    String resource = "dev/kiln/benchmarks/GpuReport.class";
    long size;
    try (InputStream in = GpuReport.class.getClassLoader().getResourceAsStream(resource)) {
      size = in.readAllBytes().length;
    }

    assertEquals(size + " bytes (" + resource + ")", GpuReport.describeResource(resource));
  }

  @Test
  void describesMissingResource() {
    assertEquals(
        "missing (class-path resource dev/kiln/none.bin)",
        GpuReport.describeResource("dev/kiln/none.bin"));
  }
}
