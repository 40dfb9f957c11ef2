package dev.kiln.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class DeviceTest {

  @ParameterizedTest(name = "''{0}''")
  @CsvSource({
    "cpu, CPU, 0, cpu",
    "CPU, CPU, 0, cpu",
    "' cpu ', CPU, 0, cpu",
    "cuda, CUDA, 0, cuda:0",
    "cuda:0, CUDA, 0, cuda:0",
    "CUDA:3, CUDA, 3, cuda:3",
    "emulated, EMULATED, 0, emulated"
  })
  void parseAcceptsValidName(String name, Device.Kind kind, int index, String canonical) {
    Device device = Device.parse(name);

    assertEquals(kind, device.kind());
    assertEquals(index, device.index());
    assertEquals(canonical, device.toString());
  }

  @ParameterizedTest(name = "''{0}''")
  @ValueSource(strings = {"", "gpu", "cuda:", "cuda:x", "cuda:1.5", "cpu:0", "cuda0"})
  void parseRejectsInvalidName(String name) {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> Device.parse(name));

    assertTrue(error.getMessage().contains("'" + name + "'"), error.getMessage());
    assertTrue(error.getMessage().contains("cuda:N"), error.getMessage());
  }

  @ParameterizedTest(name = "''{0}''")
  @ValueSource(strings = {"cuda:-1", "cuda:-7"})
  void parseRejectsNegativeIndex(String name) {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> Device.parse(name));

    assertTrue(error.getMessage().contains(name.substring(5)), error.getMessage());
  }

  @Test
  void parseRejectsNullWithForms() {
    NullPointerException error = assertThrows(NullPointerException.class, () -> Device.parse(null));

    assertTrue(error.getMessage().startsWith("device name is null"), error.getMessage());
    assertTrue(error.getMessage().contains("cuda:N"), error.getMessage());
  }
}
