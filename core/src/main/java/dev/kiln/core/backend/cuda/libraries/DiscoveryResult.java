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
   * Describes the result for a log line or an error: the file found, or why none was, with the
   * rejections and the setting that fixes it.
   */
  public String describe() {
    StringBuilder text = new StringBuilder();
    if (candidates.isEmpty()) {
      List<String> names = library.versions().stream().map(library::fileName).toList();
      text.append("no ")
          .append(String.join(" or ", names))
          .append(" was found in ")
          .append(searchedFolders.size())
          .append(" searched folder(s)");
    } else {
      text.append("found ").append(candidates.getFirst().path());
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
