package dev.kiln.keypoints.cli;

import dev.kiln.keypoints.fetch.FetchDataCommand;
import java.io.IOException;
import java.io.UncheckedIOException;
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
      DoctorCommand.class,
      FetchDataCommand.class,
      FitBatchCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {

  /** Exit code of a command that failed on its input or its files. */
  private static final int FAILED = 1;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the command line and returns the exit code, for tests. */
  public static int run(String... args) {
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setExecutionExceptionHandler(Main::reportFailure);
    return commandLine.execute(args);
  }

  /**
   * Prints the message of an expected failure (bad input, a missing or invalid file) without a
   * stack trace, because that message names the value and the fix. Any other exception is a bug in
   * kiln, so it keeps its stack trace.
   */
  private static int reportFailure(
      Exception error, CommandLine commandLine, CommandLine.ParseResult parseResult)
      throws Exception {
    boolean expected =
        error instanceof IOException
            || error instanceof UncheckedIOException
            || error instanceof IllegalArgumentException
            || error instanceof IllegalStateException;
    if (!expected) {
      throw error;
    }
    commandLine
        .getErr()
        .println("kiln " + commandLine.getCommandName() + ": " + error.getMessage());
    return FAILED;
  }

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }
}
