#include "server/tool_choice_constraint.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "server/api_error.h"

namespace flashfix::server {

ToolChoiceConstraint::ToolChoiceConstraint(const Tokenizer& tok, std::shared_ptr<const agent::TokenTrie> trie, ChatFormat format,
                                           const nlohmann::ordered_json& tools, ToolChoice choice, const std::string& name,
                                           bool parallel_calls, std::vector<int32_t> end_tokens, int32_t newline)
    : choice_(choice), parallel_calls_(parallel_calls), end_tokens_(std::move(end_tokens)), newline_(newline) {
  // All three chat formats open a call with the <tool_call> special token.
  if (auto id = tok.find_token("<tool_call>")) call_open_ = *id;
  if (call_open_ < 0 && choice != ToolChoice::Auto)
    throw invalid_request("this model's vocabulary has no <tool_call> token, so tool_choice cannot be enforced", "tool_choice");
  if (choice == ToolChoice::None) return;
  nlohmann::ordered_json allowed = tools;
  if (choice == ToolChoice::Named) {
    allowed = nlohmann::ordered_json::array();
    for (const auto& t : tools)
      if (t["function"]["name"] == name) allowed.push_back(t);
  }
  try {
    grammar_ = std::make_unique<agent::CallConstraint>(tok, std::move(trie), format, allowed);
  } catch (const std::exception& e) {
    throw invalid_request(std::string("the tools cannot be enforced: ") + e.what(), "tools");
  }
}

void ToolChoiceConstraint::apply(std::span<float> logits) const {
  constexpr float kMasked = -std::numeric_limits<float>::infinity();
  const bool in_range = call_open_ >= 0 && size_t(call_open_) < logits.size();
  if (choice_ == ToolChoice::None) {
    if (in_range) logits[size_t(call_open_)] = kMasked;
    return;
  }
  if ((choice_ == ToolChoice::Required || choice_ == ToolChoice::Named) && !call_started_ && in_range) {
    const float keep = logits[size_t(call_open_)];
    std::fill(logits.begin(), logits.end(), kMasked);
    // The opening token's own logit may be -inf already (a random model); any finite value works.
    logits[size_t(call_open_)] = std::isfinite(keep) ? keep : 0.f;
    return;
  }
  if (grammar_->in_call() || grammar_->calls_completed() == 0) return grammar_->apply(logits);
  // After a call: keep only the turn's end, one newline and (parallel calls) the next call's opener.
  std::vector<std::pair<int32_t, float>> keep;
  for (int32_t id : end_tokens_)
    if (size_t(id) < logits.size()) keep.emplace_back(id, logits[size_t(id)]);
  if (!newline_after_call_ && newline_ >= 0 && size_t(newline_) < logits.size()) keep.emplace_back(newline_, logits[size_t(newline_)]);
  if (parallel_calls_ && in_range) keep.emplace_back(call_open_, logits[size_t(call_open_)]);
  std::fill(logits.begin(), logits.end(), kMasked);
  bool any_finite = false;
  for (auto [id, value] : keep) any_finite |= std::isfinite(logits[size_t(id)] = value);
  if (!any_finite && !keep.empty()) logits[size_t(keep.front().first)] = 0.f;
}

void ToolChoiceConstraint::accept(int32_t token) {
  if (token == call_open_) call_started_ = true, newline_after_call_ = false;
  if (token == newline_ && grammar_ && !grammar_->in_call() && grammar_->calls_completed() > 0) newline_after_call_ = true;
  if (grammar_) grammar_->accept(token);
}

}  // namespace flashfix::server
