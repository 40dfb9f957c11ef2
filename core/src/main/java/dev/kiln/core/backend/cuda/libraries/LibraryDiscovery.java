package dev.kiln.core.backend.cuda.libraries;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Finds the shared libraries of cuBLAS and cuDNN on disk, without loading them.
 *
 * <h2>Where it looks</h2>
 *
 * <p>NVIDIA's libraries reach a machine in several ways: a CUDA toolkit under {@code
 * /usr/local/cuda}, a distribution package under {@code /usr/lib/x86_64-linux-gnu}, or the Python
 * wheels that PyTorch installs ({@code nvidia-cublas}, {@code nvidia-cudnn}), which put them under
 * {@code site-packages/nvidia/<name>/lib}. The folders are searched in this order:
 *
 * <ol>
 *   <li>the folders of {@code KILN_CUDA_LIB_PATH}, a colon-separated list that overrides everything
 *       else;
 *   <li>the folders of {@code LD_LIBRARY_PATH};
 *   <li>{@code nvidia/*}{@code /lib} inside the active {@code VIRTUAL_ENV} and {@code
 *       CONDA_PREFIX}, and {@code CONDA_PREFIX/lib}, where conda's own {@code cudnn} and {@code
 *       libcublas} packages put the libraries;
 *   <li>{@code nvidia/*}{@code /lib} inside the Python environment of the first {@code python3} on
 *       {@code PATH}: the parent of its folder, as {@code /opt/venv} for {@code
 *       /opt/venv/bin/python3}. A container image can put a virtual environment's {@code bin} first
 *       on the {@code PATH} without setting {@code VIRTUAL_ENV}, and then its wheels are in none of
 *       the other folders. Python is not run, and a {@code python3} that is a link counts where the
 *       link is, because a virtual environment's {@code python3} links to the system's. The
 *       system's own Python, in {@code /usr/bin} or {@code /usr/local/bin}, adds nothing here;
 *   <li>the toolkit and system folders ({@link #SYSTEM_FOLDERS});
 *   <li>{@code nvidia/*}{@code /lib} inside the user's and the system's Python package folders
 *       ({@link #PYTHON_PACKAGE_FOLDERS}), found without running Python.
 * </ol>
 *
 * <h2>Which version</h2>
 *
 * <p>Each library is looked for under its versioned names, newest first: {@code libcublas.so.13}
 * then {@code .12}, {@code libcudnn.so.9} then {@code .8}. The folders of {@code
 * KILN_CUDA_LIB_PATH} are searched for every version before any other folder, so that the user's
 * choice wins. Elsewhere the newer version wins over the folder order.
 *
 * <h2>What it reports</h2>
 *
 * <p>A file that exists but cannot be a loadable library (empty, a folder, unreadable, not an ELF
 * file, a 32-bit one, or one for another processor) is rejected with the reason, and the search
 * goes on. The result lists the usable candidates in order and every rejection, so that a failed
 * load can be explained.
 *
 * <p>The environment, the file-system root and the home folder are constructor arguments, so that
 * tests can build fake folder trees.
 */
public final class LibraryDiscovery {

  /** The variable whose folders are searched first. */
  public static final String PATH_VARIABLE = "KILN_CUDA_LIB_PATH";

  /** Toolkit and system folders, relative to the file-system root; {@code *} matches any name. */
  public static final List<String> SYSTEM_FOLDERS =
      List.of(
          "usr/local/cuda/lib64",
          "usr/local/cuda/targets/x86_64-linux/lib",
          "usr/local/cuda-*/lib64",
          "usr/local/cuda-*/targets/x86_64-linux/lib",
          "usr/lib/x86_64-linux-gnu",
          "usr/lib64",
          "usr/lib");

  /** Python package folders, relative to the root, except those starting with {@code ~/}. */
  public static final List<String> PYTHON_PACKAGE_FOLDERS =
      List.of(
          "~/.local/lib/python3.*/site-packages",
          "usr/local/lib/python3.*/dist-packages",
          "usr/local/lib/python3.*/site-packages",
          "usr/lib/python3/dist-packages",
          "usr/lib/python3.*/site-packages");

  /** The four bytes that start every ELF file: 0x7f, 'E', 'L', 'F'. */
  private static final byte[] ELF_MAGIC = {0x7f, 'E', 'L', 'F'};

  /** Position of the ELF header's file class, whose value 2 means 64-bit. */
  private static final int ELF_CLASS_OFFSET = 4;

  private static final int ELF_CLASS_64 = 2;

  /** Position of the ELF header's byte order, whose value 2 means big-endian. */
  private static final int ELF_DATA_OFFSET = 5;

  private static final int ELF_DATA_BIG_ENDIAN = 2;

  /** Position of the ELF header's two-byte processor code, {@code e_machine}. */
  private static final int ELF_MACHINE_OFFSET = 18;

  private final Map<String, String> environment;
  private final Path root;
  private final Path home;

  /**
   * Creates a discovery over the given environment and file system.
   *
   * @param environment the environment variables, such as {@code System.getenv()}
   * @param root the file-system root that system folders are resolved against, {@code /} in
   *     production and a temporary folder in tests
   * @param home the user's home folder, for {@code ~/.local}
   */
  public LibraryDiscovery(Map<String, String> environment, Path root, Path home) {
    this.environment = Map.copyOf(environment);
    this.root = root;
    this.home = home;
  }

  /** Returns a discovery over this process's environment, {@code /} and {@code user.home}. */
  public static LibraryDiscovery system() {
    return new LibraryDiscovery(
        System.getenv(), Path.of("/"), Path.of(System.getProperty("user.home")));
  }

  /**
   * Searches every folder for the library's versioned names.
   *
   * @return the usable candidates in order of preference, and every rejected file with its reason
   */
  public DiscoveryResult find(VendorLibrary library) {
    List<Path> preferred = existingFolders(splitPathList(environment.get(PATH_VARIABLE)));
    List<Path> others = new ArrayList<>(searchFolders());
    others.removeAll(preferred);

    List<DiscoveryResult.Candidate> candidates = new ArrayList<>();
    List<DiscoveryResult.Rejection> rejections = new ArrayList<>(unusableSettingEntries());
    for (List<Path> tier : List.of(preferred, others)) {
      for (int version : library.versions()) {
        String fileName = library.fileName(version);
        for (Path folder : tier) {
          Path file = folder.resolve(fileName);
          if (!Files.exists(file) && !Files.isSymbolicLink(file)) {
            continue;
          }
          String problem = problemWith(file);
          if (problem == null) {
            candidates.add(new DiscoveryResult.Candidate(file, version));
          } else {
            rejections.add(new DiscoveryResult.Rejection(file, problem));
          }
        }
      }
    }
    List<Path> searched = new ArrayList<>(preferred);
    searched.addAll(others);
    return new DiscoveryResult(library, candidates, rejections, searched);
  }

  /**
   * Returns every existing folder that is searched, in order and without duplicates, including the
   * folders of {@code KILN_CUDA_LIB_PATH}.
   */
  public List<Path> searchFolders() {
    Set<Path> folders = new LinkedHashSet<>();
    folders.addAll(existingFolders(splitPathList(environment.get(PATH_VARIABLE))));
    folders.addAll(existingFolders(splitPathList(environment.get("LD_LIBRARY_PATH"))));
    for (String variable : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
      Path prefix = environmentPath(variable);
      if (prefix != null) {
        folders.addAll(expand(prefix, "lib/python3.*/site-packages/nvidia/*/lib"));
      }
    }
    Path conda = environmentPath("CONDA_PREFIX");
    if (conda != null) {
      folders.addAll(expand(conda, "lib"));
    }
    Path pythonPrefix = pythonEnvironmentOnPath();
    if (pythonPrefix != null) {
      folders.addAll(expand(pythonPrefix, "lib/python3.*/site-packages/nvidia/*/lib"));
    }
    for (String pattern : SYSTEM_FOLDERS) {
      folders.addAll(expand(root, pattern));
    }
    for (String pattern : PYTHON_PACKAGE_FOLDERS) {
      String packages = pattern + "/nvidia/*/lib";
      if (packages.startsWith("~/")) {
        folders.addAll(expand(home, packages.substring(2)));
      } else {
        folders.addAll(expand(root, packages));
      }
    }
    return List.copyOf(folders);
  }

  /** Returns the path in environment variable {@code name}, or null where it has none. */
  private Path environmentPath(String name) {
    String value = environment.get(name);
    return value == null || value.isBlank() ? null : pathOf(value.strip());
  }

  /**
   * Returns the parent of the folder that contains the first executable {@code python3} on {@code
   * PATH}, such as {@code /opt/venv} for {@code /opt/venv/bin/python3}, or null where there is none
   * or it is the system's Python in {@code /usr} or {@code /usr/local}. The entry itself is not
   * resolved, so a {@code python3} that links elsewhere still names the environment whose {@code
   * bin} contains the link.
   */
  private Path pythonEnvironmentOnPath() {
    for (Path entry : splitPathList(environment.get("PATH"))) {
      Path folder = entry.toAbsolutePath().normalize();
      Path python = folder.resolve("python3");
      if (Files.isRegularFile(python) && Files.isExecutable(python)) {
        Path prefix = folder.getParent();
        // The system's Python, in /usr or /usr/local, keeps its place among the folders searched
        // last (PYTHON_PACKAGE_FOLDERS), below the toolkit.
        boolean system =
            prefix != null
                && (prefix.equals(root.resolve("usr").toAbsolutePath().normalize())
                    || prefix.equals(root.resolve("usr/local").toAbsolutePath().normalize()));
        return system ? null : prefix;
      }
    }
    return null;
  }

  /**
   * Returns the entries of {@code KILN_CUDA_LIB_PATH} that are not folders, each with the reason,
   * so that a mistyped setting is reported instead of skipped.
   */
  private List<DiscoveryResult.Rejection> unusableSettingEntries() {
    List<DiscoveryResult.Rejection> unusable = new ArrayList<>();
    String setting = environment.get(PATH_VARIABLE);
    for (String entry : setting == null ? new String[0] : setting.split(":")) {
      if (!entry.isBlank() && pathOf(entry.strip()) == null) {
        unusable.add(
            new DiscoveryResult.Rejection(
                Path.of(printable(entry.strip())),
                "is named in "
                    + PATH_VARIABLE
                    + " but is not a file name that this JVM can use (sun.jnu.encoding="
                    + System.getProperty("sun.jnu.encoding")
                    + "): rename the folder, or run with a UTF-8 locale such as LC_ALL=C.UTF-8"));
      }
    }
    for (Path entry : splitPathList(setting)) {
      Path absolute = entry.toAbsolutePath().normalize();
      if (Files.isDirectory(absolute)) {
        continue;
      }
      String reason;
      if (Files.exists(absolute)) {
        reason =
            "is named in " + PATH_VARIABLE + " but is a file; give the folder that contains it";
      } else if (Files.isSymbolicLink(absolute)) {
        reason = "is named in " + PATH_VARIABLE + " but " + unresolvedLink(absolute);
      } else {
        reason =
            "is named in "
                + PATH_VARIABLE
                + " but does not exist (relative entries are taken from the working directory,"
                + " and ~ is not expanded)";
      }
      unusable.add(new DiscoveryResult.Rejection(absolute, reason));
    }
    return unusable;
  }

  /**
   * Returns {@code text} as a path, or null where this JVM cannot use it as a file name. An example
   * is a name with characters outside ASCII under the C locale, in which Java encodes file names as
   * ASCII.
   */
  private static Path pathOf(String text) {
    try {
      return Path.of(text);
    } catch (InvalidPathException e) {
      return null;
    }
  }

  /** Returns {@code text} with each character outside printable ASCII replaced by '?'. */
  private static String printable(String text) {
    StringBuilder out = new StringBuilder();
    text.chars().forEach(c -> out.append(c < 0x20 || c > 0x7e ? '?' : (char) c));
    return out.toString();
  }

  /**
   * Splits a colon-separated path list, skipping empty entries, which would mean "here", and
   * entries that {@link #pathOf} rejects.
   */
  static List<Path> splitPathList(String value) {
    List<Path> paths = new ArrayList<>();
    if (value == null) {
      return paths;
    }
    for (String entry : value.split(":")) {
      Path path = entry.isBlank() ? null : pathOf(entry.strip());
      if (path != null) {
        paths.add(path);
      }
    }
    return paths;
  }

  private static List<Path> existingFolders(List<Path> paths) {
    List<Path> folders = new ArrayList<>();
    for (Path path : paths) {
      Path normalized = path.toAbsolutePath().normalize();
      if (Files.isDirectory(normalized) && !folders.contains(normalized)) {
        folders.add(normalized);
      }
    }
    return folders;
  }

  /**
   * Expands a relative pattern whose segments may contain {@code *} into the existing folders that
   * match it. Matches of one segment are sorted by name in reverse, so that {@code cuda-13.0} comes
   * before {@code cuda-12.6} and {@code python3.12} before {@code python3.10}.
   */
  static List<Path> expand(Path base, String pattern) {
    List<Path> current = List.of(base.toAbsolutePath().normalize());
    for (String segment : pattern.split("/")) {
      List<Path> next = new ArrayList<>();
      for (Path folder : current) {
        if (!segment.contains("*")) {
          Path child = folder.resolve(segment);
          if (Files.isDirectory(child)) {
            next.add(child);
          }
          continue;
        }
        List<Path> matches = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(folder, segment)) {
          for (Path child : stream) {
            if (Files.isDirectory(child)) {
              matches.add(child);
            }
          }
        } catch (IOException | SecurityException e) {
          // An unreadable folder contains no usable library, so the search skips it.
          continue;
        }
        matches.sort(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed());
        next.addAll(matches);
      }
      current = next;
    }
    return current;
  }

  /**
   * Returns why the symbolic link {@code link}, which {@link Files#exists} reports as missing,
   * cannot be followed: its target is missing, or the system stops following it, as for a loop of
   * links.
   */
  static String unresolvedLink(Path link) {
    try {
      link.toRealPath();
      return "is a symbolic link that could not be followed";
    } catch (NoSuchFileException e) {
      return "is a broken symbolic link (its target does not exist)";
    } catch (FileSystemException e) {
      String reason = e.getReason() != null ? e.getReason() : e.getClass().getSimpleName();
      return "is a symbolic link that cannot be followed, such as a loop of links (" + reason + ")";
    } catch (IOException e) {
      return "is a symbolic link that cannot be followed (" + e.getMessage() + ")";
    }
  }

  /**
   * Returns why {@code file} cannot be a 64-bit shared library, or null where it may be one. Only
   * the header is read, so a file that passes may still fail to load, for example when a library
   * that it depends on is missing.
   */
  public static String problemWith(Path file) {
    if (!Files.exists(file)) {
      return unresolvedLink(file);
    }
    if (!Files.isRegularFile(file)) {
      return "is not a regular file";
    }
    if (!Files.isReadable(file)) {
      return "is not readable by this user";
    }
    byte[] header = new byte[ELF_MACHINE_OFFSET + 2];
    int read;
    try (InputStream in = Files.newInputStream(file)) {
      read = in.readNBytes(header, 0, header.length);
    } catch (IOException e) {
      return "could not be read (" + e.getMessage() + ")";
    }
    if (read == 0) {
      return "is empty (0 bytes), so the installation is incomplete";
    }
    for (int i = 0; i < ELF_MAGIC.length; i++) {
      if (i >= read || header[i] != ELF_MAGIC[i]) {
        return "is not an ELF shared library (it does not start with 0x7f 'ELF')";
      }
    }
    if (read <= ELF_CLASS_OFFSET || header[ELF_CLASS_OFFSET] != ELF_CLASS_64) {
      return "is not a 64-bit ELF library, so a 64-bit JVM cannot load it";
    }
    if (read < header.length) {
      return "is only " + read + " bytes long, too short for an ELF header";
    }
    int machine = elfMachine(header);
    int expected = elfMachineOfThisJvm();
    if (expected != 0 && machine != expected) {
      return "is a library for another processor (ELF machine "
          + machine
          + "), while this JVM runs on "
          + System.getProperty("os.arch");
    }
    return null;
  }

  /**
   * Returns the ELF machine code of this JVM's processor ({@code e_machine}): 62 for x86-64, 183
   * for AArch64, 21 for 64-bit POWER, or 0 for another processor, which the check then skips.
   */
  static int elfMachineOfThisJvm() {
    return switch (System.getProperty("os.arch")) {
      case "amd64", "x86_64" -> 62;
      case "aarch64" -> 183;
      case "ppc64le" -> 21;
      default -> 0;
    };
  }

  /** Reads {@code e_machine} from an ELF header, in the byte order that the header declares. */
  private static int elfMachine(byte[] header) {
    int first = header[ELF_MACHINE_OFFSET] & 0xff;
    int second = header[ELF_MACHINE_OFFSET + 1] & 0xff;
    return header[ELF_DATA_OFFSET] == ELF_DATA_BIG_ENDIAN
        ? (first << 8) | second
        : (second << 8) | first;
  }
}
