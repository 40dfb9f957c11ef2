// The registry of emulated kernels, filled by KILN_REGISTER while libkiln_emu.so loads, and the
// exported C functions that list the kernels.
#include <iterator>
#include <map>

#include "kiln_emu.h"

#define KILN_EXPORT extern "C" __attribute__((visibility("default")))

namespace kiln_emu {

namespace {

// Kernels by name, sorted. A function-level static, because the KILN_REGISTER initializers of the
// other files may run before this file's globals are constructed.
std::map<std::string, KernelEntry>& registry() {
  static std::map<std::string, KernelEntry> kernels;
  return kernels;
}

}  // namespace

bool register_kernel(const char* name, KernelEntry entry) {
  registry()[name] = std::move(entry);
  return true;
}

const std::pair<const std::string, KernelEntry>* find_kernel(const char* name) {
  auto found = registry().find(name);
  return found == registry().end() ? nullptr : &*found;
}

}  // namespace kiln_emu

using kiln_emu::registry;

// Returns the number of registered kernels. Names are numbered 0 to count - 1 in name order.
KILN_EXPORT int kiln_emu_kernel_count(void) { return static_cast<int>(registry().size()); }

KILN_EXPORT const char* kiln_emu_kernel_name(int index) {
  if (index < 0 || index >= static_cast<int>(registry().size())) {
    return nullptr;
  }
  auto entry = registry().begin();
  std::advance(entry, index);
  return entry->first.c_str();
}

// The kernel's parameter types, one letter each (see KernelEntry), or null for an unknown name.
KILN_EXPORT const char* kiln_emu_kernel_signature(const char* kernel) {
  auto found = kiln_emu::find_kernel(kernel);
  return found == nullptr ? nullptr : found->second.signature.c_str();
}
