package dev.kiln.keypoints.doctor;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.train.EpochRecord;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class DoctorStalledTest {

  private static List<EpochRecord> history(double... trainLosses) {
    List<EpochRecord> records = new ArrayList<>();
    for (int i = 0; i < trainLosses.length; i++) {
      records.add(new EpochRecord(i + 1, trainLosses[i], 0.1, 0.1, 1e-3, 1, 100, 0));
    }
    return records;
  }

  @Test
  void stalledNeedsFourEpochs() {
    assertFalse(Doctor.stalled(history(0.3, 0.3, 0.3)));
  }

  @Test
  void stalledWhenLossFlat() {
    assertTrue(Doctor.stalled(history(0.5, 0.30, 0.30, 0.29, 0.29)));
  }

  @Test
  void notStalledWhenLossFalls() {
    assertFalse(Doctor.stalled(history(0.30, 0.29, 0.28, 0.27)));
  }

  @Test
  void stalledWhenLossIsNaN() {
    assertTrue(Doctor.stalled(history(0.30, 0.29, 0.28, Double.NaN)));
  }
}
