package dev.kiln.keypoints.predict;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.core.backend.cuda.AutoDevice;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.ImageDecoder;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.Member;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Guards the embedding API, the classes that the README's "Using a trained model from Java" names,
 * against unnoticed changes: their public members, with signatures and constant values, must match
 * {@code embedding-api.txt} in the test resources. A service compiled against one version of kiln
 * breaks when a listed member is removed or changed, so such a change should be deliberate.
 */
class EmbeddingApiTest {

  /** The types of the embedding API. Their public nested types are listed with them. */
  private static final List<Class<?>> API =
      List.of(
          KeypointDetector.class,
          GrayImage.class,
          ImageDecoder.class,
          Device.class,
          AutoDevice.class);

  private static final Path SNAPSHOT = Path.of("src/test/resources/embedding-api.txt");

  @Test
  void publicMembersMatchSnapshot() throws Exception {
    assertTrue(Files.isRegularFile(SNAPSHOT), "tests run in the keypoints module folder");
    List<String> expected =
        Files.readAllLines(SNAPSHOT, StandardCharsets.UTF_8).stream()
            .filter(line -> !line.isBlank() && !line.startsWith("#"))
            .toList();
    List<String> actual = new ArrayList<>();
    for (Class<?> type : API) {
      describe(type, actual);
    }

    Set<String> removed = new LinkedHashSet<>(expected);
    actual.forEach(removed::remove);
    Set<String> added = new LinkedHashSet<>(actual);
    expected.forEach(added::remove);
    if (!removed.isEmpty() || !added.isEmpty()) {
      fail(
          "the embedding API differs from "
              + SNAPSHOT
              + ". A removed or changed member breaks services built against the previous"
              + " version, so keep it where you can. If the change is intended, put the current"
              + " listing below into that file and say so in the commit.\nremoved:\n  "
              + String.join("\n  ", removed)
              + "\nadded:\n  "
              + String.join("\n  ", added)
              + "\ncurrent listing:\n"
              + String.join("\n", actual));
    }
  }

  /** Appends a line for {@code type} and one for each of its public members, sorted. */
  private static void describe(Class<?> type, List<String> lines) {
    lines.add("type " + type.toGenericString());
    List<String> members = new ArrayList<>();
    Stream.of(type.getDeclaredFields())
        .filter(EmbeddingApiTest::isPublicApi)
        .forEach(field -> members.add("  " + describe(field)));
    Stream.<Executable>concat(
            Stream.of(type.getDeclaredConstructors()), Stream.of(type.getDeclaredMethods()))
        .filter(EmbeddingApiTest::isPublicApi)
        // Synchronization is an implementation detail, not part of a method's signature.
        .forEach(
            executable ->
                members.add("  " + executable.toGenericString().replace("synchronized ", "")));
    members.sort(null);
    lines.addAll(members);
    Stream.of(type.getDeclaredClasses())
        .filter(nested -> Modifier.isPublic(nested.getModifiers()))
        .sorted(Comparator.comparing(Class::getName))
        .forEach(nested -> describe(nested, lines));
  }

  /** Describes a field, with its value where it is a constant that callers may compile in. */
  private static String describe(Field field) {
    String text = field.toGenericString();
    int modifiers = field.getModifiers();
    boolean constant =
        Modifier.isStatic(modifiers)
            && Modifier.isFinal(modifiers)
            && (field.getType().isPrimitive() || field.getType() == String.class);
    if (!constant) {
      return text;
    }
    try {
      return text + " = " + field.get(null);
    } catch (IllegalAccessException e) {
      throw new AssertionError("failed to read public constant " + field, e);
    }
  }

  private static boolean isPublicApi(Member member) {
    return Modifier.isPublic(member.getModifiers()) && !member.isSynthetic();
  }
}
