// flashfix info --model M.gguf [--json] [--tensors]: what a model file is, layer by layer.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "engine/model.h"

namespace flashfix::cli {
namespace {

const char* kUsage =
    "usage: flashfix info --model M.gguf [--json] [--tensors]\n"
    "Prints the architecture, per-layer shapes, tensor types, file size, and total and active\n"
    "parameters per token. The file is fully validated: a model that would not load is reported.\n";

std::string human(double n) {
  const char* units[] = {"", "K", "M", "B", "T"};
  int u = 0;
  while (n >= 1000 && u < 4) n /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", n, units[u]);
  return buf;
}

nlohmann::json describe(const Model& m, bool tensors) {
  const ModelConfig& c = m.config();
  const GgufFile& f = m.file();
  nlohmann::json j;
  j["path"] = f.path();
  j["architecture"] = c.arch;
  j["name"] = c.name;
  j["gguf_version"] = f.version();
  j["file_bytes"] = f.file_size();
  j["n_vocab"] = c.n_vocab;
  j["n_embd"] = c.n_embd;
  j["n_layer"] = c.n_layer;
  j["n_nextn"] = c.n_nextn;
  j["head_dim"] = c.head_dim;
  j["context_length"] = c.context_length;
  j["sliding_window"] = c.sliding_window;
  j["rms_eps"] = c.rms_eps;
  j["n_expert"] = c.n_expert;
  j["n_expert_used"] = c.n_expert_used;
  j["n_ff_exp"] = c.n_ff_exp;
  j["router"] = c.router == RouterKind::Sigmoid ? "sigmoid" : "softmax";
  j["expert_weights_scale"] = c.expert_weights_scale;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& L : c.layers) {
    layers.push_back({{"n_head", L.n_head}, {"n_head_kv", L.n_head_kv}, {"sliding", L.sliding},
                      {"n_rot", L.rope.n_rot}, {"rope_base", L.rope.freq_base}, {"freq_factors", L.rope.use_freq_factors},
                      {"attn_gate", L.attn_gate}, {"ffn", L.moe ? (L.shared_expert ? "moe+shared" : "moe") : "dense"},
                      {"n_ff", L.moe ? c.n_ff_exp : L.n_ff}, {"clamp_exp", L.clamp_exp}, {"clamp_shexp", L.clamp_shexp},
                      {"mtp", L.mtp}});
  }
  j["layers"] = layers;
  std::map<std::string, int> type_counts;
  for (const auto& t : f.tensors()) type_counts[std::string(type_traits(t.type).name)]++;
  j["tensor_types"] = type_counts;
  auto pc = m.parameter_counts();
  j["params_total"] = pc.total;
  j["params_active"] = pc.active;
  j["active_bytes_per_token"] = pc.active_bytes;
  j["params_mtp"] = pc.mtp;
  if (tensors) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& t : f.tensors())
      list.push_back({{"name", t.name}, {"type", type_traits(t.type).name}, {"shape", t.ne}, {"bytes", t.nbytes}});
    j["tensors"] = list;
  }
  return j;
}

int run_info(const std::vector<std::string>& argv) {
  Args args(argv, {{"--model", true}, {"--json", false}, {"--tensors", false}});
  if (args.help()) return std::fputs(kUsage, stdout), 0;
  auto model = Model::load(args.require("--model"));
  nlohmann::json j = describe(*model, args.has("--tensors"));
  if (args.has("--json")) {
    std::puts(j.dump(2).c_str());
    return 0;
  }
  const ModelConfig& c = model->config();
  std::printf("model        %s\n", j["path"].get<std::string>().c_str());
  std::printf("architecture %s%s%s  (GGUF v%u, %s bytes)\n", c.arch.c_str(), c.name.empty() ? "" : "  name ",
              c.name.c_str(), model->file().version(), human(double(model->file().file_size())).c_str());
  std::printf("shape        n_embd %d, vocab %lld, %d layers + %d MTP, head_dim %d, context %lld\n", c.n_embd,
              (long long)c.n_vocab, c.n_layer, c.n_nextn, c.head_dim, (long long)c.context_length);
  if (c.n_expert)
    std::printf("experts      %d routed, top-%d, ffn %d, router %s%s, scale %g\n", c.n_expert, c.n_expert_used, c.n_ff_exp,
                c.router == RouterKind::Sigmoid ? "sigmoid" : "softmax", c.router_renorm ? "+renorm" : "",
                c.expert_weights_scale);
  std::printf("parameters   %s total, %s active per token (%s bytes), %s in MTP blocks\n",
              human(double(j["params_total"].get<int64_t>())).c_str(), human(double(j["params_active"].get<int64_t>())).c_str(),
              human(double(j["active_bytes_per_token"].get<uint64_t>())).c_str(), human(double(j["params_mtp"].get<int64_t>())).c_str());
  std::printf("types       ");
  for (auto& [name, n] : j["tensor_types"].items()) std::printf(" %s x%d", name.c_str(), n.get<int>());
  std::printf("\nlayers\n");
  for (size_t il = 0; il < c.layers.size(); ++il) {
    const auto& L = c.layers[il];
    std::printf("  %3zu %-5s heads %d/%d  rope %d dims base %g%s  %s%s%s\n", il, L.mtp ? "mtp" : (L.sliding ? "swa" : "full"),
                L.n_head, L.n_head_kv, L.rope.n_rot, L.rope.freq_base, L.rope.use_freq_factors ? " +factors" : "",
                L.moe ? (L.shared_expert ? "moe+shared" : "moe") : ("dense ff " + std::to_string(L.n_ff)).c_str(),
                L.attn_gate ? "  gate" : "",
                (L.clamp_exp > 0 || L.clamp_shexp > 0)
                    ? ("  clamp " + std::to_string(L.clamp_exp).substr(0, 4) + "/" + std::to_string(L.clamp_shexp).substr(0, 4)).c_str()
                    : "");
  }
  if (args.has("--tensors"))
    for (const auto& t : j["tensors"])
      std::printf("  %-40s %-7s %s\n", t["name"].get<std::string>().c_str(), t["type"].get<std::string>().c_str(), t["shape"].dump().c_str());
  return 0;
}

const CommandRegistration reg{"info", "describe a GGUF model: shapes per layer, types, parameters", &run_info};

}  // namespace
}  // namespace flashfix::cli
