package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.TestData;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.keypoints.train.History;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The three commands end to end on a few hundred real faces: training lowers the loss, and evaluate
 * and predict write valid files.
 */
class CommandLineSmokeTest {
  @TempDir Path folder;

  @Test
  void trainEvaluatePredict() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");

    int trained =
        Main.run(
            "train",
            "--data",
            data.toString(),
            "--limit",
            "300",
            "--epochs",
            "2",
            "--output",
            run.toString());
    assertEquals(0, trained);
    List<EpochRecord> history = History.open(run.resolve("history.csv")).records();
    assertEquals(2, history.size());
    assertTrue(
        history.get(1).trainLoss() < history.get(0).trainLoss(),
        "training loss did not fall: " + history);

    Path smallCsv = folder.resolve("test_frames_keypoints.csv");
    List<String> rows =
        Files.readAllLines(data.resolve("test_frames_keypoints.csv"), StandardCharsets.UTF_8);
    Files.write(smallCsv, rows.subList(0, 21), StandardCharsets.UTF_8);
    Path evaluation = folder.resolve("evaluation");
    int evaluated =
        Main.run(
            "evaluate",
            "--checkpoint",
            run.resolve("best.safetensors").toString(),
            "--csv",
            smallCsv.toString(),
            "--images",
            data.resolve("test").toString(),
            "--output",
            evaluation.toString());
    assertEquals(0, evaluated);
    String json = Files.readString(evaluation.resolve("evaluation.json"));
    assertTrue(json.contains("\"faces\": 20,"), json.substring(0, Math.min(300, json.length())));
    assertTrue(json.matches("(?s).*\"nme\": 0\\.\\d+.*"), "no NME in evaluation.json");
    assertNotNull(ImageIO.read(evaluation.resolve("ced.png").toFile()));

    String firstImage = rows.get(1).split(",")[0];
    Path predictions = folder.resolve("predictions");
    int predicted =
        Main.run(
            "predict",
            "--checkpoint",
            run.resolve("best.safetensors").toString(),
            "--output",
            predictions.toString(),
            data.resolve("test").resolve(firstImage).toString());
    assertEquals(0, predicted);
    String predictionJson = Files.readString(predictions.resolve("predictions.json"));
    int points = predictionJson.split("\\[-?\\d+\\.\\d+, -?\\d+\\.\\d+\\]", -1).length - 1;
    assertEquals(68, points, predictionJson);
    String png = firstImage.replaceFirst("\\.[^.]*$", "") + ".png";
    assertNotNull(ImageIO.read(predictions.resolve(png).toFile()));
  }
}
