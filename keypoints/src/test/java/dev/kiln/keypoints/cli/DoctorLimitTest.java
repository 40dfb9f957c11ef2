package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The doctor's --limit, where 0 means all rows, as for kiln train. */
class DoctorLimitTest {

  @Test
  void zeroMeansAllRows() {
    assertEquals(400, DoctorCommand.rowsToExamine(0, 400), "a run on all rows");
    assertEquals(600, DoctorCommand.rowsToExamine(600, 0), "the doctor asked for all rows");
    assertEquals(0, DoctorCommand.rowsToExamine(0, 0), "both on all rows");
    assertEquals(300, DoctorCommand.rowsToExamine(300, 400), "the run's smaller limit");
    assertEquals(400, DoctorCommand.rowsToExamine(600, 400), "the doctor's smaller limit");
  }

  @Test
  void negativeLimitRejected() {
    StringWriter err = new StringWriter();
    CommandLine kiln = Main.newCommandLine();
    kiln.setOut(new PrintWriter(new StringWriter()));
    kiln.setErr(new PrintWriter(err, true));

    int status = kiln.execute("doctor", "--limit", "-1");

    assertEquals(2, status, err.toString());
    assertTrue(
        err.toString().startsWith("--limit must be 0 (all rows) or more, got -1"), err.toString());
  }
}
