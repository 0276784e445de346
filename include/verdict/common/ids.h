// Random identifiers. Thread-safe.
#pragma once

#include <string>

namespace verdict {

// 128 random bits as 32 lowercase hex characters. Unique across processes and
// coordinator instances without coordination.
std::string NewRandomId();

// True when `id` is non-empty, at most 128 bytes, and only [A-Za-z0-9._:-].
// Ids travel in URLs, PostgreSQL gids and log keys, so the alphabet is narrow.
bool IsValidId(const std::string& id);

}  // namespace verdict
