package dev.kiln.keypoints.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/** Reader of the model text format, whose grammar the {@link ModelSpec} Javadoc describes. */
final class ModelParser {
  static final String LAYER_NAMES =
      "conv, linear, maxpool, avgpool, batchnorm, dropout, flatten, relu, leaky_relu, elu, tanh,"
          + " sigmoid";

  private static final Pattern INPUT = Pattern.compile("(\\d+)x(\\d+)x(\\d+)");
  private static final Pattern KEY = Pattern.compile("[a-z_]+");
  private static final Pattern WHOLE_NUMBER = Pattern.compile("\\d+");
  private static final Pattern DECIMAL =
      Pattern.compile("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?");

  private final String sourceName;

  ModelParser(String sourceName) {
    this.sourceName = sourceName;
  }

  ModelSpec parse(String text) {
    int[] input = null;
    int inputLine = 0;
    List<Layer> layers = new ArrayList<>();
    List<Integer> lines = new ArrayList<>();
    String[] rawLines = text.split("\\R", -1);

    for (int i = 0; i < rawLines.length; i++) {
      int lineNumber = i + 1;
      String content = stripComment(rawLines[i]).strip();
      if (content.isEmpty()) {
        continue;
      }

      Statement statement = Statement.split(content, lineNumber, this);
      if (statement.keyword.equals("input")) {
        if (input != null) {
          throw error(
              lineNumber,
              "a second 'input' line (the first is line " + inputLine + "); keep only one");
        }
        input = parseInput(statement);
        inputLine = lineNumber;
        continue;
      }
      if (input == null) {
        throw error(
            lineNumber,
            "'"
                + statement.keyword
                + "' comes before the input line; start the model with"
                + " 'input CxHxW', such as 'input 1x96x96'");
      }
      layers.add(parseLayer(statement));
      lines.add(lineNumber);
    }

    if (input == null) {
      throw error(
          1, "missing input line; start the model with 'input CxHxW', such as 'input 1x96x96'");
    }
    return new ModelSpec(sourceName, input, inputLine, layers, lines);
  }

  private static String stripComment(String line) {
    int hash = line.indexOf('#');
    return hash < 0 ? line : line.substring(0, hash);
  }

  private int[] parseInput(Statement statement) {
    statement.checkKeys();
    if (statement.values.size() != 1) {
      throw error(
          statement.line,
          "'input' takes one value, channels x height x width, such as 'input 1x96x96'");
    }
    String value = statement.values.get(0);
    var matcher = INPUT.matcher(value);
    if (!matcher.matches()) {
      throw error(
          statement.line,
          "invalid input shape '" + value + "'; write channels x height x width, such as 1x96x96");
    }
    int[] shape = new int[3];
    String[] names = {"channels", "height", "width"};
    for (int d = 0; d < 3; d++) {
      shape[d] = wholeNumber(statement, "input " + names[d], matcher.group(d + 1), 1);
    }
    return shape;
  }

  private Layer parseLayer(Statement statement) {
    return switch (statement.keyword) {
      case "conv" -> {
        statement.checkKeys("kernel", "stride", "padding", "dilation", "bias", "init");
        int out = wholeNumber(statement, "conv output channels", statement.value("channels"), 1);
        String kernelText = statement.settings.get("kernel");
        if (kernelText == null) {
          throw error(statement.line, "conv needs a kernel size; add kernel=K, such as kernel=3");
        }
        yield new Layer.Conv(
            out,
            wholeNumber(statement, "conv kernel", kernelText, 1),
            intSetting(statement, "stride", 1, 1),
            intSetting(statement, "padding", 0, 0),
            intSetting(statement, "dilation", 1, 1),
            booleanSetting(statement, "bias"),
            initSetting(statement));
      }
      case "linear" -> {
        statement.checkKeys("bias", "init");
        int out = wholeNumber(statement, "linear output features", statement.value("features"), 1);
        yield new Layer.Linear(out, booleanSetting(statement, "bias"), initSetting(statement));
      }
      case "maxpool", "avgpool" -> {
        statement.checkKeys("stride", "padding");
        String kernelName = statement.keyword + " kernel";
        int kernel = wholeNumber(statement, kernelName, statement.value("kernel size"), 1);
        int stride = intSetting(statement, "stride", kernel, 1);
        int padding = intSetting(statement, "padding", 0, 0);
        if (2 * padding > kernel) {
          throw error(
              statement.line,
              "invalid "
                  + statement.keyword
                  + " padding="
                  + padding
                  + ": it must be at most half the kernel ("
                  + kernel
                  + ")");
        }
        yield statement.keyword.equals("maxpool")
            ? new Layer.MaxPool(kernel, stride, padding)
            : new Layer.AvgPool(kernel, stride, padding);
      }
      case "batchnorm" -> {
        statement.checkKeys("eps", "momentum");
        statement.requireNoValues();
        double eps = decimalSetting(statement, "eps", Layer.BatchNorm.DEFAULT_EPS);
        if (!(eps > 0)) {
          throw error(statement.line, "invalid batchnorm eps=" + eps + ": it must be above 0");
        }
        double momentum = decimalSetting(statement, "momentum", Layer.BatchNorm.DEFAULT_MOMENTUM);
        requireProbability(statement, "batchnorm momentum", momentum);
        yield new Layer.BatchNorm(eps, momentum);
      }
      case "dropout" -> {
        statement.checkKeys();
        if (statement.values.size() != 1) {
          throw error(
              statement.line,
              "dropout takes one value, the probability of zeroing a value, such as 'dropout 0.5'");
        }
        double p = decimal(statement, "dropout probability", statement.values.get(0));
        requireProbability(statement, "dropout probability", p);
        yield new Layer.Dropout(p);
      }
      case "flatten", "relu", "tanh", "sigmoid" -> {
        statement.checkKeys();
        statement.requireNoValues();
        yield statement.keyword.equals("flatten")
            ? new Layer.Flatten()
            : new Layer.Activation(statement.keyword, 0);
      }
      case "leaky_relu" -> {
        statement.checkKeys("slope");
        statement.requireNoValues();
        yield new Layer.Activation("leaky_relu", decimalSetting(statement, "slope", 0.01));
      }
      case "elu" -> {
        statement.checkKeys("alpha");
        statement.requireNoValues();
        yield new Layer.Activation("elu", decimalSetting(statement, "alpha", 1.0));
      }
      default ->
          throw error(
              statement.line,
              "unknown layer '" + statement.keyword + "': use one of input, " + LAYER_NAMES);
    };
  }

  private int intSetting(Statement statement, String key, int defaultValue, int min) {
    String text = statement.settings.get(key);
    if (text == null) {
      return defaultValue;
    }
    return wholeNumber(statement, statement.keyword + " " + key, text, min);
  }

  private boolean booleanSetting(Statement statement, String key) {
    String text = statement.settings.get(key);
    if (text == null || text.equals("true")) {
      return true;
    }
    if (text.equals("false")) {
      return false;
    }
    throw error(
        statement.line,
        "invalid " + statement.keyword + " " + key + "='" + text + "': use true or false");
  }

  private WeightInit initSetting(Statement statement) {
    String text = statement.settings.get("init");
    if (text == null) {
      return WeightInit.DEFAULT;
    }
    WeightInit scheme = WeightInit.byTextName(text);
    if (scheme == null) {
      throw error(
          statement.line,
          "unknown init '"
              + text
              + "' on "
              + statement.keyword
              + ": use one of "
              + WeightInit.textNames());
    }
    return scheme;
  }

  private double decimalSetting(Statement statement, String key, double defaultValue) {
    String text = statement.settings.get(key);
    if (text == null) {
      return defaultValue;
    }
    return decimal(statement, statement.keyword + " " + key, text);
  }

  private int wholeNumber(Statement statement, String valueName, String text, int min) {
    if (!WHOLE_NUMBER.matcher(text).matches()) {
      throw error(
          statement.line,
          "invalid " + valueName + " '" + text + "': it must be a whole number of at least " + min);
    }
    int value;
    try {
      value = Integer.parseInt(text);
    } catch (NumberFormatException tooLarge) {
      throw error(
          statement.line,
          "invalid " + valueName + " '" + text + "': it must be at most " + Integer.MAX_VALUE);
    }
    if (value < min) {
      throw error(
          statement.line, "invalid " + valueName + " " + value + ": it must be at least " + min);
    }
    return value;
  }

  private double decimal(Statement statement, String valueName, String text) {
    if (!DECIMAL.matcher(text).matches()) {
      throw error(
          statement.line,
          "invalid " + valueName + " '" + text + "': it must be a number, such as 0.1");
    }
    double value = Double.parseDouble(text);
    if (!Double.isFinite(value)) {
      throw error(statement.line, "invalid " + valueName + " '" + text + "': it is out of range");
    }
    return value;
  }

  private void requireProbability(Statement statement, String valueName, double value) {
    if (!(value >= 0 && value <= 1)) {
      throw error(
          statement.line,
          "invalid " + valueName + " " + ShapeMath.formatNumber(value) + ": it must be in [0, 1]");
    }
  }

  ModelFormatException error(int line, String problem) {
    return new ModelFormatException(sourceName, line, problem);
  }

  /** One non-empty line split into its keyword, its plain values and its key=value settings. */
  private static final class Statement {
    final int line;
    final String keyword;
    final List<String> values = new ArrayList<>();
    final Map<String, String> settings = new LinkedHashMap<>();
    final ModelParser parser;

    private Statement(int line, String keyword, ModelParser parser) {
      this.line = line;
      this.keyword = keyword;
      this.parser = parser;
    }

    static Statement split(String content, int line, ModelParser parser) {
      String[] tokens = content.split("\\s+");
      Statement statement = new Statement(line, tokens[0], parser);

      for (int t = 1; t < tokens.length; t++) {
        String token = tokens[t];
        int equals = token.indexOf('=');
        if (equals < 0) {
          if (!statement.settings.isEmpty()) {
            throw parser.error(
                line,
                "unexpected value '"
                    + token
                    + "' after the settings; write settings as"
                    + " key=value, such as stride=2");
          }
          statement.values.add(token);
          continue;
        }

        String key = token.substring(0, equals);
        String value = token.substring(equals + 1);
        if (!KEY.matcher(key).matches() || value.isEmpty() || value.contains("=")) {
          throw parser.error(
              line, "malformed setting '" + token + "'; write key=value, such as stride=2");
        }
        if (statement.settings.put(key, value) != null) {
          throw parser.error(line, "setting '" + key + "' is given twice; keep one");
        }
      }
      return statement;
    }

    /** Throws on the first setting whose key is not in {@code validKeys}. */
    void checkKeys(String... validKeys) {
      for (String key : settings.keySet()) {
        if (!List.of(validKeys).contains(key)) {
          String valid =
              validKeys.length == 0
                  ? keyword + " takes no settings"
                  : "use one of " + String.join(", ", validKeys);
          throw parser.error(line, "unknown key '" + key + "' on " + keyword + ": " + valid);
        }
      }
    }

    /**
     * Returns the one plain value, which {@code valueName} describes, or throws unless there is
     * one.
     */
    String value(String valueName) {
      if (values.size() != 1) {
        throw parser.error(
            line,
            keyword
                + " takes one value, the "
                + valueName
                + ", before its key=value settings, but got "
                + values.size()
                + (values.isEmpty() ? "" : ": " + String.join(" ", values)));
      }
      return values.get(0);
    }

    void requireNoValues() {
      if (!values.isEmpty()) {
        throw parser.error(
            line,
            keyword
                + " takes no plain values, but got '"
                + String.join(" ", values)
                + "'; write settings as key=value");
      }
    }
  }
}
