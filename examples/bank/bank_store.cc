#include "bank_store.h"

namespace verdict::bank {

std::string_view ConflictReason(const Status& status) {
  std::string_view m = status.message();
  size_t colon = m.find(": ");
  if (colon == std::string_view::npos || colon == 0) return {};
  for (char c : m.substr(0, colon)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return {};
  }
  return m.substr(0, colon);
}

}  // namespace verdict::bank
