#include "agent/openai_stream.h"

#include <stdexcept>

#include "agent/model_backend.h"

namespace flashfix::agent {

using json = nlohmann::json;

OpenAIStream::OpenAIStream(std::function<void(const StreamEvent&)> on_event) : on_event_(std::move(on_event)) {}

void OpenAIStream::feed(std::string_view bytes) {
  pending_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(pending_.data() + start, nl - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) {  // a blank line dispatches the event
      if (!data_.empty()) event(data_);
      data_.clear();
    } else if (line.starts_with("data:")) {
      line.remove_prefix(5);
      if (line.starts_with(' ')) line.remove_prefix(1);
      if (!data_.empty()) data_ += '\n';
      data_.append(line);
    }
    // Comments (": keep-alive"), "event:", "id:" and "retry:" lines carry nothing for us.
  }
  pending_.erase(0, start);
}

void OpenAIStream::finish() {
  if (!pending_.empty()) feed("\n");
  if (!data_.empty()) event(data_);
  data_.clear();
  if (!any_) throw std::runtime_error("the stream ended without any chunk");
  for (auto& [index, call] : calls_) emit(stream_event(StreamEvent::CallEnd, "", index));
}

void OpenAIStream::event(std::string_view data) {
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  json chunk = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!chunk.is_object()) throw std::runtime_error("a stream chunk is not a JSON object: " + std::string(data.substr(0, 200)));
  if (auto err = chunk.find("error"); err != chunk.end()) {
    const json& e = *err;
    throw std::runtime_error("the server reported an error mid-stream: " +
                             (e.is_object() && e.contains("message") ? e["message"].dump() : e.dump()));
  }
  any_ = true;
  if (auto u = chunk.find("usage"); u != chunk.end() && u->is_object()) usage_ = *u;
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty()) return;  // e.g. the usage-only last chunk
  const json& choice = (*choices)[0];
  if (auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) finish_reason_ = *f;
  auto delta = choice.find("delta");
  if (delta == choice.end() || !delta->is_object()) return;
  auto text = [&](const char* key) -> std::string {
    auto it = delta->find(key);
    return it != delta->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  // Servers name the reasoning differently: reasoning_content (DeepSeek, llama.cpp, vLLM) or reasoning.
  std::string reasoning = text("reasoning_content") + text("reasoning");
  if (!reasoning.empty()) {
    reasoning_ += reasoning;
    emit(stream_event(StreamEvent::Reasoning, reasoning));
  }
  if (std::string content = text("content"); !content.empty()) {
    content_ += content;
    emit(stream_event(StreamEvent::Content, content));
  }
  auto tool_calls = delta->find("tool_calls");
  if (tool_calls == delta->end() || !tool_calls->is_array()) return;
  for (const json& tc : *tool_calls) {
    if (!tc.is_object()) throw std::runtime_error("a tool_calls delta is not an object");
    const int index = tc.value("index", int(calls_.size()));
    Call& call = calls_[index];
    if (auto id = tc.find("id"); id != tc.end() && id->is_string()) call.id += id->get<std::string>();
    auto fn = tc.find("function");
    if (fn == tc.end() || !fn->is_object()) continue;
    if (auto n = fn->find("name"); n != fn->end() && n->is_string()) call.name += n->get<std::string>();
    if (!call.begun && !call.name.empty()) {
      call.begun = true;
      emit(stream_event(StreamEvent::CallBegin, "", index, call.id, call.name));
    }
    if (auto a = fn->find("arguments"); a != fn->end() && a->is_string() && !a->get_ref<const std::string&>().empty()) {
      call.arguments += a->get<std::string>();
      emit(stream_event(StreamEvent::CallArguments, a->get<std::string>(), index));
    }
  }
}

json OpenAIStream::message() const {
  json m{{"role", "assistant"}, {"content", content_}};
  if (!reasoning_.empty()) m["reasoning_content"] = reasoning_;
  if (!calls_.empty()) {
    json calls = json::array();
    for (const auto& [index, c] : calls_)
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    m["tool_calls"] = std::move(calls);
  }
  return m;
}

}  // namespace flashfix::agent
