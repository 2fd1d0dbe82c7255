// What every vendor codec does with an embeddings answer (pure): read a vector (a JSON array
// of numbers, or OpenAI's base64 float32 text), check that each input got exactly one vector,
// and emit the vectors in input order as kEmbedding chunks.
#pragma once

#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/core/chunk.h"
#include "gateway/core/float_vector.h"
#include "gateway/core/json_text.h"
#include "gateway/core/request.h"
#include "gateway/core/status.h"

namespace meridian::providers::embeddings {

namespace json = boost::json;

/// An embeddings answer that cannot be used (a vector that is not numbers, an input without
/// its vector): the provider's failure, so the router may try the next candidate.
inline core::Status BadAnswer(std::string message) {
  return core::Status::Error(core::StatusCode::kBadUpstream, std::move(message),
                             "upstream_bad_embeddings");
}

/// `v` as a vector: an array of finite numbers, or a base64 float32 string. False otherwise.
inline bool ReadVector(const json::value& v, std::vector<float>& out) {
  out.clear();
  if (const json::string* s = v.if_string()) {
    if (!core::DecodeFloat32Base64({s->data(), s->size()}, out)) return false;
    for (float f : out) {
      if (!std::isfinite(f)) return false;
    }
    return true;
  }
  const json::array* a = v.if_array();
  if (a == nullptr) return false;
  out.reserve(a->size());
  for (const json::value& e : *a) {
    double d = 0;
    if (e.is_double()) {
      d = e.get_double();
    } else if (e.is_int64()) {
      d = static_cast<double>(e.get_int64());
    } else if (e.is_uint64()) {
      d = static_cast<double>(e.get_uint64());
    } else {
      return false;
    }
    const auto f = static_cast<float>(d);
    if (!std::isfinite(f)) return false;
    out.push_back(f);
  }
  return true;
}

/// The vectors of one answer, by input index.
class VectorSet {
 public:
  explicit VectorSet(std::size_t expected) : vectors_(expected) {}

  /// The vector of input `index`; an error when the index is out of range or seen before.
  core::Status Add(std::int64_t index, std::vector<float> v) {
    if (index < 0 || static_cast<std::size_t>(index) >= vectors_.size()) {
      return BadAnswer("upstream sent a vector for input " + std::to_string(index) + " of " +
                       std::to_string(vectors_.size()));
    }
    auto& slot = vectors_[static_cast<std::size_t>(index)];
    if (slot) return BadAnswer("upstream sent two vectors for input " + std::to_string(index));
    slot = std::move(v);
    return core::Status::Ok();
  }

  /// One kEmbedding chunk per input, in order; an error when an input got no vector.
  core::Status Emit(std::vector<core::Chunk>& out) {
    for (std::size_t i = 0; i < vectors_.size(); ++i) {
      if (!vectors_[i]) {
        return BadAnswer("upstream sent no vector for input " + std::to_string(i) + " of " +
                         std::to_string(vectors_.size()));
      }
    }
    for (std::size_t i = 0; i < vectors_.size(); ++i) {
      core::Chunk c;
      c.kind = core::Chunk::Kind::kEmbedding;
      c.index = static_cast<std::int64_t>(i);
      c.embedding = std::move(*vectors_[i]);
      out.push_back(std::move(c));
    }
    return core::Status::Ok();
  }

 private:
  std::vector<std::optional<std::vector<float>>> vectors_;
};

/// The kEmbedding chunks of `items`, an answer's array of vector objects (`embedding` and the
/// input's number under `index_key`; an item without it counts by position), for a request
/// of `inputs` inputs: one per input, in input order; an error when an item is not a vector or
/// the items do not give each input exactly one.
inline core::Status ReadItems(const json::array& items, std::string_view index_key,
                              std::size_t inputs, std::vector<core::Chunk>& out) {
  VectorSet vectors(inputs);
  for (std::size_t pos = 0; pos < items.size(); ++pos) {
    const json::object* item = items[pos].if_object();
    const json::value* vec = item == nullptr ? nullptr : item->if_contains("embedding");
    std::vector<float> values;
    if (vec == nullptr || !ReadVector(*vec, values)) {
      return BadAnswer("upstream sent an embedding that is not a vector");
    }
    std::int64_t index = static_cast<std::int64_t>(pos);
    if (const json::value* i = item->if_contains(index_key); i != nullptr && !i->is_null()) {
      if (!i->is_int64()) return BadAnswer("upstream sent an embedding index that is not a number");
      index = i->get_int64();
    }
    if (auto s = vectors.Add(index, std::move(values)); !s.ok()) return s;
  }
  return vectors.Emit(out);
}

/// The inputs as a JSON array: strings, or arrays of token ids.
inline void AppendInputs(std::string& out, const core::EmbeddingInput& in) {
  out.push_back('[');
  if (in.tokens.empty()) {
    for (std::size_t i = 0; i < in.texts.size(); ++i) {
      if (i != 0) out.push_back(',');
      core::AppendJsonString(out, in.texts[i]);
    }
  } else {
    for (std::size_t i = 0; i < in.tokens.size(); ++i) {
      if (i != 0) out.push_back(',');
      out.push_back('[');
      for (std::size_t j = 0; j < in.tokens[i].size(); ++j) {
        if (j != 0) out.push_back(',');
        out += std::to_string(in.tokens[i][j]);
      }
      out.push_back(']');
    }
  }
  out.push_back(']');
}

/// For a vendor that embeds text only: token-id inputs refused before anything is sent, so
/// the router may try a provider that takes them.
inline core::Status RefuseTokenInputs(const core::CompletionRequest& req,
                                      std::string_view provider_id) {
  if (req.embedding.tokens.empty()) return core::Status::Ok();
  return core::Status::Error(core::StatusCode::kInvalidArgument,
                             "provider '" + std::string(provider_id) +
                                 "' embeds text only, not token ids; the request was not sent",
                             "unsupported_input", "input");
}

}  // namespace meridian::providers::embeddings
