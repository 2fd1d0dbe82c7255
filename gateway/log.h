// Minimal structured logging to stderr. Never pass secrets or prompt content.
#pragma once

#include <string_view>

namespace meridian::gateway {

enum class LogLevel { kInfo, kWarning, kError };

/// One line: "<UTC time> <level> <message>". Thread-safe (a single write per line).
void Log(LogLevel level, std::string_view message);

}  // namespace meridian::gateway
