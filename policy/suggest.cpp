#include "policy/suggest.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "policy/regions.h"

namespace meridian::policy {
namespace {

char Lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// Levenshtein distance with adjacent transpositions counted as one edit.
std::size_t Distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
          Lower(a[i - 2]) == Lower(b[j - 1])) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    prev2 = prev;
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Codes people write for places whose ISO 3166-1 alpha-2 code is another one.
constexpr std::array<std::pair<std::string_view, std::pair<std::string_view, std::string_view>>, 4>
    kCommonMistakes{{
        {"UK", {"GB", "the ISO 3166-1 code of the United Kingdom"}},
        {"EL", {"GR", "the ISO 3166-1 code of Greece (EL is the EU's own abbreviation)"}},
        {"KO", {"KR", "the ISO 3166-1 code of South Korea"}},
        {"PRC", {"CN", "the ISO 3166-1 code of mainland China"}},
    }};

}  // namespace

std::string ClosestName(std::string_view word, const std::vector<std::string>& candidates) {
  const std::size_t limit = word.size() <= 4 ? 1 : word.size() / 3;
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const std::size_t d = Distance(word, c);
    if (d < best_distance && d != 0) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string best = ClosestName(word, candidates);
  return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

std::string RegionHint(std::string_view code) {
  std::string upper;
  for (const char c : code) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& [wrong, right] : kCommonMistakes) {
    if (upper == wrong) {
      return " (did you mean '" + std::string(right.first) + "'? " + std::string(right.second) +
             ")";
    }
  }
  if (upper != code && RegionCode::Parse(upper)) {
    return " (did you mean '" + upper + "'? region codes are upper case)";
  }
  return {};
}

}  // namespace meridian::policy
