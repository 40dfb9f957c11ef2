package dev.kiln.keypoints.predict;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.ImageDecoder;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Checkpoint;
import dev.kiln.keypoints.train.RunMetadata;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.Pipelines;
import dev.kiln.keypoints.transform.ToTensor;
import dev.kiln.keypoints.transform.Transform;
import dev.kiln.nn.Sequential;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * A trained keypoint model, ready to predict: the API for applications that embed kiln.
 *
 * <pre>{@code
 * KeypointDetector detector = KeypointDetector.load(Path.of("runs/x/best.safetensors"));
 * double[] points = detector.detect(Path.of("face.jpg")); // x0, y0, ..., x67, y67
 * }</pre>
 *
 * <p>The input is a face crop, as in the training data. Like evaluation, prediction rescales the
 * shorter side to 1.15 × {@link #inputSize()} and cuts the central square of {@link #inputSize()}.
 * The model's input therefore covers the central square of side about shorter side / 1.15, and the
 * rest of the image is not used.
 *
 * <p>Keypoints are returned as 136 doubles {@code x0, y0, x1, y1, ..., x67, y67} in the continuous
 * pixel coordinates of the image passed in, as {@link GrayImage} defines them: (0, 0) is the
 * top-left corner of the image, (width, height) its bottom-right corner, and the centre of pixel
 * (i, j) is (i + 0.5, j + 0.5). The model may place a point outside the image.
 *
 * <p>An instance is safe to use from many threads at once, on every device: it never changes after
 * loading, and each call runs the model in evaluation mode without recording a graph. Calls from
 * different threads return the same values, bit for bit, as the same calls from one thread. The
 * caller must not change an image's pixels while a call that uses the image runs. On a device
 * ({@link #load(Path, Device)}), concurrent calls share the device's one stream (on {@code
 * emulated}, its one launch at a time), so their kernels run one after another and only the CPU
 * work before and after them runs in parallel. Tests check this on {@code emulated}. NOTE: on
 * {@code cuda:N} it has not run on a GPU yet. There it rests on the CUDA backend's design: one
 * stream, no atomics in the forward kernels, and cuDNN algorithms chosen once per shape.
 *
 * <p>Each thread that calls keeps the CPU kernels' scratch arrays (a few MB) between calls, until
 * the heap runs short, and each call in flight needs its activations on the heap, or on a device in
 * its memory until the call returns. A service therefore does best with a fixed pool of about as
 * many threads as cores. The project README gives measured figures.
 */
public final class KeypointDetector {

  /**
   * Largest input side S, in pixels, that {@link #load} accepts. The built-in model presets take
   * 96. With S at most 1024 and images within {@link GrayImage#MAX_ASPECT_RATIO}, the rescaled
   * image stays under 140 million floats.
   */
  public static final int MAX_INPUT_SIZE = 1024;

  /**
   * Largest number of values that the layers of {@link #load}'s model may produce for one image, 1
   * GiB as float32. The built-in presets stay far below it; it is a chosen bound that keeps a
   * changed model description from exhausting memory at the first call.
   */
  public static final long MAX_ACTIVATIONS_PER_IMAGE = 1L << 28;

  /**
   * Smallest side, in pixels, of an image that the detector accepts. It is a chosen bound. The
   * faces of the training data are at least 72 pixels on their shorter side. In a crop under 16
   * pixels, the eyes, nose and mouth cover a pixel or two each, so the model would place its points
   * on blur, yet it would return 68 of them even for a 1x1 image.
   */
  public static final int MIN_IMAGE_SIDE = 16;

  private final Sequential model;
  private final Device device;
  private final int inputSize;
  private final KeypointNormalization normalization;
  private final Transform pipeline;

  private KeypointDetector(Sequential model, Device device, KeypointNormalization normalization) {
    this.model = model;
    this.device = device;
    this.inputSize = normalization.inputSize();
    this.normalization = normalization;
    this.pipeline = Pipelines.evaluation(inputSize);
  }

  /**
   * Loads a checkpoint written by {@code kiln train} ({@code best.safetensors} or {@code
   * last.safetensors}); it contains the model description, the keypoint normalization and the
   * weights. The model must take 1 × S × S gray images, with S equal to the normalization's input
   * size and at most {@link #MAX_INPUT_SIZE}.
   *
   * <p>Only the model's tensors are decoded, not the optimizer's state, and all of them are read
   * through one open file. A checkpoint that a running training replaces meanwhile, by a rename as
   * it always does, therefore loads whole in its old version.
   *
   * @throws NullPointerException if {@code checkpointFile} is null
   * @throws java.nio.file.NoSuchFileException if the file does not exist, with the message "FILE:
   *     safetensors file not found"
   * @throws IOException if the file cannot be read or is not a kiln training checkpoint: the model
   *     description or the keypoint normalization is missing or invalid, they disagree on the input
   *     size, the weights do not fit the model, or a weight is NaN or infinite. The message names
   *     the file.
   */
  public static KeypointDetector load(Path checkpointFile) throws IOException {
    return load(checkpointFile, Device.CPU);
  }

  /**
   * Loads a checkpoint as {@link #load(Path)} does and moves the model to {@code device}, where
   * every later prediction runs: each call copies its input crops there and its outputs back to the
   * CPU. The device is opened before the file is read, so an unusable one fails first.
   *
   * <p>Results on a device may differ from the CPU's in the last float32 bits, because its kernels
   * sum in another order. NOTE: {@code cuda:N} has not run on a GPU yet, so its results are
   * unchecked.
   *
   * @param device {@link Device#CPU}, {@code cuda:N} or {@code emulated} (kiln's CUDA kernels
   *     compiled for the CPU: a test device, far slower than the CPU)
   * @throws NullPointerException if {@code checkpointFile} or {@code device} is null
   * @throws IllegalStateException if {@code device} cannot be used, with the reason (no driver, no
   *     GPU, no fatbin in the build, no emulation library)
   * @throws IOException as {@link #load(Path)} does
   */
  public static KeypointDetector load(Path checkpointFile, Device device) throws IOException {
    Objects.requireNonNull(checkpointFile, "checkpointFile must not be null");
    Objects.requireNonNull(device, "device must not be null");
    requireUsable(device);
    Checkpoint checkpoint = Checkpoint.readModel(checkpointFile);
    Map<String, String> metadata = checkpoint.metadata();

    ModelSpec spec = RunMetadata.modelSpec(metadata, checkpointFile);
    KeypointNormalization normalization = readNormalization(checkpointFile, metadata);
    requireMatchingInput(checkpointFile, spec, normalization);
    requireStoredParameters(checkpointFile, spec, checkpoint);
    requireActivationSize(checkpointFile, spec);

    Sequential model = spec.build(DType.FLOAT32, new Generator(0));
    try {
      checkpoint.loadModel(model);
    } catch (IllegalArgumentException e) {
      throw new IOException(
          checkpointFile + ": the weights do not fit the stored model: " + e.getMessage(), e);
    }
    requireFiniteWeights(checkpointFile, model);
    model.eval();
    model.to(device);
    return new KeypointDetector(model, device, normalization);
  }

  /** Opens {@code device}'s kernels, or throws an IllegalStateException with the reason. */
  private static void requireUsable(Device device) {
    if (device.isCpu()) {
      return;
    }
    Optional<String> failure = DeviceKernels.openFailure(device);
    if (failure.isPresent()) {
      throw new IllegalStateException(
          "cannot predict on " + device + ": " + failure.get() + "; load on Device.CPU instead");
    }
  }

  /**
   * Rejects a model with a NaN or infinite weight, which a diverged run or a damaged file leaves:
   * the predictions would then be NaN, and the error would first appear far from the file.
   */
  private static void requireFiniteWeights(Path file, Sequential model) throws IOException {
    for (Map.Entry<String, Tensor> entry : model.stateDict().entrySet()) {
      double[] values = entry.getValue().toDoubleArray();
      for (int i = 0; i < values.length; i++) {
        if (!Double.isFinite(values[i])) {
          throw new IOException(
              String.format(
                  Locale.ROOT,
                  "%s: element %d of %s is %s, so the predictions would not be numbers; the run"
                      + " that wrote it diverged or the file is damaged, so pass a checkpoint from"
                      + " before the divergence, or retrain",
                  file,
                  i,
                  Checkpoint.MODEL_PREFIX + entry.getKey(),
                  values[i]));
        }
      }
    }
  }

  /** Device where the model lives and every prediction runs. */
  public Device device() {
    return device;
  }

  /** Side of the square input that the model takes, in pixels. */
  public int inputSize() {
    return inputSize;
  }

  /**
   * Decodes an image file (PNG or JPEG, by content, as {@link ImageDecoder} describes) and predicts
   * its keypoints. Decoded pixels always lie in [0, 1].
   *
   * @return x0, y0, ..., x67, y67 in pixels of the decoded image, as the class comment defines them
   * @throws NullPointerException if {@code imageFile} is null
   * @throws java.nio.file.NoSuchFileException if the file does not exist
   * @throws IOException if the file cannot be decoded, including an image larger than {@link
   *     GrayImage#MAX_PIXELS} or with sides further apart than {@link GrayImage#MAX_ASPECT_RATIO},
   *     or if a side of the image is shorter than {@link #MIN_IMAGE_SIDE}
   */
  public double[] detect(Path imageFile) throws IOException {
    Objects.requireNonNull(imageFile, "imageFile must not be null");
    GrayImage image = ImageDecoder.decode(imageFile);
    if (isTooSmall(image)) {
      throw new IOException(imageFile + ": " + describeTooSmall(image));
    }
    return predict(image);
  }

  /**
   * Predicts the 68 keypoints of a face crop.
   *
   * @param image gray pixels in [0, 1], as the model was trained on: divide 8-bit samples by 255
   * @return x0, y0, ..., x67, y67 in pixels of {@code image}, as the class comment defines them
   * @throws NullPointerException if {@code image} is null
   * @throws IllegalArgumentException if a pixel is NaN or outside [0, 1], or the image is larger
   *     than {@link GrayImage#MAX_PIXELS}, has sides further apart than {@link
   *     GrayImage#MAX_ASPECT_RATIO}, or has a side shorter than {@link #MIN_IMAGE_SIDE}
   */
  public double[] predict(GrayImage image) {
    Objects.requireNonNull(image, "image must not be null");
    requireValid(image, null);
    return run(List.of(image)).get(0);
  }

  /**
   * Predicts a batch of face crops at once, which is faster than one at a time. Memory grows with
   * the number of images, so split very long lists.
   *
   * @param images gray images with pixels in [0, 1], as for {@link #predict(GrayImage)}
   * @return one array x0, y0, ..., x67, y67 per image, in the order of {@code images}; an empty
   *     list for an empty input
   * @throws NullPointerException if {@code images} or one of its elements is null
   * @throws IllegalArgumentException if an image fails the checks of {@link #predict(GrayImage)};
   *     the message gives its index
   */
  public List<double[]> predict(List<GrayImage> images) {
    Objects.requireNonNull(images, "images must not be null");
    List<GrayImage> batch = new ArrayList<>(images);
    for (int i = 0; i < batch.size(); i++) {
      String name = "images[" + i + "]";
      GrayImage image = Objects.requireNonNull(batch.get(i), () -> name + " must not be null");
      requireValid(image, name);
    }
    return batch.isEmpty() ? List.of() : run(batch);
  }

  private List<double[]> run(List<GrayImage> images) {
    List<Sample> crops = new ArrayList<>(images.size());
    for (int i = 0; i < images.size(); i++) {
      Sample original = new Sample("image " + i, images.get(i), new double[2 * Sample.POINTS]);
      crops.add(pipeline.apply(original, null));
    }

    // On a device, the scope returns the input copy and every activation to the device's cache
    // when the call ends, instead of when the garbage collector finds them. On the CPU there is no
    // scope, because it would keep each calling thread's last activations in that thread's array
    // pool. A service with many threads would pay for that in heap, and the collector frees them.
    float[] outputs;
    try (var _ = GradMode.noGrad();
        var _ = device.isCpu() ? null : MemoryScope.open()) {
      Tensor prediction = model.forward(ToTensor.images(crops).to(device));
      outputs = prediction.toFloatArray();
    }

    List<double[]> result = new ArrayList<>(images.size());
    int width = 2 * Sample.POINTS;
    for (int i = 0; i < images.size(); i++) {
      double[] normalized = new double[width];
      for (int j = 0; j < width; j++) {
        normalized[j] = outputs[i * width + j];
      }
      GrayImage image = images.get(i);
      UnaryOperator<double[]> toOriginal =
          Pipelines.evaluationInverse(image.width(), image.height(), inputSize);
      result.add(toOriginal.apply(normalization.denormalize(normalized)));
    }
    return result;
  }

  /**
   * Checks the size limits and the pixel range. Errors start with {@code name}, such as {@code
   * images[3]}, unless it is null, as for a single image, whose caller adds the file name.
   */
  private static void requireValid(GrayImage image, String name) {
    String prefix = name == null ? "" : name + ": ";
    if (!GrayImage.isWithinLimits(image.width(), image.height())) {
      throw new IllegalArgumentException(
          prefix + GrayImage.describeLimitViolation(image.width(), image.height()));
    }
    if (isTooSmall(image)) {
      throw new IllegalArgumentException(prefix + describeTooSmall(image));
    }

    float[] pixels = image.pixels();
    for (int index = 0; index < pixels.length; index++) {
      float value = pixels[index];
      // Written so that NaN fails too.
      if (!(value >= 0f && value <= 1f)) {
        throw new IllegalArgumentException(
            prefix
                + "pixel "
                + index
                + " (x="
                + index % image.width()
                + ", y="
                + index / image.width()
                + ") is "
                + value
                + ", outside [0, 1]; the model was trained on pixels in [0, 1], so divide 8-bit"
                + " samples by 255");
      }
    }
  }

  private static boolean isTooSmall(GrayImage image) {
    return Math.min(image.width(), image.height()) < MIN_IMAGE_SIDE;
  }

  private static String describeTooSmall(GrayImage image) {
    return "the image is "
        + image.width()
        + "x"
        + image.height()
        + " pixels, but the detector needs at least "
        + MIN_IMAGE_SIDE
        + " pixels on each side to place face points; pass a face crop of at least "
        + MIN_IMAGE_SIDE
        + "x"
        + MIN_IMAGE_SIDE
        + " pixels";
  }

  private static KeypointNormalization readNormalization(Path file, Map<String, String> metadata)
      throws IOException {
    try {
      return KeypointNormalization.fromMetadata(metadata);
    } catch (IllegalArgumentException e) {
      throw new IOException(
          file
              + ": invalid keypoint normalization in the checkpoint metadata: "
              + e.getMessage()
              + "; the file was not written by kiln train or comes from an older version, so"
              + " retrain, or pass another checkpoint",
          e);
    }
  }

  /**
   * Checks that the model takes 1 × S × S images, with S the normalization's input size, because
   * the evaluation pipeline makes S × S gray crops. A mismatch would otherwise fail on every call.
   */
  private static void requireMatchingInput(
      Path file, ModelSpec spec, KeypointNormalization normalization) throws IOException {
    int size = normalization.inputSize();
    if (size > MAX_INPUT_SIZE) {
      throw new IOException(
          file
              + ": the keypoint normalization is for "
              + size
              + "x"
              + size
              + " inputs, but the detector supports at most "
              + MAX_INPUT_SIZE
              + "x"
              + MAX_INPUT_SIZE
              + "; retrain with a smaller input size");
    }

    int[] shape = spec.inputShape();
    if (shape[0] != 1 || shape[1] != size || shape[2] != size) {
      throw new IOException(
          file
              + ": the model takes input "
              + shape[0]
              + "x"
              + shape[1]
              + "x"
              + shape[2]
              + ", but the keypoint normalization is for 1x"
              + size
              + "x"
              + size
              + " gray crops, so the checkpoint's metadata does not match its model; retrain with"
              + " kiln train, which writes both from one model description");
    }
  }

  /**
   * Rejects a model whose layer outputs for one image hold more than {@link
   * #MAX_ACTIVATIONS_PER_IMAGE} values. Its weights can be few, as in a 1x1 convolution to a
   * million channels, while every call would then run out of memory or overflow an array size.
   */
  private static void requireActivationSize(Path file, ModelSpec spec) throws IOException {
    double values = spec.activationCount();
    if (values > MAX_ACTIVATIONS_PER_IMAGE) {
      throw new IOException(
          String.format(
              Locale.ROOT,
              "%s: the model's layers produce %.3g values per image, more than the %,d that the"
                  + " detector accepts; the model description was changed after training, or the"
                  + " model is too large to serve: retrain with kiln train",
              file,
              values,
              MAX_ACTIVATIONS_PER_IMAGE));
    }
  }

  /**
   * Checks that the checkpoint stores at least as many values as the model description needs, so
   * that a hostile or edited description cannot make {@link ModelSpec#build} allocate far more
   * memory than the file holds.
   */
  private static void requireStoredParameters(Path file, ModelSpec spec, Checkpoint checkpoint)
      throws IOException {
    long stored = 0;
    for (Tensor tensor : checkpoint.model().values()) {
      stored += tensor.numel();
    }
    long needed = spec.parameterCount();
    if (needed < 0 || needed > stored) {
      throw new IOException(
          file
              + ": the model description needs "
              + needed
              + " trained values, but the checkpoint stores only "
              + stored
              + ", so the weights do not belong to this model; retrain, or pass another"
              + " checkpoint");
    }
  }
}
