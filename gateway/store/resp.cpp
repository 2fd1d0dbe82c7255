#include "gateway/store/resp.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <cstddef>
#include <utility>

namespace meridian::store {

void AppendCommand(std::string& out, const std::vector<std::string>& args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const std::string& a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
}

struct RespReader::Impl {
  redisReader* reader = nullptr;
};

namespace {

RespValue Convert(const redisReply& r) {
  RespValue v;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      v.type = RespValue::Type::kString;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RespValue::Type::kStatus;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RespValue::Type::kError;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RespValue::Type::kInteger;
      v.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RespValue::Type::kArray;
      v.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) v.elements.push_back(Convert(*r.element[i]));
      break;
    default:  // REDIS_REPLY_NIL
      v.type = RespValue::Type::kNil;
      break;
  }
  return v;
}

// What a reply may hold: Redis itself caps neither, so a broken or hostile server (or another
// service on the port) could otherwise make the gateway allocate without bound.
constexpr int kMaxElements = 1 << 20;            ///< per array
constexpr std::size_t kMaxBuffered = 64u << 20;  ///< bytes of an unfinished reply

// hiredis's own reply constructors, with arrays bounded (an array it may not build is its
// "Out of memory" error, so the connection is dropped).
redisReplyObjectFunctions* BoundedFunctions() {
  static void* (*original_array)(const redisReadTask*, int) = nullptr;
  static redisReplyObjectFunctions fn = [] {
    redisReader* probe = redisReaderCreate();
    redisReplyObjectFunctions f = *probe->fn;
    redisReaderFree(probe);
    original_array = f.createArray;
    f.createArray = [](const redisReadTask* task, int elements) -> void* {
      if (elements < 0 || elements > kMaxElements) return nullptr;
      return original_array(task, elements);
    };
    return f;
  }();
  return &fn;
}

}  // namespace

RespReader::RespReader() : impl_(std::make_unique<Impl>()) {
  impl_->reader = redisReaderCreateWithFunctions(BoundedFunctions());
  if (impl_->reader == nullptr) error_ = "out of memory";
}

RespReader::~RespReader() {
  if (impl_->reader != nullptr) redisReaderFree(impl_->reader);
}

bool RespReader::Feed(std::string_view bytes) {
  if (!error_.empty()) return false;
  if (bytes.empty()) return true;
  if (redisReaderFeed(impl_->reader, bytes.data(), bytes.size()) != REDIS_OK) {
    error_ = impl_->reader->errstr[0] != '\0' ? impl_->reader->errstr : "invalid RESP";
    return false;
  }
  if (impl_->reader->len - impl_->reader->pos > kMaxBuffered) {
    error_ = "reply larger than 64 MiB";
    return false;
  }
  return true;
}

std::optional<RespValue> RespReader::Next() {
  if (!error_.empty()) return std::nullopt;
  void* reply = nullptr;
  if (redisReaderGetReply(impl_->reader, &reply) != REDIS_OK) {
    error_ = impl_->reader->errstr[0] != '\0' ? impl_->reader->errstr : "invalid RESP";
    return std::nullopt;
  }
  if (reply == nullptr) return std::nullopt;
  RespValue v = Convert(*static_cast<redisReply*>(reply));
  freeReplyObject(reply);
  return v;
}

}  // namespace meridian::store
