package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Checks the comparison table's model check, verdicts and load column on hand-made records. */
class ComparisonTableTest {

  @Test
  void parameterMismatchGivesNoVerdict() {
    List<String[]> records = new ArrayList<>();
    records.add(describe("kiln", "default"));
    String[] pytorch = describe("pytorch", "default");
    pytorch[3] = "999";
    records.add(pytorch);
    records.add(throughput("kiln", "default", "20,21,22"));
    records.add(throughput("pytorch", "default", "10,10.5,11"));

    ComparisonTable.Rendered table = ComparisonTable.render(records);

    assertEquals(List.of("default"), table.differentModels(), table.text());
    String row = row(table.text(), "train  default");
    assertTrue(row.endsWith("not comparable"), table.text());
    assertFalse(row.contains("met"), table.text());
    assertFalse(row.contains("2.00"), table.text());
    assertTrue(table.text().contains("1017848 parameters in kiln, 999 in PyTorch"), table.text());
  }

  @Test
  void layerMismatchNamesFirstLayer() {
    List<String[]> records = new ArrayList<>();
    records.add(describe("kiln", "naimishnet"));
    String[] pytorch = describe("pytorch", "naimishnet");
    // The same parameter count and shapes, with another dropout probability in layer 4.
    pytorch[5] = pytorch[5].replace("dropout p=0.1", "dropout p=0.15");
    records.add(pytorch);

    ComparisonTable.Rendered table = ComparisonTable.render(records);

    assertEquals(List.of("naimishnet"), table.differentModels(), table.text());
    assertTrue(
        table
            .text()
            .contains(
                "the first differing layer is layer 4: 'dropout p=0.1' in kiln, 'dropout p=0.15'"
                    + " in PyTorch"),
        table.text());
  }

  @Test
  void recordWithoutLayersIsNotComparable() {
    List<String[]> records = new ArrayList<>();
    records.add(describe("kiln", "default"));
    String[] old = describe("pytorch", "default");
    records.add(new String[] {old[0], old[1], old[2], old[3], old[4]});

    ComparisonTable.Rendered table = ComparisonTable.render(records);

    assertEquals(List.of("default"), table.differentModels(), table.text());
    assertTrue(table.text().contains("PyTorch's describe record lists no layer"), table.text());
  }

  @Test
  void timedModelWithoutDescribeIsNotComparable() {
    List<String[]> records = new ArrayList<>();
    records.add(throughput("kiln", "default", "20,21,22"));
    records.add(throughput("pytorch", "default", "10,10.5,11"));

    ComparisonTable.Rendered table = ComparisonTable.render(records);

    assertEquals(List.of("default"), table.differentModels(), table.text());
    assertTrue(row(table.text(), "train  default").endsWith("not comparable"), table.text());
  }

  @Test
  void identicalModelsGetVerdicts() {
    List<String[]> records = new ArrayList<>();
    records.add(describe("kiln", "default"));
    records.add(describe("pytorch", "default"));
    records.add(throughput("kiln", "default", "20,21,22"));
    records.add(throughput("pytorch", "default", "10,10.5,11"));

    ComparisonTable.Rendered table = ComparisonTable.render(records);

    assertEquals(List.of(), table.differentModels(), table.text());
    assertTrue(table.text().contains("model default: identical in kiln and PyTorch"), table.text());
    String row = row(table.text(), "train  default");
    assertTrue(row.contains("2.00"), table.text());
    assertTrue(row.endsWith("met"), table.text());
  }

  @Test
  void overlappingRangesAreTie() {
    double[] kiln = {20, 21, 22};
    assertEquals(
        "tie (ranges overlap)", ComparisonTable.verdict(kiln, new double[] {10, 19, 20}, 1));
    assertEquals(
        "tie (ranges overlap)", ComparisonTable.verdict(kiln, new double[] {22, 25, 30}, 1));
    assertEquals("met", ComparisonTable.verdict(kiln, new double[] {10, 19, 19.9}, 1));
    assertEquals("missed by 16%", ComparisonTable.verdict(kiln, new double[] {22.1, 25, 30}, 1));
  }

  @Test
  void tieScalesOtherRangeByTarget() {
    double[] kiln = {18, 18.5, 19};
    // 0.9 x [20, 21] = [18, 18.9] overlaps [18, 19], while [20, 21] alone does not.
    assertEquals("tie (ranges overlap)", ComparisonTable.verdict(kiln, new double[] {20, 21}, 0.9));
    assertEquals("met", ComparisonTable.verdict(kiln, new double[] {17, 17.5, 17.9}, 1));
  }

  @Test
  void lowerTimesMeetTarget() {
    double[] theirs = {10, 11, 12};
    ComparisonTable.Better lower = ComparisonTable.Better.LOWER;
    // At a target of 0.5, kiln's times are compared with 0.5 x [10, 12] = [5, 6].
    assertEquals(
        ComparisonTable.Outcome.MET,
        ComparisonTable.outcome(new double[] {3, 4}, theirs, 0.5, lower));
    assertEquals(
        ComparisonTable.Outcome.TIE,
        ComparisonTable.outcome(new double[] {4, 5.5}, theirs, 0.5, lower));
    assertEquals(
        ComparisonTable.Outcome.MISSED,
        ComparisonTable.outcome(new double[] {7, 8}, theirs, 0.5, lower));
    // The same values as rates, where higher wins, give the opposite outcomes.
    ComparisonTable.Better higher = ComparisonTable.Better.HIGHER;
    assertEquals(
        ComparisonTable.Outcome.MISSED,
        ComparisonTable.outcome(new double[] {3, 4}, theirs, 0.5, higher));
    assertEquals(
        ComparisonTable.Outcome.MET,
        ComparisonTable.outcome(new double[] {7, 8}, theirs, 0.5, higher));
  }

  @Test
  void evenCountMedianIsMeanOfMiddle() {
    assertEquals(2.5, ComparisonTable.median(new double[] {10, 1, 3, 2}));
    assertEquals(3, ComparisonTable.median(new double[] {10, 1, 3}));
  }

  @Test
  void busyRowIsMarked() {
    List<String[]> records = new ArrayList<>();
    records.add(throughput("kiln", "default", "20,21,22"));
    records.add(new String[] {"load", "kiln", "default", "10", "train", "1.2"});
    records.add(new String[] {"load", "pytorch", "default", "10", "train", "0.4"});

    String text = ComparisonTable.render(records).text();

    assertTrue(row(text, "train  default").contains("1.2* / 0.4"), text);
    assertTrue(text.contains("warning: values marked * are at least 0.5,"), text);
    assertTrue(text.contains("train default 10"), text);
  }

  @Test
  void infoRecordsArePrintedOnce() {
    List<String[]> records = new ArrayList<>();
    records.add(new String[] {"info", "kiln", "threads", "2"});
    records.add(new String[] {"info", "kiln", "threads", "2"});

    String text = ComparisonTable.render(records).text();

    assertEquals(1, text.lines().filter("kiln threads: 2"::equals).count(), text);
  }

  /** Returns kiln's describe record of a preset, split into fields, with {@code side}. */
  private static String[] describe(String side, String model) {
    return Compare.describeRecord(side, model).split("\t", -1);
  }

  private static String[] throughput(String side, String model, String rates) {
    return new String[] {"throughput", side, model, "10", "train", rates};
  }

  /** Returns the table line that starts with {@code start}. */
  private static String row(String text, String start) {
    return text.lines().filter(line -> line.startsWith(start)).findFirst().orElseThrow();
  }
}
