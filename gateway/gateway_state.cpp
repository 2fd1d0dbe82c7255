#include "gateway/gateway_state.h"

#include <array>
#include <string>
#include <string_view>

namespace meridian::gateway {

std::string RenderMetrics(const GatewayState& state) {
  const Counters& c = state.counters;
  std::string out;
  auto counter = [&](std::string_view name, std::string_view help,
                     const std::atomic<std::uint64_t>& value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += " counter\n";
    out += name;
    out += ' ';
    out += std::to_string(value.load(std::memory_order_relaxed));
    out += '\n';
  };
  counter("meridian_http_requests_total", "HTTP requests received.", c.requests);
  out += "# HELP meridian_http_responses_total HTTP responses sent, by status class.\n";
  out += "# TYPE meridian_http_responses_total counter\n";
  out += "meridian_http_responses_total{class=\"2xx\"} " +
         std::to_string(c.responses_2xx.load(std::memory_order_relaxed)) + "\n";
  out += "meridian_http_responses_total{class=\"4xx\"} " +
         std::to_string(c.responses_4xx.load(std::memory_order_relaxed)) + "\n";
  out += "meridian_http_responses_total{class=\"5xx\"} " +
         std::to_string(c.responses_5xx.load(std::memory_order_relaxed)) + "\n";
  counter("meridian_policy_denials_total", "Requests denied by the policy.", c.policy_denials);
  counter("meridian_classifier_raises_total",
          "Requests whose data class the PII classifier raised.", c.classifier_raises);
  counter("meridian_region_header_ignored_total",
          "Region headers ignored because the peer is not a trusted proxy.",
          c.region_header_ignored_untrusted);
  counter("meridian_region_header_rejected_total",
          "Region headers from trusted proxies outside the tenant's allowed regions.",
          c.region_header_rejected);
  counter("meridian_client_disconnects_total", "Clients that went away mid-request.",
          c.client_disconnects);
  counter("meridian_concurrency_rejections_total",
          "Requests rejected with 503 because max_concurrent_streams was reached.",
          c.concurrency_rejections);
  counter("meridian_grpc_requests_total", "gRPC calls received.", c.grpc_requests);
  static constexpr std::array<std::string_view, 17> kGrpcCodes = {"OK",
                                                                  "CANCELLED",
                                                                  "UNKNOWN",
                                                                  "INVALID_ARGUMENT",
                                                                  "DEADLINE_EXCEEDED",
                                                                  "NOT_FOUND",
                                                                  "ALREADY_EXISTS",
                                                                  "PERMISSION_DENIED",
                                                                  "RESOURCE_EXHAUSTED",
                                                                  "FAILED_PRECONDITION",
                                                                  "ABORTED",
                                                                  "OUT_OF_RANGE",
                                                                  "UNIMPLEMENTED",
                                                                  "INTERNAL",
                                                                  "UNAVAILABLE",
                                                                  "DATA_LOSS",
                                                                  "UNAUTHENTICATED"};
  out += "# HELP meridian_grpc_responses_total gRPC calls finished, by status code.\n";
  out += "# TYPE meridian_grpc_responses_total counter\n";
  for (std::size_t i = 0; i < kGrpcCodes.size(); ++i) {
    out += "meridian_grpc_responses_total{code=\"";
    out += kGrpcCodes[i];
    out += "\"} " + std::to_string(c.grpc_responses[i].load(std::memory_order_relaxed)) + "\n";
  }
  out += "# HELP meridian_in_flight_requests Completions being served.\n";
  out += "# TYPE meridian_in_flight_requests gauge\n";
  out += "meridian_in_flight_requests " + std::to_string(state.in_flight.load()) + "\n";
  return out;
}

}  // namespace meridian::gateway
