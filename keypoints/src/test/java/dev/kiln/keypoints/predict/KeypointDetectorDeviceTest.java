package dev.kiln.keypoints.predict;

import static dev.kiln.keypoints.predict.KeypointDetectorTest.face;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.GrayImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link KeypointDetector#load(Path, Device)} on the {@code emulated} device, which runs kiln's
 * CUDA kernels on the CPU: results against the CPU, thread safety, device memory per call, and an
 * unusable GPU. The emulator takes milliseconds per kernel launch, so the calls are few and small.
 */
class KeypointDetectorDeviceTest {

  private static final Device EMULATED = Device.parse("emulated");

  /**
   * Largest difference, in pixels, between a keypoint on {@code emulated} and on the CPU. Both
   * compute in float32, but the device sums the linear layer's 576 products, and the convolution's
   * 64, in another order. Reordering a float32 sum of n terms moves it by at most about n × 2^-24,
   * here 3.4e-5, times the sum of the terms' magnitudes, which is an estimated 3 for this model's
   * normalized outputs. Denormalization multiplies by 48 crop pixels, and a crop pixel covers at
   * most 1.1 pixels of these images, so the worst case is about 5.4e-3 pixels. The largest
   * difference seen was 9e-6 pixels.
   */
  private static final double TOLERANCE_PIXELS = 6e-3;

  @TempDir static Path dir;

  private static Path checkpoint;
  private static KeypointDetector cpu;
  private static KeypointDetector emulated;

  @BeforeAll
  static void loadDetectors() throws IOException {
    checkpoint = TestCheckpoints.writeSmall(dir);
    cpu = KeypointDetector.load(checkpoint);
    emulated = KeypointDetector.load(checkpoint, EMULATED);
  }

  @Test
  void deviceNamesWhereModelRuns() {
    assertEquals(Device.CPU, cpu.device());
    assertEquals(EMULATED, emulated.device());
  }

  @Test
  void emulatedMatchesCpuWithinTolerance() {
    List<GrayImage> images = List.of(face(96, 96, 1), face(150, 120, 2));

    List<double[]> onCpu = cpu.predict(images);
    List<double[]> onDevice = emulated.predict(images);

    assertEquals(2, onDevice.size());
    for (int i = 0; i < images.size(); i++) {
      assertArrayEquals(onCpu.get(i), onDevice.get(i), TOLERANCE_PIXELS, "image " + i);
    }
  }

  @Test
  void singleImageOnEmulatedMatchesCpu() {
    GrayImage image = face(110, 140, 3);

    double[] onDevice = emulated.predict(image);

    assertArrayEquals(cpu.predict(image), onDevice, TOLERANCE_PIXELS);
  }

  @Test
  void emulatedThreadsMatchOneThread() throws Exception {
    List<GrayImage> images = List.of(face(96, 96, 4), face(100, 120, 5), face(130, 97, 6));
    List<double[]> expected = new ArrayList<>();
    for (GrayImage image : images) {
      expected.add(emulated.predict(image));
    }
    List<double[]> expectedBatch = emulated.predict(images.subList(0, 2));

    int threads = 4;
    List<Callable<List<double[]>>> calls = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int first = t;
      calls.add(
          () -> {
            List<double[]> results = new ArrayList<>();
            results.add(emulated.predict(images.get(first % images.size())));
            results.addAll(emulated.predict(images.subList(0, 2)));
            return results;
          });
    }
    List<Future<List<double[]>>> futures;
    try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
      futures = pool.invokeAll(calls);
    }

    for (int t = 0; t < threads; t++) {
      List<double[]> results = futures.get(t).get();
      int index = t % images.size();
      assertArrayEquals(expected.get(index), results.get(0), "thread " + t + " image " + index);
      assertArrayEquals(expectedBatch.get(0), results.get(1), "thread " + t + " batch image 0");
      assertArrayEquals(expectedBatch.get(1), results.get(2), "thread " + t + " batch image 1");
    }
  }

  @Test
  void loadPutsWeightsOnDevice() throws IOException {
    CachingAllocator allocator = DeviceKernels.of(EMULATED).runtime().allocator();
    // conv 4 kernel=8 (4 x 64 weights, 4 biases) and linear 136 (576 x 136 weights, 136 biases).
    long weightBytes = Float.BYTES * (4 * 64 + 4 + 576 * 136 + 136);
    long before = allocator.stats().bytesInUse();

    KeypointDetector detector = KeypointDetector.load(checkpoint, EMULATED);

    long added = allocator.stats().bytesInUse() - before;
    assertTrue(added >= weightBytes, added + " bytes in use for " + weightBytes + " of weights");
    assertEquals(136, detector.predict(face(96, 96, 8)).length);
  }

  @Test
  void predictReturnsDeviceMemory() {
    CachingAllocator allocator = DeviceKernels.of(EMULATED).runtime().allocator();
    GrayImage image = face(96, 96, 7);
    // The first call may allocate constants that the device keeps for later launches.
    emulated.predict(image);
    long before = allocator.stats().bytesInUse();

    emulated.predict(image);
    emulated.predict(List.of(image, image));

    assertEquals(before, allocator.stats().bytesInUse(), "bytes in use after two more calls");
  }

  @Test
  void unusableCudaRejectedBeforeReading() {
    CudaAvailability gpu = CudaAvailability.check(0);
    assumeFalse(gpu.usable(), "cuda:0 is usable here, so loading on it is not rejected");
    Path absent = dir.resolve("absent.safetensors");

    IllegalStateException error =
        assertThrows(
            IllegalStateException.class,
            () -> KeypointDetector.load(absent, Device.parse("cuda:0")));

    String message = error.getMessage();
    assertTrue(message.startsWith("cannot predict on cuda:0: "), message);
    assertTrue(message.contains(gpu.message().replaceAll("\\.$", "")), message);
    assertTrue(message.endsWith("; load on Device.CPU instead"), message);
    assertFalse(message.contains("absent.safetensors"), "the file is not read first: " + message);
  }

  @Test
  void nullDeviceRaisesNamedError() {
    NullPointerException error =
        assertThrows(NullPointerException.class, () -> KeypointDetector.load(checkpoint, null));

    assertTrue(error.getMessage().contains("device"), error.getMessage());
  }
}
