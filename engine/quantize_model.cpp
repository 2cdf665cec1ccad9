#include "engine/quantize_model.h"

#include <cstring>
#include <algorithm>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/gguf.h"

namespace flashfix {

int32_t llama_file_type(TensorType type) {
  switch (type) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q8_0: return 7;
    case TensorType::Q4_K: return 14;  // Q4_K_S
    case TensorType::Q5_K: return 16;  // Q5_K_S
    case TensorType::Q6_K: return 18;
    case TensorType::BF16: return 32;
    default: throw std::invalid_argument("no llama.cpp file type for " + std::string(type_traits(type).name));
  }
}

bool keeps_type(std::string_view name, size_t n_dims) {
  return n_dims < 2 || name.ends_with("norm.weight") || name.ends_with(".bias") ||
         name.ends_with("ffn_gate_inp.weight") || name.starts_with("rope_freqs");
}

void parallel_rows(int64_t rows, int64_t row_len, const std::function<void(int64_t, int64_t)>& work) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned n = rows * row_len < (1 << 18) ? 1 : unsigned(std::min<int64_t>({int64_t(hw), rows, 64}));
  if (n == 1) return work(0, rows);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < n; ++t) pool.emplace_back(work, rows * t / n, rows * (t + 1) / n);
  for (auto& th : pool) th.join();
}

namespace {

bool is_float(TensorType t) { return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16; }

}  // namespace

QuantizeStats quantize_model(const std::string& in, const std::string& out, TensorType type, std::FILE* log) {
  if (!is_float(type) && type != TensorType::Q8_0 && type != TensorType::Q4_K && type != TensorType::Q5_K &&
      type != TensorType::Q6_K)
    throw std::invalid_argument("cannot quantize to " + std::string(type_traits(type).name) +
                                " (f16, bf16, q8_0, q4_K, q5_K, q6_K)");
  auto src = GgufFile::open(in);
  GgufWriter w;
  for (const auto& kv : src->metadata()) {
    // The writer lays tensors out by its own alignment, so the value must go through set_alignment.
    if (kv.key == "general.alignment") w.set_alignment(uint32_t(kv.value.u));
    else w.copy_value(std::string(kv.key), kv.value);
  }
  w.set_u32("general.file_type", uint32_t(llama_file_type(type)));
  w.set_u32("general.quantization_version", 2);

  QuantizeStats st;
  const size_t n = src->tensors().size();
  for (size_t k = 0; k < n; ++k) {
    const GgufTensor& t = src->tensors()[k];
    st.bytes_in += t.nbytes;
    TensorType to = type;
    if (!is_float(t.type) || keeps_type(t.name, t.ne.size())) {
      to = t.type;
    } else if (!row_ok(type, t.ne[0])) {
      to = t.type;
      ++st.misfit;
      if (log)
        std::fprintf(log, "%s: row of %lld is not a multiple of the %s block size %lld, kept as %s\n",
                     std::string(t.name).c_str(), (long long)t.ne[0], std::string(type_traits(type).name).c_str(),
                     (long long)type_traits(type).block_elems, std::string(type_traits(t.type).name).c_str());
    }
    // Progress is printed as each tensor is produced, which is when the time goes.
    auto progress = [log, k, n, name = std::string(t.name), from = t.type, to] {
      if (log)
        std::fprintf(log, "[%4zu/%zu] %-44s %-5s -> %s\n", k + 1, n, name.c_str(),
                     std::string(type_traits(from).name).c_str(), std::string(type_traits(to).name).c_str());
    };
    const GgufTensor* tp = &t;  // stays valid: `src` outlives w.write below
    if (to == t.type) {
      ++st.kept;
      st.bytes_out += t.nbytes;
      w.add_tensor(std::string(t.name), t.type, t.ne, [tp, progress](uint8_t* dst, size_t nb) {
        progress();
        std::memcpy(dst, tp->data, nb);
      });
    } else {
      ++st.converted;
      st.bytes_out += uint64_t(t.n_elements() / t.ne[0]) * row_bytes(to, t.ne[0]);
      w.add_tensor(std::string(t.name), to, t.ne, [tp, to, progress](uint8_t* dst, size_t) {
        progress();
        const int64_t row_len = tp->ne[0], rows = tp->n_elements() / row_len;
        const size_t in_rb = tp->row_bytes(), out_rb = row_bytes(to, row_len);
        parallel_rows(rows, row_len, [&](int64_t r0, int64_t r1) {
          std::vector<float> row(static_cast<size_t>(row_len));
          for (int64_t r = r0; r < r1; ++r) {
            dequantize_row(tp->type, tp->data + size_t(r) * in_rb, row.data(), row_len);
            quantize_row(to, row.data(), dst + size_t(r) * out_rb, row_len);
          }
        });
      });
    }
  }
  w.write(out);
  return st;
}

}  // namespace flashfix
