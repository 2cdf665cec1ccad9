// flashfix quantize IN.gguf OUT.gguf TYPE: convert a model's float weights to one type.
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "engine/quantize_model.h"

namespace flashfix::cli {
namespace {

const char* kUsage =
    "usage: flashfix quantize IN.gguf OUT.gguf TYPE   (TYPE: q8_0, q4_K, q5_K, q6_K, f16, bf16)\n"
    "Converts every F32/F16/BF16 weight with >= 2 dims to TYPE. Norms, biases, routers (ffn_gate_inp),\n"
    "rope_freqs and 1-D tensors stay as they are, already-quantized tensors are copied, and a tensor whose\n"
    "rows are not whole TYPE blocks is kept (and listed). Metadata is copied; general.file_type is updated.\n";

int run_quantize(const std::vector<std::string>& argv) {
  Args args(argv, {});
  if (args.help()) return std::fputs(kUsage, stdout), 0;
  const auto& pos = args.positional();
  if (pos.size() != 3) throw UsageError("expected IN.gguf OUT.gguf TYPE, got " + std::to_string(pos.size()) + " arguments");
  auto type = type_from_name(pos[2]);
  const bool supported = type && (*type == TensorType::Q8_0 || *type == TensorType::Q4_K || *type == TensorType::Q5_K ||
                                  *type == TensorType::Q6_K || *type == TensorType::F16 || *type == TensorType::BF16);
  if (!supported) throw UsageError("TYPE must be q8_0, q4_K, q5_K, q6_K, f16 or bf16, got '" + pos[2] + "'");
  QuantizeStats st = quantize_model(pos[0], pos[1], *type, stderr);
  std::fprintf(stderr, "%s: %d tensors converted to %s, %d kept (%d do not fit its blocks); %.2f MB -> %.2f MB (%.1f%%)\n",
               pos[1].c_str(), st.converted, pos[2].c_str(), st.kept, st.misfit, double(st.bytes_in) / 1e6,
               double(st.bytes_out) / 1e6, st.bytes_in ? 100.0 * double(st.bytes_out) / double(st.bytes_in) : 100.0);
  return 0;
}

const CommandRegistration reg{"quantize", "convert a model's float weights to q8_0/q4_K/q5_K/q6_K/f16/bf16", &run_quantize};

}  // namespace
}  // namespace flashfix::cli
