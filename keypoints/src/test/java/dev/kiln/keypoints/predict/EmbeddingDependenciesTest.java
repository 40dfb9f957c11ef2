package dev.kiln.keypoints.predict;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * Dependencies that a service receives through Maven when it depends on kiln-keypoints to embed
 * {@link KeypointDetector}, read from the module's pom.xml.
 */
class EmbeddingDependenciesTest {

  /**
   * SLF4J 2 uses one provider and warns when the class path has several, so a provider that kiln
   * passed on would take the place of the service's own logging, or compete with it.
   */
  @Test
  void slf4jProviderNotPassedOn() throws Exception {
    Path pom = Path.of("pom.xml");
    assertTrue(Files.isRegularFile(pom), "tests run in the keypoints module folder");
    Document document =
        DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(pom.toFile());

    List<String> passedOn = new ArrayList<>();
    int providers = 0;
    NodeList dependencies = document.getElementsByTagName("dependency");
    for (int i = 0; i < dependencies.getLength(); i++) {
      Element dependency = (Element) dependencies.item(i);
      String group = childText(dependency, "groupId");
      String artifact = childText(dependency, "artifactId");
      boolean provider =
          group.equals("org.slf4j") && !artifact.equals("slf4j-api")
              || group.equals("ch.qos.logback")
              || group.equals("org.apache.logging.log4j");
      if (!provider) {
        continue;
      }
      providers++;
      boolean optional = childText(dependency, "optional").equals("true");
      boolean testOnly = childText(dependency, "scope").equals("test");
      if (!optional && !testOnly) {
        passedOn.add(group + ":" + artifact);
      }
    }

    assertEquals(1, providers, "the kiln command's provider, slf4j-simple");
    assertEquals(List.of(), passedOn, "logging providers that dependents would receive");
  }

  /**
   * slf4j-simple reads simplelogger.properties from the class path, so a copy in kiln's jar would
   * set the log level of a service that uses slf4j-simple too. The command line sets its own
   * defaults in {@code Main.main} instead.
   */
  @Test
  void jarHasNoLoggingSettings() {
    Path resources = Path.of("src", "main", "resources");
    assertTrue(Files.isRegularFile(Path.of("pom.xml")), "tests run in the keypoints module folder");
    assertFalse(Files.exists(resources.resolve("simplelogger.properties")));
  }

  /** Returns the trimmed text of {@code parent}'s first child element {@code name}, or "". */
  private static String childText(Element parent, String name) {
    NodeList children = parent.getElementsByTagName(name);
    return children.getLength() == 0 ? "" : children.item(0).getTextContent().trim();
  }
}
