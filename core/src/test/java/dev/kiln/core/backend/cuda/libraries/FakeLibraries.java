package dev.kiln.core.backend.cuda.libraries;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Builds fake library files for discovery tests: valid-looking, empty, or wrong headers. */
final class FakeLibraries {

  /**
   * A 64-bit x86-64 ELF shared object with one program header, {@code PT_GNU_STACK} marking the
   * stack non-executable, and no loadable segment. It passes discovery's header check, and the
   * dynamic linker rejects it. The stack header keeps the JVM from warning that the library might
   * need an executable stack, which it checks before it calls {@code dlopen}.
   */
  static final byte[] ELF64_HEADER = elf64();

  private FakeLibraries() {}

  private static byte[] elf64() {
    ByteBuffer bytes = ByteBuffer.allocate(64 + 56).order(ByteOrder.LITTLE_ENDIAN);
    // ELF header: magic, 64-bit, little-endian, version 1, then zero padding to 16 bytes.
    bytes.put(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    bytes.putShort((short) 3); // e_type ET_DYN
    // e_machine: this JVM's processor, so that discovery accepts the file on any machine.
    bytes.putShort((short) LibraryDiscovery.elfMachineOfThisJvm());
    bytes.putInt(1); // e_version
    bytes.putLong(0); // e_entry
    bytes.putLong(64); // e_phoff: program headers follow this header
    bytes.putLong(0); // e_shoff: no section headers
    bytes.putInt(0); // e_flags
    bytes.putShort((short) 64); // e_ehsize
    bytes.putShort((short) 56); // e_phentsize
    bytes.putShort((short) 1); // e_phnum
    bytes.putShort((short) 64); // e_shentsize
    bytes.putShort((short) 0); // e_shnum
    bytes.putShort((short) 0); // e_shstrndx
    // Program header: PT_GNU_STACK, read and write but not execute, all sizes 0.
    bytes.putInt(0x6474e551);
    bytes.putInt(6);
    bytes.putLong(0).putLong(0).putLong(0).putLong(0).putLong(0).putLong(16);
    return bytes.array();
  }

  /** Returns {@link #ELF64_HEADER} with another processor code in {@code e_machine}. */
  static byte[] elf64ForMachine(int machine) {
    byte[] header = ELF64_HEADER.clone();
    header[18] = (byte) machine;
    header[19] = (byte) (machine >>> 8);
    return header;
  }

  /** Creates {@code folder/name} from {@link #ELF64_HEADER}. */
  static Path elf(Path folder, String name) throws IOException {
    Files.createDirectories(folder);
    return Files.write(folder.resolve(name), ELF64_HEADER);
  }

  /** Creates {@code folder/name} with the given bytes. */
  static Path file(Path folder, String name, byte[] bytes) throws IOException {
    Files.createDirectories(folder);
    return Files.write(folder.resolve(name), bytes);
  }
}
