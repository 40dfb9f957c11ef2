package dev.kiln.keypoints.fetch;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodySubscriber;
import java.net.http.HttpResponse.BodySubscribers;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.UnresolvedAddressException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLException;

/**
 * One HTTP GET of a URL into a file, with a connect timeout, a read timeout that covers both the
 * wait for the response headers and any pause in the body, and progress reports.
 */
final class Download {
  private final URI url;
  private final Duration connectTimeout;
  private final Duration readTimeout;
  private final DataFetcher.Progress progress;
  private final AtomicLong received = new AtomicLong();
  private final AtomicLong lastDataNanos = new AtomicLong();

  Download(URI url, Duration connectTimeout, Duration readTimeout, DataFetcher.Progress progress) {
    this.url = url;
    this.connectTimeout = connectTimeout;
    this.readTimeout = readTimeout;
    this.progress = progress;
  }

  /**
   * Downloads the URL into {@code file}, replacing its content.
   *
   * @throws FetchException if the connection, the HTTP status or the transfer fails, with the
   *     manual-download advice in the message
   */
  void saveTo(Path file) throws FetchException {
    HttpClient client =
        HttpClient.newBuilder()
            .connectTimeout(connectTimeout)
            .followRedirects(HttpClient.Redirect.NORMAL)
            .build();
    try {
      HttpRequest request = HttpRequest.newBuilder(url).timeout(readTimeout).GET().build();
      long[] expectedLength = {-1};
      HttpResponse.BodyHandler<Path> handler =
          info -> {
            if (info.statusCode() != 200) {
              return BodySubscribers.replacing(null);
            }
            expectedLength[0] = info.headers().firstValueAsLong("Content-Length").orElse(-1);
            BodySubscriber<Path> toFile =
                BodySubscribers.ofFile(
                    file,
                    StandardOpenOption.CREATE,
                    StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING);
            return new CountingSubscriber(toFile, expectedLength[0]);
          };

      lastDataNanos.set(System.nanoTime());
      HttpResponse<Path> response = await(client.sendAsync(request, handler));
      if (response.statusCode() != 200) {
        throw failure("the server returned HTTP " + response.statusCode(), null);
      }
      if (expectedLength[0] >= 0 && received.get() != expectedLength[0]) {
        throw failure(
            "the download ended after " + received.get() + " of " + expectedLength[0] + " bytes",
            null);
      }
    } finally {
      client.shutdownNow();
    }
  }

  /** Waits for the response, cancelling it when no data arrives for the read timeout. */
  private HttpResponse<Path> await(CompletableFuture<HttpResponse<Path>> future)
      throws FetchException {
    long pollMillis = Math.clamp(readTimeout.toMillis() / 4, 10, 250);
    while (true) {
      try {
        return future.get(pollMillis, TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        if (System.nanoTime() - lastDataNanos.get() > readTimeout.toNanos()) {
          future.cancel(true);
          throw failure(
              "the transfer timed out: no data arrived for "
                  + seconds(readTimeout)
                  + " after "
                  + received.get()
                  + " bytes",
              null);
        }
      } catch (InterruptedException e) {
        future.cancel(true);
        Thread.currentThread().interrupt();
        throw new FetchException("the download of " + url + " was interrupted", e);
      } catch (ExecutionException e) {
        throw describe(e.getCause());
      }
    }
  }

  /** Turns an exception of the HTTP client into a message that names the failure. */
  private FetchException describe(Throwable error) {
    String host = url.getHost() + (url.getPort() >= 0 ? ":" + url.getPort() : "");
    if (error instanceof HttpConnectTimeoutException) {
      return failure(
          "connecting to " + host + " timed out after " + seconds(connectTimeout), error);
    }
    if (error instanceof HttpTimeoutException) {
      return failure(
          "the request timed out: " + host + " sent no response within " + seconds(readTimeout),
          error);
    }
    // NOTE: the DNS branch follows how java.net.http reports an unknown host (a ConnectException
    // caused by UnresolvedAddressException); the tests do not run it, since they contact no
    // resolver.
    for (Throwable cause = error; cause != null; cause = cause.getCause()) {
      if (cause instanceof UnresolvedAddressException || cause instanceof UnknownHostException) {
        return failure("the host name " + url.getHost() + " could not be resolved (DNS)", error);
      }
    }
    if (error instanceof ConnectException) {
      String detail =
          error.getMessage() == null
              ? "connection refused or host unreachable"
              : error.getMessage();
      return failure("could not connect to " + host + " (" + detail + ")", error);
    }
    if (error instanceof SSLException) {
      return failure(
          "the TLS connection to " + host + " failed (" + error.getMessage() + ")", error);
    }
    if (error instanceof IOException) {
      return failure("the transfer failed (" + error + ")", error);
    }
    return failure("the HTTP client failed (" + error + ")", error);
  }

  private FetchException failure(String reason, Throwable cause) {
    return new FetchException(
        "Could not download "
            + url
            + ": "
            + reason
            + ". Download the archive by hand from "
            + url
            + " and run `kiln fetch-data --archive FILE`, or point `--data` at a copy of the"
            + " dataset.",
        cause);
  }

  private static String seconds(Duration duration) {
    return duration.toMillis() / 1000.0 + " s";
  }

  /** Passes the body on to the file subscriber, counting bytes and reporting progress. */
  private final class CountingSubscriber implements BodySubscriber<Path> {
    private final BodySubscriber<Path> target;
    private final long total;

    CountingSubscriber(BodySubscriber<Path> target, long total) {
      this.target = target;
      this.total = total;
    }

    @Override
    public CompletionStage<Path> getBody() {
      return target.getBody();
    }

    @Override
    public void onSubscribe(Flow.Subscription subscription) {
      target.onSubscribe(subscription);
    }

    @Override
    public void onNext(List<ByteBuffer> buffers) {
      long bytes = 0;
      for (ByteBuffer buffer : buffers) {
        bytes += buffer.remaining();
      }
      lastDataNanos.set(System.nanoTime());
      long done = received.addAndGet(bytes);
      target.onNext(buffers);
      progress.update(done, total);
    }

    @Override
    public void onError(Throwable error) {
      target.onError(error);
    }

    @Override
    public void onComplete() {
      target.onComplete();
    }
  }
}
