package dev.kiln.keypoints.cli;

import java.util.List;
import java.util.function.Predicate;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/** The options that a user gave on a command line, for commands that reject some combinations. */
final class GivenOptions {
  private GivenOptions() {}

  /**
   * Returns the long names of the options given on {@code spec}'s command line that {@code
   * selected} accepts, in the order they were given.
   */
  static List<String> matching(CommandSpec spec, Predicate<String> selected) {
    return spec.commandLine().getParseResult().matchedOptions().stream()
        .map(CommandLine.Model.OptionSpec::longestName)
        .filter(selected)
        .toList();
  }
}
