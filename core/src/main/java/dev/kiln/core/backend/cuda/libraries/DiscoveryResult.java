package dev.kiln.core.backend.cuda.libraries;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The outcome of one {@link LibraryDiscovery} search.
 *
 * @param library the library that was searched for
 * @param candidates the files that look loadable, best first
 * @param rejections the files that exist under a searched name but cannot be loaded, and the
 *     entries of {@code KILN_CUDA_LIB_PATH} that are not folders, with reasons
 * @param searchedFolders every existing folder that was searched, in order
 */
public record DiscoveryResult(
    VendorLibrary library,
    List<Candidate> candidates,
    List<Rejection> rejections,
    List<Path> searchedFolders) {

  /**
   * A file that passed the header check.
   *
   * @param path the library file
   * @param version the major version that its name carries
   */
  public record Candidate(Path path, int version) {}

  /**
   * A file that exists under a searched name but cannot be loaded.
   *
   * @param path the file
   * @param reason why, as a phrase that follows the path, such as "is empty (0 bytes)"
   */
  public record Rejection(Path path, String reason) {

    @Override
    public String toString() {
      return path + " " + reason;
    }
  }

  /** Copies the lists. */
  public DiscoveryResult {
    candidates = List.copyOf(candidates);
    rejections = List.copyOf(rejections);
    searchedFolders = List.copyOf(searchedFolders);
  }

  /** Returns the best candidate, or empty where none was found. */
  public Optional<Candidate> best() {
    return candidates.isEmpty() ? Optional.empty() : Optional.of(candidates.getFirst());
  }

  /**
   * Returns the outcome in one clause, without folders or advice: "found PATH", "no libcublas.so.13
   * or libcublas.so.12 was found", or, where files or settings were rejected, "no usable ... was
   * found: " and the first rejection.
   */
  public String summary() {
    if (!candidates.isEmpty()) {
      return "found " + candidates.getFirst().path();
    }
    if (rejections.isEmpty()) {
      return "no " + fileNames() + " was found";
    }
    String more = rejections.size() > 1 ? " (and " + (rejections.size() - 1) + " more)" : "";
    return "no usable " + fileNames() + " was found: " + rejections.getFirst() + more;
  }

  private String fileNames() {
    return String.join(" or ", library.versions().stream().map(library::fileName).toList());
  }

  /**
   * Describes the result for a log line or an error: the file found, or why none was, with the
   * folders searched, the rejections and the setting that fixes it.
   */
  public String describe() {
    StringBuilder text =
        new StringBuilder(
            candidates.isEmpty()
                ? (rejections.isEmpty() ? "no " : "no usable ") + fileNames() + " was found"
                : "found " + candidates.getFirst().path());
    if (candidates.isEmpty()) {
      if (searchedFolders.isEmpty()) {
        text.append(", because none of the folders searched exists");
      } else {
        text.append(" in ")
            .append(searchedFolders.size())
            .append(searchedFolders.size() == 1 ? " folder (" : " folders (")
            .append(String.join(", ", searchedFolders.stream().map(Path::toString).toList()))
            .append(")");
      }
    }
    if (!rejections.isEmpty()) {
      text.append("; rejected: ");
      text.append(String.join("; ", rejections.stream().map(Rejection::toString).toList()));
    }
    if (candidates.isEmpty()) {
      text.append("; install it (from the CUDA toolkit or NVIDIA's Python wheels) or set ")
          .append(LibraryDiscovery.PATH_VARIABLE)
          .append(" to the folder that contains it");
    }
    return text.toString();
  }
}
