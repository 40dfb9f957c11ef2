package dev.kiln.keypoints.cli;

import dev.kiln.core.backend.cuda.CudaException;
import dev.kiln.core.backend.cuda.DeviceOutOfMemoryException;
import dev.kiln.core.backend.cuda.libraries.LibraryLoadException;
import dev.kiln.core.backend.cuda.libraries.VendorException;
import dev.kiln.core.backend.cuda.libraries.VendorSelection;
import dev.kiln.keypoints.data.FaceDataset;
import dev.kiln.keypoints.fetch.FetchDataCommand;
import dev.kiln.keypoints.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.NotLinkException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
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

  /** Exit code of an invalid option or setting, as picocli uses for its usage errors. */
  private static final int INVALID_SETTING = 2;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    setLoggingDefaults(System.getProperties());
    System.exit(run(args));
  }

  /**
   * Sets slf4j-simple's defaults for the command line where no setting is given, for example by
   * {@code KILN_JAVA_OPTIONS=-Dorg.slf4j.simpleLogger.defaultLogLevel=info}. Library log lines show
   * only from WARN up, on standard error, because the commands print their own progress. A
   * simplelogger.properties file in the jar would also set the logging of every service that embeds
   * kiln.
   */
  static void setLoggingDefaults(Properties properties) {
    String defaultLevel = "org.slf4j.simpleLogger.defaultLogLevel";
    if (!properties.containsKey(defaultLevel)) {
      // The commands that load a keypoint CSV print its skipped rows in their load report, so the
      // dataset's warning about each one would print it a second time. A level that the user set
      // shows the dataset's lines too.
      properties.setProperty(defaultLevel, "warn");
      properties.putIfAbsent("org.slf4j.simpleLogger.log." + FaceDataset.class.getName(), "error");
    }
    properties.putIfAbsent("org.slf4j.simpleLogger.logFile", "System.err");
  }

  /** Runs the command line and returns the exit code, for tests. */
  public static int run(String... args) {
    return newCommandLine().execute(args);
  }

  /** Creates the command line with the handler that prints expected failures, for tests. */
  static CommandLine newCommandLine() {
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setExecutionExceptionHandler(Main::reportFailure);
    commandLine.setExecutionStrategy(Main::executeWithValidSettings);
    CommandLine.IParameterExceptionHandler picocliHandler =
        commandLine.getParameterExceptionHandler();
    commandLine.setParameterExceptionHandler(
        (error, args) -> picocliHandler.handleParseException(unknownOptionFirst(error), args));
    return commandLine;
  }

  /**
   * Returns an error for the unknown options of the command line, where picocli reports a missing
   * required option but also found unknown ones. A misspelled required option, as in {@code
   * --checkpint}, is then reported with the suggestion to use {@code --checkpoint}, not as missing.
   */
  private static CommandLine.ParameterException unknownOptionFirst(
      CommandLine.ParameterException error) {
    CommandLine command = error.getCommandLine();
    if (error instanceof CommandLine.MissingParameterException
        && !command.getUnmatchedArguments().isEmpty()) {
      return new CommandLine.UnmatchedArgumentException(command, command.getUnmatchedArguments());
    }
    return error;
  }

  /**
   * Runs the parsed command after checking the system properties that kiln reads, so that an
   * invalid value fails every command the same way, before any work, even one that runs on the CPU
   * and would never read it.
   */
  private static int executeWithValidSettings(CommandLine.ParseResult parseResult) {
    if (CommandLine.printHelpIfRequested(parseResult)) {
      return CommandLine.ExitCode.OK;
    }
    try {
      VendorSelection.Setting.fromSystemProperty();
    } catch (IllegalArgumentException e) {
      CommandLine command = parseResult.asCommandLineList().getLast();
      String prefix = command.getParent() == null ? "kiln" : "kiln " + command.getCommandName();
      command
          .getErr()
          .println(
              prefix
                  + ": "
                  + e.getMessage()
                  + " (the kiln launcher passes -D options from KILN_JAVA_OPTIONS)");
      return INVALID_SETTING;
    }
    try {
      return new CommandLine.RunLast().execute(parseResult);
    } catch (OutOfMemoryError e) {
      // picocli passes errors through, so without this the JVM would print the stack trace. The
      // command has unwound by now, so its model and data are garbage and printing has memory.
      CommandLine command = parseResult.asCommandLineList().getLast();
      command
          .getErr()
          .println(
              "kiln "
                  + command.getCommandName()
                  + ": "
                  + describeHeapExhaustion(
                      e, command.getCommandSpec(), Runtime.getRuntime().maxMemory()));
      return failureStatus(command);
    }
  }

  /**
   * Returns the exit code of a command that failed on its input, its files or its device. It is 1,
   * picocli's default, unless the command's {@code exitCodeOnExecutionException} sets another, as
   * {@code kiln doctor} does because its 1 means that it found problems.
   */
  private static int failureStatus(CommandLine command) {
    return command.getCommandSpec().exitCodeOnExecutionException();
  }

  /**
   * Returns the first message in the chain of causes, or null. An OutOfMemoryError thrown in a
   * parallel stream's worker reaches the caller as a new error without a message, whose cause is
   * the original.
   */
  private static String firstMessage(Throwable error) {
    for (Throwable t = error; t != null; t = t.getCause()) {
      if (t.getMessage() != null) {
        return t.getMessage();
      }
    }
    return null;
  }

  /**
   * Returns the message for a Java heap that ran out of memory during {@code command}, with the
   * options that lower the memory it needs and the way to raise the heap's maximum of {@code
   * maxBytes}.
   */
  static String describeHeapExhaustion(
      OutOfMemoryError error, CommandLine.Model.CommandSpec command, long maxBytes) {
    long maxGiB = Math.max(1, (maxBytes + (1L << 30) - 1) >> 30);
    String maximum =
        maxBytes < 1L << 30
            ? String.format(Locale.ROOT, "%d MiB", maxBytes >> 20)
            : String.format(Locale.ROOT, "%.1f GiB", maxBytes / (double) (1L << 30));
    String heap =
        "give Java a larger heap than its maximum of "
            + maximum
            + " with KILN_JAVA_OPTIONS=-Xmx<size>, such as -Xmx"
            + 2 * maxGiB
            + "g";
    String reason = firstMessage(error);
    String problem = "out of Java heap memory" + (reason == null ? "" : " (" + reason + ")") + ": ";
    CommandLine.Model.OptionSpec resume = command.findOption("--resume");
    if (resume != null && resume.getValue() != null) {
      return problem
          + "a resumed run keeps its model and batch size, so "
          + heap
          + ", or start a new run with a smaller --model or a lower --batch-size";
    }
    List<String> smaller = new ArrayList<>();
    if (command.findOption("--model") != null) {
      smaller.add("use a smaller --model");
    }
    CommandLine.Model.OptionSpec batchSize = command.findOption("--batch-size");
    if (batchSize != null) {
      smaller.add("lower --batch-size (now " + batchSize.getValue() + ")");
    }
    smaller.add(heap);
    return problem + String.join(", or ", smaller);
  }

  /**
   * Prints the message of an expected failure (bad input, a missing or invalid file, a GPU that
   * failed or ran out of memory) without a stack trace, because that message names the value and
   * the fix. Any other exception is a bug in kiln, so it keeps its stack trace.
   */
  static int reportFailure(
      Exception error, CommandLine commandLine, CommandLine.ParseResult parseResult)
      throws Exception {
    boolean deviceFailure = isDeviceFailure(error);
    boolean expected =
        error instanceof IOException
            || error instanceof UncheckedIOException
            || error instanceof IllegalArgumentException
            || error instanceof IllegalStateException
            || deviceFailure;
    if (!expected) {
      throw error;
    }
    String message =
        deviceFailure
            ? describeDeviceFailure(error, commandLine.getCommandSpec())
            : describe(error);
    commandLine
        .getErr()
        .println(
            "kiln " + commandLine.getCommandName() + ": " + TerminalText.escape(message, true));
    return failureStatus(commandLine);
  }

  /**
   * Returns whether {@code error} comes from the GPU, its driver or NVIDIA's libraries during a
   * command, rather than from a bug in kiln.
   */
  private static boolean isDeviceFailure(Exception error) {
    return error instanceof DeviceOutOfMemoryException
        || error instanceof CudaException
        || error instanceof VendorException
        || error instanceof LibraryLoadException;
  }

  /**
   * Returns the message for a failure of the GPU, with advice for a command-line user. The
   * exceptions' own advice addresses Java callers (drop references, call {@code emptyCache()}), so
   * an out-of-memory message keeps only its facts and gets the command's option instead.
   */
  static String describeDeviceFailure(Exception error, CommandLine.Model.CommandSpec command) {
    return switch (error) {
      case DeviceOutOfMemoryException outOfMemory ->
          outOfMemory.situation() + " " + outOfMemoryAdvice(command);
      case CudaException driverError ->
          driverError.getMessage()
              + ". The GPU or its driver failed during the command: check the GPU with"
              + " nvidia-smi, or run the command with --device cpu";
      case VendorException libraryError ->
          libraryError.getMessage()
              + ". A call into cuBLAS or cuDNN failed: to use kiln's own kernels instead, run"
              + " the command with KILN_JAVA_OPTIONS=-D"
              + VendorSelection.PROPERTY
              + "=kiln";
      default -> describe(error);
    };
  }

  /** Returns what to do after running out of device memory, by the options that the command has. */
  private static String outOfMemoryAdvice(CommandLine.Model.CommandSpec command) {
    CommandLine.Model.OptionSpec resume = command.findOption("--resume");
    if (resume != null && resume.getValue() != null) {
      // The option's value is its default here: the run's own batch size is in its folder.
      return "A resumed run keeps the batch size it started with, so start a new run with a lower"
          + " --batch-size, or resume this one with --device cpu.";
    }
    CommandLine.Model.OptionSpec batchSize = command.findOption("--batch-size");
    if (batchSize != null) {
      return "Lower --batch-size, which is " + batchSize.getValue() + " in this run.";
    }
    return "Stop other processes that use the GPU (nvidia-smi lists them), or run the command with"
        + " --device cpu.";
  }

  /**
   * Returns the message to print for an expected failure. NIO's file exceptions carry only the path
   * as their message, so they get a description of what went wrong with that path.
   */
  static String describe(Exception error) {
    Throwable cause = error instanceof UncheckedIOException ? error.getCause() : error;
    if (cause instanceof FileSystemException fileError) {
      return describeFileError(fileError);
    }
    if (error instanceof InvalidPathException invalid) {
      // Java encodes file names with the locale's charset, so under LANG=C a non-ASCII name fails.
      return invalid.getInput()
          + ": "
          + invalid.getReason()
          + " in the file-name encoding of this locale ("
          + System.getProperty("sun.jnu.encoding")
          + "); run kiln with a UTF-8 locale, such as LC_ALL=C.UTF-8, or rename the file";
    }
    return error.getMessage() != null ? error.getMessage() : error.toString();
  }

  /**
   * Returns "FILE: PROBLEM (other file: OTHER)". PROBLEM is the exception's reason where it has one
   * (the operating system's error text, or kiln's description and fix), or else a phrase for its
   * type, because the JDK leaves the reason empty where the type alone names the error.
   */
  static String describeFileError(FileSystemException error) {
    String problem = error.getReason() != null ? error.getReason() : problemOf(error);
    String message = error.getFile() != null ? error.getFile() + ": " + problem : problem;
    if (error.getOtherFile() != null) {
      message += " (other file: " + error.getOtherFile() + ")";
    }
    return message;
  }

  private static String problemOf(FileSystemException error) {
    return switch (error) {
      case NoSuchFileException _ -> "not found";
      case AccessDeniedException _ -> "permission denied";
      case FileAlreadyExistsException _ -> "already exists";
      case NotDirectoryException _ -> "is not a folder";
      case DirectoryNotEmptyException _ -> "folder is not empty";
      case NotLinkException _ -> "is not a symbolic link";
      case FileSystemLoopException _ -> "is in a cycle of symbolic links";
      case AtomicMoveNotSupportedException _ -> "cannot be moved atomically";
      default -> "file system error (" + error.getClass().getSimpleName() + ")";
    };
  }

  /**
   * Checks that {@code checkpoint}, the value of a command's --checkpoint option, is an existing
   * file, so that a wrong path fails before any other work with a message that names the file to
   * pass.
   */
  static void requireCheckpointFile(Path checkpoint) throws IOException {
    String advice =
        "pass best.safetensors or last.safetensors from a training run folder, such as"
            + " runs/NAME/best.safetensors";
    if (Files.isDirectory(checkpoint)) {
      throw new FileSystemException(
          checkpoint.toString(), null, "--checkpoint is a folder; " + advice);
    }
    if (!Files.exists(checkpoint)) {
      throw new NoSuchFileException(
          checkpoint.toString(), null, "--checkpoint not found; " + advice);
    }
    // Reading a FIFO would block until something writes to it.
    if (!Files.isRegularFile(checkpoint)) {
      throw new FileSystemException(
          checkpoint.toString(),
          null,
          "--checkpoint is not a regular file (a FIFO, socket or device); " + advice);
    }
  }

  /**
   * Checks, before any work, that each file {@code names} that a command will write into {@code
   * folder} is absent or a regular file, so that a folder or FIFO in its place fails the command
   * before anything is written. A symbolic link fails too, dangling or not, because kiln's writes
   * replace a link with a plain file, and the user who made the link would not expect that. So does
   * a name longer than {@link AtomicFiles#MAX_NAME_BYTES}, which would fail only when the file is
   * renamed into place, after the others of its set.
   */
  static void requireOutputFiles(Path folder, List<String> names) throws IOException {
    for (String name : names) {
      Path target = folder.resolve(name);
      int bytes = name.getBytes(StandardCharsets.UTF_8).length;
      if (bytes > AtomicFiles.MAX_NAME_BYTES) {
        throw new FileSystemException(
            target.toString(),
            null,
            "the name is "
                + bytes
                + " bytes long, more than the "
                + AtomicFiles.MAX_NAME_BYTES
                + " that common file systems allow; rename the input so that its output name is"
                + " shorter");
      }
      if (Files.isSymbolicLink(target)) {
        throw new FileSystemException(
            target.toString(),
            null,
            "is a symbolic link, which writing this output would replace with a plain file;"
                + " remove the link, or pass another --output");
      }
      if (Files.exists(target) && !Files.isRegularFile(target)) {
        String kind = Files.isDirectory(target) ? "a folder" : "not a regular file";
        throw new FileSystemException(
            target.toString(),
            null,
            "is "
                + kind
                + ", but kiln writes a file of that name into --output; move or remove it, or pass"
                + " another --output");
      }
    }
  }

  /**
   * Checks that {@code output}, the value of a command's --output option, is a writable folder or
   * can be created. Commands call it before any work, so that a file in its place costs no work.
   */
  static void requireOutputFolder(Path output) throws IOException {
    // The nearest folder that exists is the one where writing begins: output itself, or the
    // ancestor in which createDirectories makes the missing folders.
    Path absolute = output.toAbsolutePath().normalize();
    Path existing = absolute;
    while (!Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
      existing = existing.getParent();
    }
    if (!Files.isDirectory(existing)) {
      String problem =
          existing.equals(absolute)
              ? "--output is not a folder"
              : "--output cannot be created because " + existing + " is not a folder";
      throw new FileSystemException(output.toString(), null, problem + "; pass another --output");
    }
    if (!Files.isWritable(existing)) {
      throw new AccessDeniedException(
          output.toString(),
          null,
          "permission denied: cannot write to "
              + existing
              + "; make it writable or pass another --output");
    }
  }

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }
}
