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
  void stalledNeedsThreeEpochs() {
    assertFalse(Doctor.stalled(history(0.3, 0.3)));
  }

  @Test
  void stalledWhenLossStaysNearStart() {
    assertTrue(Doctor.stalled(history(0.30, 0.31, 0.29, 0.30)));
  }

  @Test
  void notStalledWhenLossFalls() {
    assertFalse(Doctor.stalled(history(0.30, 0.25, 0.20)));
  }

  @Test
  void notStalledWhenConvergedRunLevelsOff() {
    assertFalse(Doctor.stalled(history(0.18, 0.12, 0.10, 0.0290, 0.0289, 0.0290)));
  }

  @Test
  void stalledWhenLossIsNaN() {
    assertTrue(Doctor.stalled(history(0.30, 0.29, Double.NaN)));
  }
}
