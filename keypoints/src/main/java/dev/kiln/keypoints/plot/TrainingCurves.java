package dev.kiln.keypoints.plot;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Plots a training run from its {@code history.csv}: the train and validation loss on a log axis in
 * the upper panel, the validation NME in the lower one.
 *
 * <p>The CSV has a header row. Columns are found by name, case-insensitively: {@code epoch} (the x
 * axis; the row number when absent), {@code train_loss}, {@code val_loss} and {@code val_nme}. A
 * missing column is left out of the plot, and an empty or {@code nan} cell leaves a gap.
 */
public final class TrainingCurves {
  /** Width of the image, in pixels. */
  public static final int WIDTH = 800;

  /** Height of each of the two panels, in pixels. */
  public static final int PANEL_HEIGHT = 500;

  private TrainingCurves() {}

  /**
   * Reads {@code historyCsv} and writes the two-panel plot to {@code png}, {@link #WIDTH} by twice
   * {@link #PANEL_HEIGHT} pixels, atomically.
   *
   * @throws IOException if the file cannot be read or written, or has no header or an invalid
   *     number, with the line number in the message
   */
  public static void write(Path historyCsv, Path png) throws IOException {
    List<String> lines = Files.readAllLines(historyCsv, StandardCharsets.UTF_8);
    if (lines.isEmpty() || lines.getFirst().isBlank()) {
      throw new IOException(historyCsv + ": missing the header row");
    }
    List<String> header = new ArrayList<>();
    for (String column : lines.getFirst().split(",", -1)) {
      header.add(column.strip().toLowerCase(Locale.ROOT));
    }

    List<double[]> rows = new ArrayList<>();
    for (int i = 1; i < lines.size(); i++) {
      if (lines.get(i).isBlank()) {
        continue;
      }
      String[] cells = lines.get(i).split(",", -1);
      double[] row = new double[header.size()];
      for (int c = 0; c < row.length; c++) {
        row[c] = c < cells.length ? parse(cells[c], historyCsv, i + 1) : Double.NaN;
      }
      rows.add(row);
    }

    double[] epochs = column(header, rows, "epoch");
    if (epochs == null) {
      epochs = new double[rows.size()];
      for (int i = 0; i < epochs.length; i++) {
        epochs[i] = i + 1;
      }
    }

    LinePlot loss = new LinePlot("Loss").xLabel("epoch").yLabel("loss (log scale)").logY(true);
    addIfPresent(loss, "train loss", epochs, column(header, rows, "train_loss"));
    addIfPresent(loss, "validation loss", epochs, column(header, rows, "val_loss"));

    LinePlot nme = new LinePlot("Validation NME").xLabel("epoch").yLabel("NME (inter-ocular)");
    addIfPresent(nme, "validation NME", epochs, column(header, rows, "val_nme"));

    Png.write(LinePlot.stack(List.of(loss, nme), WIDTH, PANEL_HEIGHT), png);
  }

  private static void addIfPresent(LinePlot plot, String name, double[] x, double[] y) {
    if (y != null) {
      plot.add(name, x, y);
    }
  }

  private static double[] column(List<String> header, List<double[]> rows, String name) {
    int index = header.indexOf(name);
    if (index < 0) {
      return null;
    }
    double[] values = new double[rows.size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = rows.get(i)[index];
    }
    return values;
  }

  private static double parse(String cell, Path file, int line) throws IOException {
    String text = cell.strip();
    if (text.isEmpty() || text.equalsIgnoreCase("nan")) {
      return Double.NaN;
    }
    try {
      return Double.parseDouble(text);
    } catch (NumberFormatException e) {
      throw new IOException(file + ":" + line + ": invalid number '" + text + "'", e);
    }
  }
}
