#include "engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace flashfix {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read little-endian
constexpr int kMaxDims = 4;              // ggml tensors have at most 4 dimensions
constexpr uint64_t kMaxAlignment = 1u << 16;

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

// Bounds-checked little-endian reader over the file image. Every read states what it was reading so
// that a truncated file names the field that ran past the end.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& label) : data_(data), size_(size), label_(label) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw GgufError(label_ + ": " + what + " (at byte " + std::to_string(pos_) + " of " + std::to_string(size_) + ")");
  }

  const uint8_t* take(uint64_t n, const char* what) {
    if (n > remaining()) fail(std::string("truncated file: ") + what + " needs " + std::to_string(n) + " bytes");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

  template <typename T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));
    return v;
  }

  std::string_view string(const char* what) {
    uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail(std::string(what) + " has length " + std::to_string(len) + ", more than the " +
           std::to_string(remaining()) + " bytes left in the file");
    return {reinterpret_cast<const char*>(take(len, what)), size_t(len)};
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& label_;
};

void read_scalar(Cursor& c, GgufType t, GgufValue& v) {
  switch (t) {
    case GgufType::U8: v.u = c.read<uint8_t>("u8 value"); break;
    case GgufType::I8: v.i = c.read<int8_t>("i8 value"); break;
    case GgufType::U16: v.u = c.read<uint16_t>("u16 value"); break;
    case GgufType::I16: v.i = c.read<int16_t>("i16 value"); break;
    case GgufType::U32: v.u = c.read<uint32_t>("u32 value"); break;
    case GgufType::I32: v.i = c.read<int32_t>("i32 value"); break;
    case GgufType::U64: v.u = c.read<uint64_t>("u64 value"); break;
    case GgufType::I64: v.i = c.read<int64_t>("i64 value"); break;
    case GgufType::F32: v.f = c.read<float>("f32 value"); break;
    case GgufType::F64: v.f = c.read<double>("f64 value"); break;
    case GgufType::BOOL: {
      uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) c.fail("bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.b = b;
      break;
    }
    case GgufType::STRING: v.str = c.string("string value"); break;
    default: c.fail("unexpected value type");
  }
}

bool is_signed(GgufType t) {
  return t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
}
bool is_unsigned(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}
bool is_float(GgufType t) { return t == GgufType::F32 || t == GgufType::F64; }

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  return valid_type(uint32_t(t)) ? names[uint32_t(t)] : "unknown";
}

// ---- GgufValue --------------------------------------------------------------------------------

bool GgufValue::is_numeric() const {
  return is_signed(type) || is_unsigned(type) || is_float(type) || type == GgufType::BOOL;
}

int64_t GgufValue::as_int(std::string_view key) const {
  auto bad = [&](const std::string& why) {
    return GgufError("metadata " + std::string(key) + ": " + why);
  };
  if (is_signed(type)) return i;
  if (is_unsigned(type)) {
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) throw bad("value " + std::to_string(u) + " out of range");
    return int64_t(u);
  }
  if (type == GgufType::BOOL) return b;
  if (is_float(type)) {
    if (!std::isfinite(f) || f != std::floor(f) || std::fabs(f) > 9.0e18) throw bad("expected an integer, found " + std::to_string(f));
    return int64_t(f);
  }
  throw bad("expected an integer, found " + std::string(gguf_type_name(type)));
}

double GgufValue::as_float(std::string_view key) const {
  if (is_float(type)) return f;
  if (is_signed(type)) return double(i);
  if (is_unsigned(type)) return double(u);
  throw GgufError("metadata " + std::string(key) + ": expected a number, found " + std::string(gguf_type_name(type)));
}

bool GgufValue::as_bool(std::string_view key) const {
  if (type == GgufType::BOOL) return b;
  if (is_signed(type) || is_unsigned(type)) return as_int(key) != 0;
  throw GgufError("metadata " + std::string(key) + ": expected a bool, found " + std::string(gguf_type_name(type)));
}

double GgufValue::array_number(uint64_t k) const {
  const uint8_t* p = array_data + k * scalar_size(elem_type);
  auto load = [p](auto tag) {
    decltype(tag) x;
    std::memcpy(&x, p, sizeof x);
    return double(x);
  };
  switch (elem_type) {
    case GgufType::U8: return load(uint8_t{});
    case GgufType::I8: return load(int8_t{});
    case GgufType::U16: return load(uint16_t{});
    case GgufType::I16: return load(int16_t{});
    case GgufType::U32: return load(uint32_t{});
    case GgufType::I32: return load(int32_t{});
    case GgufType::U64: return load(uint64_t{});
    case GgufType::I64: return load(int64_t{});
    case GgufType::F32: return load(float{});
    case GgufType::F64: return load(double{});
    case GgufType::BOOL: return load(uint8_t{}) != 0;
    default: throw GgufError("array element type " + std::string(gguf_type_name(elem_type)) + " is not numeric");
  }
}

// ---- GgufTensor -------------------------------------------------------------------------------

int64_t GgufTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

size_t GgufTensor::row_bytes() const { return flashfix::row_bytes(type, dim(0)); }

// ---- GgufFile ---------------------------------------------------------------------------------

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw GgufError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw GgufError(path + ": not a regular file");
  }
  if (st.st_size < 24) {
    ::close(fd);
    throw GgufError(path + ": file is " + std::to_string(st.st_size) + " bytes, too small to be GGUF");
  }
  void* p = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw GgufError(path + ": mmap failed: " + std::strerror(err));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->label_ = path;
  f->data_ = static_cast<const uint8_t*>(p);
  f->size_ = uint64_t(st.st_size);
  f->mapped_ = true;
  f->parse_all();  // on throw, ~GgufFile unmaps
  return f;
}

std::unique_ptr<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, std::string label) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->label_ = std::move(label);
  f->data_ = data;
  f->size_ = size;
  f->parse_all();
  return f;
}

GgufFile::~GgufFile() {
  if (mapped_) munmap(const_cast<uint8_t*>(data_), size_);
}

void GgufFile::drop_pages(const uint8_t* begin, size_t bytes) const {
  if (!mapped_ || begin < data_ || begin + bytes > data_ + size_) return;
  const auto page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (uintptr_t(begin) + page - 1) / page * page, last = (uintptr_t(begin) + bytes) / page * page;
  // MADV_DONTNEED on a private read-only file mapping only unmaps: nothing was written, nothing is lost.
  if (first < last) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void GgufFile::parse_all() {
  Cursor c(data_, size_, label_);
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) c.fail("bad magic: not a GGUF file");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) c.fail("GGUF version 1 is not supported (re-convert the model)");
  if (version_ != 2 && version_ != 3)
    c.fail("unsupported GGUF version " + std::to_string(version_) + (version_ > 0xffff ? " (big-endian file?)" : ""));
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Lower bounds on record sizes turn absurd counts into an error before anything is allocated:
  // a key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor record 8+4+8+4+8.
  if (n_kv > c.remaining() / 13) c.fail("metadata count " + std::to_string(n_kv) + " is impossible for the file size");
  if (n_tensors > c.remaining() / 32) c.fail("tensor count " + std::to_string(n_tensors) + " is impossible for the file size");

  // Counts are only bounded by the file size so far: reserve little and let real entries grow it.
  kvs_.reserve(std::min<uint64_t>(n_kv, 1024));
  std::unordered_set<std::string_view> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    GgufKV kv;
    kv.key = c.string("metadata key");
    if (kv.key.empty()) c.fail("metadata key " + std::to_string(k) + " is empty");
    if (!keys.insert(kv.key).second) c.fail("duplicate metadata key '" + std::string(kv.key) + "'");
    uint32_t t = c.read<uint32_t>("metadata type");
    if (!valid_type(t)) c.fail("metadata '" + std::string(kv.key) + "' has unknown type " + std::to_string(t));
    kv.value.type = GgufType(t);
    if (kv.value.type == GgufType::ARRAY) {
      uint32_t et = c.read<uint32_t>("array element type");
      if (!valid_type(et)) c.fail("array '" + std::string(kv.key) + "' has unknown element type " + std::to_string(et));
      if (GgufType(et) == GgufType::ARRAY) c.fail("array '" + std::string(kv.key) + "' nests arrays, which GGUF models never do");
      kv.value.elem_type = GgufType(et);
      uint64_t count = c.read<uint64_t>("array length");
      kv.value.count = count;
      if (kv.value.elem_type == GgufType::STRING) {
        if (count > c.remaining() / 8)
          c.fail("string array '" + std::string(kv.key) + "' claims " + std::to_string(count) + " entries, more than the file holds");
        kv.value.strings.reserve(std::min<uint64_t>(count, 1 << 20));
        for (uint64_t j = 0; j < count; ++j) kv.value.strings.push_back(c.string("array string"));
      } else {
        size_t es = scalar_size(kv.value.elem_type);
        if (count > c.remaining() / es)
          c.fail("array '" + std::string(kv.key) + "' claims " + std::to_string(count) + " entries, more than the file holds");
        kv.value.array_data = c.take(count * es, "array data");
        if (kv.value.elem_type == GgufType::BOOL)
          for (uint64_t j = 0; j < count; ++j)
            if (kv.value.array_data[j] > 1) c.fail("bool array '" + std::string(kv.key) + "' holds a value other than 0 or 1");
      }
    } else {
      read_scalar(c, kv.value.type, kv.value);
    }
    kvs_.push_back(std::move(kv));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::U32) c.fail("general.alignment must be u32, found " + std::string(gguf_type_name(a->type)));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > kMaxAlignment)
      c.fail("general.alignment " + std::to_string(a->u) + " is not a power of two up to 65536");
    alignment_ = a->u;
  }

  tensors_.reserve(std::min<uint64_t>(n_tensors, 4096));
  std::unordered_set<std::string_view> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = c.string("tensor name");
    if (t.name.empty()) c.fail("tensor " + std::to_string(k) + " has an empty name");
    std::string name(t.name);
    if (!names.insert(t.name).second) c.fail("duplicate tensor '" + name + "'");
    uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail("tensor '" + name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t ne = c.read<int64_t>("tensor dimension");
      if (ne <= 0) c.fail("tensor '" + name + "' has dimension " + std::to_string(d) + " = " + std::to_string(ne));
      if (n_elem > std::numeric_limits<int64_t>::max() / ne) c.fail("tensor '" + name + "' element count overflows");
      n_elem *= ne;
      t.ne.push_back(ne);
    }
    uint32_t raw_type = c.read<uint32_t>("tensor type");
    const TypeTraits* tt = type_traits(raw_type);
    if (!tt || tt->type == TensorType::Q8_K)
      c.fail("tensor '" + name + "' has unsupported type " + std::to_string(raw_type));
    t.type = tt->type;
    if (t.ne[0] % tt->block_elems != 0)
      c.fail("tensor '" + name + "' row of " + std::to_string(t.ne[0]) + " is not a multiple of the " +
             std::string(tt->name) + " block size " + std::to_string(tt->block_elems));
    // Bytes: whole blocks; n_elem / block_elems * block_bytes cannot overflow because the data must
    // also fit in the file, which we check right after reading the offset.
    uint64_t blocks = uint64_t(n_elem / tt->block_elems);
    if (blocks > std::numeric_limits<uint64_t>::max() / tt->block_bytes) c.fail("tensor '" + name + "' byte size overflows");
    t.nbytes = blocks * tt->block_bytes;
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0)
      c.fail("tensor '" + name + "' offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_));
    tensors_.push_back(std::move(t));
  }

  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  uint64_t data_size = size_ >= data_offset_ ? size_ - data_offset_ : 0;
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw GgufError(label_ + ": tensor '" + std::string(t.name) + "' data [" + std::to_string(t.offset) + ", +" +
                      std::to_string(t.nbytes) + ") runs past the end of the file (data section is " +
                      std::to_string(data_size) + " bytes)");
    t.data = data_ + data_offset_ + t.offset;
  }
  // Overlapping tensors would alias weights; a valid writer never produces them.
  std::vector<const GgufTensor*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k - 1]->offset + by_offset[k - 1]->nbytes > by_offset[k]->offset)
      throw GgufError(label_ + ": tensors '" + std::string(by_offset[k - 1]->name) + "' and '" +
                      std::string(by_offset[k]->name) + "' overlap");
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return v->as_int(key);
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return v->as_float(key);
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return v->as_bool(key);
}

std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING)
    throw GgufError(label_ + ": metadata " + std::string(key) + " should be a string, found " + std::string(gguf_type_name(v->type)));
  return v->str;
}

int64_t GgufFile::require_int(std::string_view key) const {
  auto v = get_int(key);
  if (!v) throw GgufError(label_ + ": missing metadata " + std::string(key));
  return *v;
}

double GgufFile::require_float(std::string_view key) const {
  auto v = get_float(key);
  if (!v) throw GgufError(label_ + ": missing metadata " + std::string(key));
  return *v;
}

std::string_view GgufFile::require_string(std::string_view key) const {
  auto v = get_string(key);
  if (!v) throw GgufError(label_ + ": missing metadata " + std::string(key));
  return *v;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array() || is_float(v->elem_type) || v->elem_type == GgufType::STRING)
    throw GgufError(label_ + ": metadata " + std::string(key) + " should be an integer array");
  std::vector<int64_t> out(v->count);
  for (uint64_t k = 0; k < v->count; ++k) {
    double x = v->array_number(k);
    if (std::fabs(x) > 9.0e18) throw GgufError(label_ + ": metadata " + std::string(key) + " holds an out-of-range value");
    out[k] = int64_t(x);
  }
  return out;
}

std::optional<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array() || v->elem_type == GgufType::STRING)
    throw GgufError(label_ + ": metadata " + std::string(key) + " should be a numeric array");
  std::vector<float> out(v->count);
  for (uint64_t k = 0; k < v->count; ++k) out[k] = float(v->array_number(k));
  return out;
}

const std::vector<std::string_view>* GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (!v->is_array() || v->elem_type != GgufType::STRING)
    throw GgufError(label_ + ": metadata " + std::string(key) + " should be a string array");
  return &v->strings;
}

std::optional<std::vector<double>> GgufFile::get_per_layer(std::string_view key, size_t n_layer) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) return std::vector<double>(n_layer, v->as_float(key));
  if (v->elem_type == GgufType::STRING) throw GgufError(label_ + ": metadata " + std::string(key) + " should be numeric");
  if (v->count != n_layer)
    throw GgufError(label_ + ": metadata " + std::string(key) + " has " + std::to_string(v->count) +
                    " entries, expected one per layer (" + std::to_string(n_layer) + ")");
  std::vector<double> out(n_layer);
  for (size_t k = 0; k < n_layer; ++k) out[k] = v->array_number(k);
  return out;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

// ---- GgufWriter -------------------------------------------------------------------------------

namespace {
template <typename T>
void append(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void append_string(std::string& s, std::string_view v) {
  append<uint64_t>(s, v.size());
  s.append(v);
}
}  // namespace

void GgufWriter::put(std::string key, GgufType type, std::string bytes) {
  for (auto& e : entries_)
    if (e.key == key) {
      e.type = type;
      e.bytes = std::move(bytes);
      return;
    }
  entries_.push_back({std::move(key), type, std::move(bytes)});
}

void GgufWriter::set_u8(std::string key, uint8_t v) { std::string b; append(b, v); put(std::move(key), GgufType::U8, b); }
void GgufWriter::set_u32(std::string key, uint32_t v) { std::string b; append(b, v); put(std::move(key), GgufType::U32, b); }
void GgufWriter::set_i32(std::string key, int32_t v) { std::string b; append(b, v); put(std::move(key), GgufType::I32, b); }
void GgufWriter::set_u64(std::string key, uint64_t v) { std::string b; append(b, v); put(std::move(key), GgufType::U64, b); }
void GgufWriter::set_f32(std::string key, float v) { std::string b; append(b, v); put(std::move(key), GgufType::F32, b); }
void GgufWriter::set_bool(std::string key, bool v) { std::string b; append<uint8_t>(b, v); put(std::move(key), GgufType::BOOL, b); }
void GgufWriter::set_string(std::string key, std::string v) {
  std::string b;
  append_string(b, v);
  put(std::move(key), GgufType::STRING, b);
}

template <typename T>
static std::string array_bytes(GgufType et, const std::vector<T>& v) {
  std::string b;
  append<uint32_t>(b, uint32_t(et));
  append<uint64_t>(b, v.size());
  for (const auto& x : v) append(b, x);
  return b;
}

void GgufWriter::set_array_i32(std::string key, const std::vector<int32_t>& v) { put(std::move(key), GgufType::ARRAY, array_bytes(GgufType::I32, v)); }
void GgufWriter::set_array_u32(std::string key, const std::vector<uint32_t>& v) { put(std::move(key), GgufType::ARRAY, array_bytes(GgufType::U32, v)); }
void GgufWriter::set_array_f32(std::string key, const std::vector<float>& v) { put(std::move(key), GgufType::ARRAY, array_bytes(GgufType::F32, v)); }
void GgufWriter::set_array_bool(std::string key, const std::vector<bool>& v) {
  std::vector<uint8_t> bytes(v.begin(), v.end());
  put(std::move(key), GgufType::ARRAY, array_bytes(GgufType::BOOL, bytes));
}
void GgufWriter::set_array_string(std::string key, const std::vector<std::string_view>& v) {
  std::string b;
  append<uint32_t>(b, uint32_t(GgufType::STRING));
  append<uint64_t>(b, v.size());
  for (auto s : v) append_string(b, s);
  put(std::move(key), GgufType::ARRAY, b);
}
void GgufWriter::set_array_string(std::string key, const std::vector<std::string>& v) {
  set_array_string(std::move(key), std::vector<std::string_view>(v.begin(), v.end()));
}

void GgufWriter::copy_value(std::string key, const GgufValue& v) {
  std::string b;
  if (v.is_array()) {
    if (v.elem_type == GgufType::STRING) return set_array_string(std::move(key), v.strings);
    append<uint32_t>(b, uint32_t(v.elem_type));
    append<uint64_t>(b, v.count);
    b.append(reinterpret_cast<const char*>(v.array_data), v.count * scalar_size(v.elem_type));
    return put(std::move(key), GgufType::ARRAY, b);
  }
  switch (v.type) {
    case GgufType::U8: append<uint8_t>(b, uint8_t(v.u)); break;
    case GgufType::I8: append<int8_t>(b, int8_t(v.i)); break;
    case GgufType::U16: append<uint16_t>(b, uint16_t(v.u)); break;
    case GgufType::I16: append<int16_t>(b, int16_t(v.i)); break;
    case GgufType::U32: append<uint32_t>(b, uint32_t(v.u)); break;
    case GgufType::I32: append<int32_t>(b, int32_t(v.i)); break;
    case GgufType::U64: append<uint64_t>(b, v.u); break;
    case GgufType::I64: append<int64_t>(b, v.i); break;
    case GgufType::F32: append<float>(b, float(v.f)); break;
    case GgufType::F64: append<double>(b, v.f); break;
    case GgufType::BOOL: append<uint8_t>(b, v.b); break;
    case GgufType::STRING: append_string(b, v.str); break;
    default: throw GgufError("cannot copy metadata " + key);
  }
  put(std::move(key), v.type, b);
}

void GgufWriter::set_alignment(uint32_t a) {
  if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment) throw GgufError("alignment must be a power of two up to 65536");
  alignment_ = a;
  set_u32("general.alignment", a);
}

void GgufWriter::add_tensor(std::string name, TensorType type, std::vector<int64_t> ne, Fill fill) {
  if (ne.empty() || ne.size() > kMaxDims) throw GgufError("tensor " + name + ": 1 to 4 dimensions allowed");
  if (!row_ok(type, ne[0]))
    throw GgufError("tensor " + name + ": row of " + std::to_string(ne[0]) + " does not fit " + std::string(type_traits(type).name) + " blocks");
  for (const auto& t : tensors_)
    if (t.name == name) throw GgufError("tensor " + name + " added twice");
  uint64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= uint64_t(ne[d]);
  uint64_t nbytes = rows * row_bytes(type, ne[0]);
  tensors_.push_back({std::move(name), type, std::move(ne), std::move(fill), nbytes});
}

void GgufWriter::write(const std::string& path) const {
  std::string head;
  append<uint32_t>(head, kMagic);
  append<uint32_t>(head, 3);
  append<uint64_t>(head, tensors_.size());
  append<uint64_t>(head, entries_.size());
  for (const auto& e : entries_) {
    append_string(head, e.key);
    append<uint32_t>(head, uint32_t(e.type));
    head += e.bytes;
  }
  uint64_t offset = 0;
  auto align = [this](uint64_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  for (const auto& t : tensors_) {
    append_string(head, t.name);
    append<uint32_t>(head, uint32_t(t.ne.size()));
    for (int64_t d : t.ne) append<int64_t>(head, d);
    append<uint32_t>(head, uint32_t(t.type));
    append<uint64_t>(head, offset);
    offset = align(offset + t.nbytes);
  }
  head.resize(align(head.size()), '\0');

  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw GgufError(path + ": cannot create: " + std::strerror(errno));
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  std::vector<uint8_t> buf;
  try {
    for (const auto& t : tensors_) {
      if (!ok) break;
      buf.assign(align(t.nbytes), 0);
      t.fill(buf.data(), t.nbytes);
      ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
    }
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  ok = (std::fflush(f) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw GgufError(path + ": write failed: " + std::strerror(err));
  }
}

}  // namespace flashfix
