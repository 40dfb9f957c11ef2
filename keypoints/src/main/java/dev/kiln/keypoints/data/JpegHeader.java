package dev.kiln.keypoints.data;

import java.io.IOException;

/**
 * The facts the decoder needs from a JPEG's marker segments before the first scan: the number of
 * color components from the SOF marker and the color transform from Adobe's APP14 marker.
 *
 * @param components number of color components in the frame
 * @param adobeTransform the APP14 transform byte (0 = none, 1 = YCbCr, 2 = YCCK), or -1 without an
 *     APP14 Adobe marker
 */
record JpegHeader(int components, int adobeTransform) {

  private static final int SUPPORTED_PRECISION = 8;

  /** Returns whether the file has an Adobe APP14 marker, whose CMYK samples are stored inverted. */
  boolean hasAdobeMarker() {
    return adobeTransform >= 0;
  }

  /** Returns whether 4-component data is YCCK, which needs a YCbCr to RGB step before CMYK. */
  boolean isYcck() {
    return components == 4 && adobeTransform == 2;
  }

  /** Walks the marker segments from SOI to the first SOS and returns what they declare. */
  static JpegHeader parse(String source, byte[] bytes) throws IOException {
    int offset = 2;
    int components = -1;
    int adobeTransform = -1;

    while (true) {
      if (offset + 4 > bytes.length) {
        throw truncated(source, bytes, offset);
      }
      if ((bytes[offset] & 0xff) != 0xff) {
        throw new IOException(
            source
                + ": corrupt JPEG: expected a marker at byte "
                + offset
                + "; replace the file with an intact copy");
      }

      int marker = bytes[offset + 1] & 0xff;
      if (marker == 0xff) {
        offset++; // fill byte before a marker
        continue;
      }

      int length = ((bytes[offset + 2] & 0xff) << 8) | (bytes[offset + 3] & 0xff);
      int dataStart = offset + 4;
      if (offset + 2 + length > bytes.length) {
        throw truncated(source, bytes, offset);
      }

      if (isStartOfFrame(marker) && length >= 8) {
        int precision = bytes[dataStart] & 0xff;
        if (precision != SUPPORTED_PRECISION) {
          throw new IOException(
              source
                  + ": unsupported JPEG with "
                  + precision
                  + "-bit samples (only 8-bit is supported); convert it to an 8-bit JPEG or PNG");
        }
        components = bytes[dataStart + 5] & 0xff;
      } else if (marker == 0xee && length >= 14 && isAdobe(bytes, dataStart)) {
        adobeTransform = bytes[dataStart + 11] & 0xff;
      } else if (marker == 0xda) {
        if (components < 0) {
          throw new IOException(
              source + ": corrupt JPEG: scan data before any SOF marker; replace the file");
        }
        return new JpegHeader(components, adobeTransform);
      }
      offset += 2 + length;
    }
  }

  private static boolean isStartOfFrame(int marker) {
    return marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
  }

  private static boolean isAdobe(byte[] bytes, int start) {
    return bytes[start] == 'A'
        && bytes[start + 1] == 'd'
        && bytes[start + 2] == 'o'
        && bytes[start + 3] == 'b'
        && bytes[start + 4] == 'e';
  }

  private static IOException truncated(String source, byte[] bytes, int offset) {
    return new IOException(
        source
            + ": truncated JPEG ("
            + bytes.length
            + " bytes): the header segment at byte "
            + offset
            + " runs past the end; copy the file again, or leave it out");
  }
}
