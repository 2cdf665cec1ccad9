// Replays assistant turns from a file: the backend for tests, demos and `flashfix replay`.
#include <fstream>

#include "agent/model_backend.h"
#include "agent/trajectory.h"

namespace flashfix::agent {
namespace {

using ojson = nlohmann::ordered_json;

// A turn given as fields ({"content", "reasoning_content", "tool_calls"}, OpenAI style, or a
// trajectory "model" line with "reasoning", "content" and its parsed "tool_calls"): taken as the
// parse the loop saw, malformed calls (an "error") included, so a replay takes the same path.
ParsedMessage message_from_fields(const ojson& line, const std::string& where) {
  ParsedMessage m;
  auto text_field = [&](const char* key) -> std::string {
    auto it = line.find(key);
    if (it == line.end() || it->is_null()) return {};
    if (!it->is_string()) throw BackendError(where + ": \"" + key + "\" must be a string");
    return it->get<std::string>();
  };
  m.content = text_field("content");
  m.reasoning = line.contains("reasoning") ? text_field("reasoning") : text_field("reasoning_content");
  auto calls = line.find("tool_calls");
  if (calls == line.end() || calls->is_null()) return m;
  if (!calls->is_array()) throw BackendError(where + ": \"tool_calls\" must be an array");
  for (const ojson& c : *calls) {
    // OpenAI nests name and arguments in "function"; trajectories and hand-written scripts do not.
    const ojson& fn = c.contains("function") ? c["function"] : c;
    if (!fn.is_object()) throw BackendError(where + ": a tool call must be an object");
    ParsedCall pc;
    pc.call.id = c.value("id", "call_" + std::to_string(m.calls.size()));
    pc.call.name = fn.value("name", "");
    pc.error = c.value("error", "");
    pc.raw = c.value("raw", "");
    const ojson args = fn.value("arguments", ojson::object());
    if (args.is_string()) {
      // As OpenAI sends it: a JSON string that should hold an object; a bad one is the model's error.
      ojson parsed = ojson::parse(args.get<std::string>(), nullptr, false);
      if (parsed.is_object()) {
        pc.call.arguments = std::move(parsed);
      } else {
        pc.call.arguments = args;
        if (pc.error.empty()) pc.error = "the arguments of '" + pc.call.name + "' are not a JSON object: " + args.get<std::string>();
      }
    } else {
      pc.call.arguments = args;
    }
    if (pc.error.empty() && pc.call.name.empty()) pc.error = "a tool call without a function name";
    m.calls.push_back(std::move(pc));
  }
  return m;
}

TurnStats stats_from(const ojson& j, const std::string& where) {
  if (!j.is_object()) throw BackendError(where + ": \"stats\" must be an object");
  TurnStats s;
  try {
    s.prompt_tokens = j.value("prompt_tokens", int64_t(0));
    s.cached_tokens = j.value("cached_tokens", int64_t(0));
    s.generated_tokens = j.value("generated_tokens", int64_t(0));
    s.ttft_ms = j.value("ttft_ms", 0.0);
    s.prefill_ms = j.value("prefill_ms", 0.0);
    s.decode_ms = j.value("decode_ms", 0.0);
    s.finish = j.value("finish", "");
  } catch (const nlohmann::json::exception& e) {
    throw BackendError(where + ": bad \"stats\": " + e.what());
  }
  return s;
}

class ScriptedBackend final : public ModelBackend {
 public:
  ScriptedBackend(const std::filesystem::path& path, ChatFormat format) : path_(path), format_(format) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BackendError("cannot read the script " + path.string());
    std::string text;
    bool trajectory = false;
    for (int n = 1; std::getline(in, text); ++n) {
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = path.string() + ":" + std::to_string(n);
      ojson line = ojson::parse(text, nullptr, false);
      if (!line.is_object()) throw BackendError(where + ": not a JSON object");
      if (line.contains("type")) {
        // A trajectory: only its model turns are replayed; tool lines are recomputed by the run.
        trajectory = true;
        if (line["type"] != "model") continue;
      } else if (trajectory) {
        throw BackendError(where + ": a line without \"type\" in a trajectory file");
      }
      Turn turn;
      if (!trajectory && line.contains("raw")) {
        if (!line["raw"].is_string()) throw BackendError(where + ": \"raw\" must be a string");
        turn.raw = line["raw"].get<std::string>();
        turn.parse_raw = true;  // at replay time, with the tools' schemas for typed values
      } else if (!trajectory && !line.contains("content") && !line.contains("tool_calls") &&
                 !line.contains("reasoning_content")) {
        throw BackendError(where + ": a turn needs \"raw\", or \"content\" and/or \"tool_calls\"");
      } else {
        turn.message = message_from_fields(line, where);
        turn.raw = line.value("raw", turn.message.content);
      }
      if (auto st = line.find("stats"); st != line.end()) turn.stats = stats_from(*st, where);
      turns_.push_back(std::move(turn));
    }
    if (turns_.empty()) throw BackendError(path.string() + ": the script has no model turns");
  }

  std::string describe() const override { return "scripted:" + path_.string(); }

  ModelTurn complete(const std::vector<ChatMessage>&, const ojson& tools, const StreamSink* sink, std::stop_token stop) override {
    if (next_ >= turns_.size())
      throw BackendError("the script " + path_.string() + " has no turn " + std::to_string(next_ + 1) + " (it has " +
                         std::to_string(turns_.size()) + ")");
    const Turn& t = turns_[next_++];
    ModelTurn turn;
    turn.raw = t.raw;
    turn.message = t.parse_raw ? parse_assistant_text(format_, t.raw, tools) : t.message;
    turn.stats = t.stats;
    if (turn.stats.finish.empty()) turn.stats.finish = turn.message.calls.empty() ? "stop" : "tool_calls";
    if (stop.stop_requested()) {
      turn.stats.finish = "cancelled";
      return turn;
    }
    if (sink && sink->on_event) emit(turn.message, *sink);
    return turn;
  }

 private:
  // The live view sees a scripted turn as one piece of each kind, as if streamed at once.
  static void emit(const ParsedMessage& m, const StreamSink& sink) {
    if (!m.reasoning.empty()) sink.on_event(stream_event(StreamEvent::Reasoning, m.reasoning));
    if (!m.content.empty()) sink.on_event(stream_event(StreamEvent::Content, m.content));
    for (size_t i = 0; i < m.calls.size(); ++i) {
      const ParsedCall& c = m.calls[i];
      sink.on_event(stream_event(StreamEvent::CallBegin, "", int(i), c.call.id, c.call.name));
      sink.on_event(stream_event(StreamEvent::CallArguments, c.call.arguments.is_string() ? c.call.arguments.get<std::string>() : c.call.arguments.dump(), int(i)));
      sink.on_event(stream_event(StreamEvent::CallEnd, "", int(i)));
    }
  }

  struct Turn {
    std::string raw;
    bool parse_raw = false;
    ParsedMessage message;  // when given as fields
    TurnStats stats;        // as recorded (a trajectory's), so a replay spends the same budget
  };

  std::filesystem::path path_;
  ChatFormat format_;
  std::vector<Turn> turns_;
  size_t next_ = 0;
};

}  // namespace

std::unique_ptr<ModelBackend> make_scripted_backend(const std::filesystem::path& script, ChatFormat format) {
  return std::make_unique<ScriptedBackend>(script, format);
}

}  // namespace flashfix::agent
