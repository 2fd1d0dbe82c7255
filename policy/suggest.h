// "Did you mean" for operator typos (pure): the closest known name, and region codes written
// the way people write them (lower case, "UK").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace meridian::policy {

/// The candidate closest to `word` by edit distance (case-insensitive), when it is close
/// enough to be a typo of it (at most 1 edit for short words, a third of the length for
/// longer ones); "" otherwise.
std::string ClosestName(std::string_view word, const std::vector<std::string>& candidates);

/// " (did you mean 'x'?)" for ClosestName, or "" when nothing is close.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

/// What to say about a string that is not a region code: " (did you mean 'CN'? codes are
/// upper case)", " (did you mean 'GB'? the ISO 3166-1 code of the United Kingdom)", ...;
/// "" when there is nothing better to say.
std::string RegionHint(std::string_view code);

}  // namespace meridian::policy
