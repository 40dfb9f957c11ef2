package dev.kiln.keypoints.cli;

import dev.kiln.keypoints.fetch.FetchDataCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code kiln} command line; each subcommand is its own class. */
@Command(
    name = "kiln",
    mixinStandardHelpOptions = true,
    version = "kiln 0.1.0",
    description = "A convolutional-network engine for the JVM, and its face keypoint trainer.",
    subcommands = {
      TrainCommand.class,
      EvaluateCommand.class,
      PredictCommand.class,
      FetchDataCommand.class,
      FitBatchCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the command line and returns the exit code, for tests. */
  public static int run(String... args) {
    return new CommandLine(new Main()).execute(args);
  }

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }
}
