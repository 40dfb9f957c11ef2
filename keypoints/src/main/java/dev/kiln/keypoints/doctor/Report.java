package dev.kiln.keypoints.doctor;

import dev.kiln.keypoints.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The doctor's ranked findings: critical ones first, and among equally severe ones the findings
 * that name a cause before those that show a symptom.
 *
 * @param findings all findings, ranked by {@link Finding#RANKING}
 * @param seconds wall time of the examination
 */
public record Report(List<Finding> findings, double seconds) {

  /** File name of the Markdown report in a run folder. */
  public static final String FILE_NAME = "doctor.md";

  public Report {
    findings = findings.stream().sorted(Finding.RANKING).toList();
  }

  /** Returns the CRITICAL and WARNING findings, ranked. */
  public List<Finding> problems() {
    return findings.stream().filter(Finding::isProblem).toList();
  }

  /** Returns the INFO findings: the measurements with nothing to fix. */
  public List<Finding> measurements() {
    return findings.stream().filter(f -> !f.isProblem()).toList();
  }

  /** Returns true when no finding is above INFO. */
  public boolean healthy() {
    return problems().isEmpty();
  }

  /** Returns the first-ranked problem, the most likely cause, or null for a healthy report. */
  public Finding first() {
    List<Finding> problems = problems();
    return problems.isEmpty() ? null : problems.getFirst();
  }

  /** Formats the report for a terminal: the problems in full, then the measurements. */
  public String toText() {
    StringBuilder text = new StringBuilder();
    List<Finding> problems = problems();
    if (problems.isEmpty()) {
      text.append("No problems found.\n");
    } else {
      text.append(Stats.count(problems.size(), "problem"))
          .append(" found, the most likely cause first:\n");
    }
    int rank = 1;
    for (Finding finding : problems) {
      text.append(
          String.format(
              Locale.ROOT, "%n%d. [%s] %s%n", rank++, finding.severity(), finding.title()));
      text.append("   evidence: ").append(finding.evidence()).append('\n');
      text.append("   fix: ").append(finding.fix()).append('\n');
      if (finding.image() != null) {
        text.append("   image: ").append(finding.image()).append('\n');
      }
    }
    text.append("\nKey numbers:\n");
    for (Finding finding : measurements()) {
      text.append("- ").append(finding.title()).append(' ').append(finding.evidence()).append('\n');
    }
    text.append(String.format(Locale.ROOT, "%nExamined in %.1f s.%n", seconds));
    return text.toString();
  }

  /** Formats the report as Markdown, with images linked by their file names. */
  public String toMarkdown() {
    StringBuilder md = new StringBuilder("# Training doctor\n\n");
    List<Finding> problems = problems();
    if (problems.isEmpty()) {
      md.append("No problems found.\n");
    } else {
      md.append(Stats.count(problems.size(), "problem"))
          .append(" found, the most likely cause first.\n");
    }
    int rank = 1;
    for (Finding finding : problems) {
      md.append(
          String.format(
              Locale.ROOT, "%n## %d. %s: %s%n%n", rank++, finding.severity(), finding.title()));
      md.append("**Evidence:** ").append(finding.evidence()).append("\n\n");
      md.append("**Fix:** ").append(finding.fix()).append('\n');
      appendImage(md, finding);
    }
    md.append("\n## Key numbers\n\n");
    for (Finding finding : measurements()) {
      md.append("- **")
          .append(finding.title())
          .append("** ")
          .append(finding.evidence())
          .append('\n');
      appendImage(md, finding);
    }
    md.append(String.format(Locale.ROOT, "%nExamined in %.1f s.%n", seconds));
    return md.toString();
  }

  private static void appendImage(StringBuilder md, Finding finding) {
    if (finding.image() != null) {
      String name = finding.image().getFileName().toString();
      md.append("\n![").append(name).append("](").append(name).append(")\n");
    }
  }

  /**
   * Writes {@link #toMarkdown()} to {@code folder/doctor.md} atomically, creating the folder, and
   * returns the file.
   */
  public Path write(Path folder) throws IOException {
    Path file = folder.resolve(FILE_NAME);
    AtomicFiles.writeString(file, toMarkdown());
    return file;
  }
}
