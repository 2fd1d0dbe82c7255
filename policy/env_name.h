// The one rule for environment-variable names the configs refer to (credential_env,
// admin.token_env): upper case, digits and '_', not starting with a digit, at most 128 bytes.
#pragma once

#include <string_view>

namespace meridian::policy {

bool IsEnvVarName(std::string_view s);

}  // namespace meridian::policy
