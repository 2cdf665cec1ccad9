#include "cli/draft_report.h"

#include <cstdio>

namespace flashfix::cli {
namespace {

// Tokens the passes produced: the generated ones and the end token that stopped them.
double tokens_per_pass(const Result& r) {
  const double produced = double(r.tokens.size()) + (r.finish == FinishReason::Stop ? 1 : 0);
  return r.sampling_passes > 0 ? produced / double(r.sampling_passes) : 0;
}

double acceptance(const DraftStats& d) { return d.drafted > 0 ? double(d.accepted) / double(d.drafted) : 0; }

}  // namespace

nlohmann::json draft_report(const Result& r) {
  nlohmann::json drafts = nlohmann::json::array();
  for (const DraftStats& d : r.drafts)
    drafts.push_back({{"source", d.source}, {"passes", d.passes}, {"drafted", d.drafted}, {"accepted", d.accepted},
                      {"acceptance", acceptance(d)}});
  return {{"sampling_passes", r.sampling_passes}, {"tokens_per_pass", tokens_per_pass(r)}, {"drafts", drafts}};
}

std::string draft_summary(const Result& r) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.2f tokens/pass", tokens_per_pass(r));
  std::string s = buf;
  for (const DraftStats& d : r.drafts) {
    std::snprintf(buf, sizeof buf, "; %s: %lld drafted, %.0f%% accepted", d.source.c_str(), (long long)d.drafted,
                  100 * acceptance(d));
    s += buf;
  }
  return s;
}

}  // namespace flashfix::cli
