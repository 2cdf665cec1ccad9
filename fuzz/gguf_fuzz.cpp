// libFuzzer entry: any byte string must parse to a GgufFile or be rejected with GgufError, and a parsed
// file must pass or fail model validation the same way. Anything else (a crash, a sanitizer report, a
// different exception, a leak, a hang) is a bug in the reader or loader.
#include <cstdint>
#include <cstdio>

#include "engine/gguf.h"
#include "engine/model.h"

using namespace flashfix;

namespace {

// Every accessor on every key, each in its own try: one throwing must not hide the others.
void walk_metadata(const GgufFile& f) {
  auto attempt = [](auto&& fn) {
    try {
      fn();
    } catch (const GgufError&) {
    }
  };
  for (const auto& kv : f.metadata()) {
    const GgufValue& v = kv.value;
    (void)gguf_type_name(v.type);
    (void)v.is_numeric();
    attempt([&] { (void)v.as_int(kv.key); });
    attempt([&] { (void)v.as_float(kv.key); });
    attempt([&] { (void)v.as_bool(kv.key); });
    if (v.is_array() && v.elem_type != GgufType::STRING)
      for (uint64_t k = 0; k < v.count; ++k) attempt([&] { (void)v.array_number(k); });
    attempt([&] { (void)f.get_int(kv.key); });
    attempt([&] { (void)f.get_float(kv.key); });
    attempt([&] { (void)f.get_bool(kv.key); });
    attempt([&] { (void)f.get_string(kv.key); });
    attempt([&] { (void)f.get_int_array(kv.key); });
    attempt([&] { (void)f.get_float_array(kv.key); });
    attempt([&] {
      if (const auto* s = f.get_string_array(kv.key))
        for (auto sv : *s) (void)sv.size();
    });
    attempt([&] { (void)f.get_per_layer(kv.key, v.is_array() ? v.count : 4); });
  }
  uint64_t sum = 0;
  for (const auto& t : f.tensors()) {
    sum += uint64_t(t.n_elements()) + t.row_bytes();
    // Touch the first and last byte so ASan checks the data view lies inside the image.
    if (t.nbytes) sum += t.data[0] + t.data[t.nbytes - 1];
    if (f.find_tensor(t.name) != &t) __builtin_trap();  // names are unique, so lookup finds this one
  }
  if (sum == 1) std::fputc(0, stderr);  // keep the reads from being optimised away
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<GgufFile> f;
  try {
    f = GgufFile::parse(data, size, "fuzz");
  } catch (const GgufError&) {
    return 0;
  }
  walk_metadata(*f);
  try {
    auto m = Model::from_file(std::move(f));
    (void)m->parameter_counts();
  } catch (const GgufError&) {
  }
  return 0;
}
