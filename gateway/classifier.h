// PII classifier: scans message text and can only RAISE a request's declared data class.
//
// Pure: no I/O, no clocks, no regex engine. Every detector is a hand-written scanner driven by a
// single forward pass over the bytes (a 256-entry class table skips bytes that cannot start a
// match); the only look-around is bounded (an e-mail's local part, <= 64 bytes back to the
// previous non-local byte, and its domain, <= 255 bytes forward), so Classify is linear time.
//
// Normalisation: every text is scanned as it is and, when it holds any, with these rewritten
// (Fold, NFKC-style for the characters that matter here): full-width ASCII (U+FF01..FF5E) to
// ASCII, Unicode spaces to ' ', hyphens/dashes/minus to '-', circled and mathematical digits
// to ASCII digits, zero-width and other format characters (Cf: U+200B..200F, U+2060..2064,
// U+FEFF, U+00AD, ...) removed. Both forms are scanned, so folding only ever adds findings.
//
// Token boundaries: a match is always a whole alphanumeric run (ASCII [0-9A-Za-z]); a digit run
// that is glued to letters ("ORDER20240115123456789") or is part of a decimal number
// ("13812345678.5") is never a match. Grouped forms ("138 1234 5678", "6222 0202 0000 1234 567")
// must be the WHOLE sequence of digit groups joined by one consistent single separator (' ',
// '-' or '.'). The checksum-backed detectors (resident ID, bank card) accept any grouping
// whose groups but the last have >= 3 digits ("110105 19491231 002X"); the resident ID, whose
// checksum is strongest, is also found glued to letters ("ID11010519491231002X") but never
// inside a longer digit run.
//
// Detector rules and the class each one implies (PIPL = Personal Information Protection Law):
//  * cn_resident_id -> sensitive_personal (PIPL Art. 28: "specific identity" information).
//      18 chars: 17 digits + check char (digit or X/x), GB 11643 / ISO 7064 MOD 11-2 checksum,
//      region code first digit 1-9, birth date YYYYMMDD (chars 7-14) with year 1900-2099,
//      month 01-12, day 01-31. 15-digit legacy IDs carry NO checksum, so they rely on the
//      region digit, a plausible YYMMDD (chars 7-12) and the strict token boundary.
//  * cn_mobile -> personal (PIPL Art. 4: identifies a natural person; not listed in Art. 28).
//      11 digits 1[3-9]xxxxxxxxx; prefixes 86 / 0086 (with '+' or not) glued or separated by one
//      space/'-'; 3-4-4 grouping ("138 1234 5678", "+86-138-1234-5678").
//  * bank_card -> sensitive_personal (PIPL Art. 28: "financial accounts").
//      16-19 digits, Luhn-valid, first digit 2-6 (ISO/IEC 7812 major industry identifiers for
//      financial / payment cards: Mastercard 2/5, Amex/JCB 3, Visa 4, UnionPay/Discover 6),
//      not all the same digit; glued or grouped 4-4-4-4[-1..3] with one space/'-' separator.
//  * email -> personal (PIPL Art. 4).
//      local@domain: local part [A-Za-z0-9._%+-]{1,64} not starting/ending with '.', domain of
//      >= 2 dot-separated labels [A-Za-z0-9-]{1,63} (no leading/trailing '-'), TLD >= 2 letters.
//      Obfuscated forms too: "(at)", "[at]", "{at}", "<at>" for '@' and the same with "dot" for
//      '.', optionally spaced; " at " with " dot " (a spelled-out dot is then required, so the
//      prose "look at example.com" is not an address).
//  * passport -> sensitive_personal (PIPL Art. 28: a passport number is "specific identity"
//      information, the same category as the resident ID).
//      Mainland ordinary passports: E or G + 8 digits, or E + letter + 7 digits (EA1234567).
//      There is no public checksum, so to keep false positives low the pattern must be a
//      standalone token (whole alphanumeric run, upper case, not joined by -, _ or / to another
//      run as in "SKU-E12345678-01"). No keyword is required.
//      A token that is also a checksum-valid HKID ("EA123456x") is reported as hk_id only.
//  * hk_id -> sensitive_personal (PIPL Art. 28 specific identity; also a personal identifier
//      under Hong Kong's PDPO). 1-2 upper-case letters + 6 digits + check char (0-9 or A),
//      either glued ("A1234567") or in parentheses ("A123456(7)"); HKID checksum: weights 9..2
//      over [letter1 or space(=36)], letter2, six digits (A=10..Z=35);
//      check = 11 - sum % 11, 10 -> 'A', 11 -> '0'.
//      Like passports, an HKID joined by -, _ or / to another run is not reported.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/request.h"
#include "policy/model.h"

namespace meridian::classifier {

enum class Detector : std::uint8_t {
  kCnResidentId,
  kCnMobile,
  kBankCard,
  kEmail,
  kPassport,
  kHkId
};
inline constexpr std::size_t kDetectorCount = 6;

/// Stable name used in logs and explanations: "cn_resident_id", "cn_mobile", ...
std::string_view Name(Detector detector);

/// The data class a finding of `detector` implies (see the table above for the PIPL article).
policy::DataClass ClassOf(Detector detector);

/// One detector that fired. Deliberately carries no offset and never the matched value.
struct Finding {
  Detector detector;
};

struct Classification {
  policy::DataClass effective;   ///< max(declared, every finding's class)
  bool raised;                   ///< effective > declared
  std::uint32_t detectors_mask;  ///< policy::Bit(Detector) for every detector that fired
};

/// Bit mask (policy::Bit(Detector)) of the detectors that fire anywhere in `text` or in its
/// folded form.
std::uint32_t Scan(std::string_view text);

/// The folded form of `text` (see "Normalisation" above) into `out`; false (and `out` empty)
/// when folding changes nothing.
bool Fold(std::string_view text, std::string& out);

using core::kPartKindCount;
using core::PartKind;

/// What a walk over everything a request will send upstream found.
struct RequestScan {
  std::uint32_t detectors_mask = 0;  ///< policy::Bit(Detector)
  std::uint32_t part_kinds = 0;      ///< policy::Bit(core::PartKind) of every part seen
};

/// Scans EVERY string the upstream request can carry: each message's text and content parts
/// (texts also glued across adjacent parts, image/file URLs, ...), name, tool-call id and
/// tool calls (arguments, and JSON inside them), the tool definitions and tool_choice, `user`,
/// `stop`, and every pass-through member (response_format schemas, metadata, ...): string
/// values, object keys and integers alike, data: URLs included. Media parts are reported in
/// part_kinds (an image cannot be scanned: the policy's image_data_class applies to it).
/// The walk names every member of core::CompletionRequest and core::Message, so adding a
/// member without deciding whether it is scanned does not compile.
RequestScan ScanRequest(const core::CompletionRequest& request);

/// The findings encoded in a mask, in Detector order.
std::vector<Finding> Findings(std::uint32_t detectors_mask);

/// Scans every text; returns the max of `declared` and every finding's class. Linear time.
Classification Classify(policy::DataClass declared, std::span<const std::string_view> texts);

/// Same, over each message's Message::text.
Classification Classify(policy::DataClass declared, const std::vector<core::Message>& messages);

/// Same, over a ScanRequest result.
Classification Classify(policy::DataClass declared, const RequestScan& scan);

}  // namespace meridian::classifier
