// GGUF v2/v3 reader and writer.
//
// The reader maps the file and never trusts it: every count, length, offset and shape is checked
// against the bytes actually present before it is used, so a corrupt or hostile file produces a
// GgufError naming the problem instead of a crash, a hang or a huge allocation. Metadata strings and
// tensor data are views into the mapping (zero copy); a GgufFile must outlive everything taken from it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tensor_types.h"

namespace flashfix {

class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars are held decoded; arrays keep their element type, count and a pointer
// to the raw little-endian elements in the mapping (strings are pre-split into views).
struct GgufValue {
  GgufType type = GgufType::U8;
  GgufType elem_type = GgufType::U8;  // arrays only
  uint64_t count = 0;                 // arrays only
  // Scalar storage (which one is live follows `type`).
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view str;
  const uint8_t* array_data = nullptr;      // numeric arrays
  std::vector<std::string_view> strings;    // string arrays

  bool is_array() const { return type == GgufType::ARRAY; }
  bool is_numeric() const;  // any integer, float or bool scalar
  // Numeric scalar as the requested kind; throws GgufError if not numeric or out of range.
  int64_t as_int(std::string_view key) const;
  double as_float(std::string_view key) const;
  bool as_bool(std::string_view key) const;
  // Element k of a numeric/bool array as a number (k < count).
  double array_number(uint64_t k) const;
};

struct GgufKV {
  std::string_view key;
  GgufValue value;
};

struct GgufTensor {
  std::string_view name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> ne;     // ggml order: ne[0] is contiguous
  uint64_t offset = 0;         // relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;
  int64_t n_elements() const;
  int64_t dim(size_t k) const { return k < ne.size() ? ne[k] : 1; }
  size_t row_bytes() const;    // bytes of one ne[0]-row
};

class GgufFile {
 public:
  // Maps and validates a file. Throws GgufError (message starts with the path).
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Validates an in-memory image without copying it; the caller keeps `data` alive (used by the fuzzer).
  static std::unique_ptr<GgufFile> parse(const uint8_t* data, size_t size, std::string label = "<memory>");
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return label_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return size_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const uint8_t* base() const { return data_; }
  // Drops this process's resident pages lying wholly inside [begin, begin + bytes) of a mapped file:
  // for bytes copied elsewhere (repacked weights), so they are not resident twice. The page cache
  // keeps them and a later read faults them back in. An in-memory image (parse) is left alone: its
  // bytes belong to the caller.
  void drop_pages(const uint8_t* begin, size_t bytes) const;

  const std::vector<GgufKV>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  // Typed lookups. The optional ones return nullopt when the key is absent and throw GgufError when it
  // is present with an incompatible type; the require_ ones also throw when it is absent.
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;
  std::string_view require_string(std::string_view key) const;
  // Arrays: nullopt when absent; throws when the element type does not convert.
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;
  const std::vector<std::string_view>* get_string_array(std::string_view key) const;
  // A per-layer value that may be stored as a scalar or as an array of n_layer entries.
  std::optional<std::vector<double>> get_per_layer(std::string_view key, size_t n_layer) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  void parse_all();

  std::string label_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKV> kvs_;
  std::vector<GgufTensor> tensors_;
};

// Writes GGUF v3. Metadata is kept in insertion order; tensor data is produced on demand by a fill
// callback at write time, so a multi-gigabyte synthetic model never has to sit in memory at once.
class GgufWriter {
 public:
  using Fill = std::function<void(uint8_t* dst, size_t nbytes)>;

  void set_u8(std::string key, uint8_t v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_u64(std::string key, uint64_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string(std::string key, std::string v);
  void set_array_i32(std::string key, const std::vector<int32_t>& v);
  void set_array_u32(std::string key, const std::vector<uint32_t>& v);
  void set_array_f32(std::string key, const std::vector<float>& v);
  void set_array_bool(std::string key, const std::vector<bool>& v);
  void set_array_string(std::string key, const std::vector<std::string>& v);
  void set_array_string(std::string key, const std::vector<std::string_view>& v);
  // Copies a value read from another file verbatim (used by `quantize`).
  void copy_value(std::string key, const GgufValue& v);

  void add_tensor(std::string name, TensorType type, std::vector<int64_t> ne, Fill fill);
  void set_alignment(uint32_t a);

  // Writes to `path` (via a temporary file renamed into place, so a failed write loses nothing).
  void write(const std::string& path) const;

 private:
  struct Entry { std::string key; GgufType type; std::string bytes; };
  struct Tensor { std::string name; TensorType type; std::vector<int64_t> ne; Fill fill; uint64_t nbytes; };
  void put(std::string key, GgufType type, std::string bytes);
  std::vector<Entry> entries_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace flashfix
