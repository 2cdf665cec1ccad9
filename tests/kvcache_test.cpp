// The prefix cache and the scheduler on the golden models: reused prefixes give the logits and tokens
// of a from-scratch run (step35's window of 16 is far shorter than the prefixes), concurrent requests
// give what they give one by one, a tiny KV budget evicts and stays right, and the disk cache is
// reused by a fresh engine and rejected once the model file changes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/backend.h"
#include "engine/engine.h"
#include "engine/huge_page_buffer.h"
#include "engine/model.h"
#include "tests/golden.h"
#include "tests/greedy_request.h"
#include "tests/scratch.h"

namespace flashfix {
namespace {

namespace fs = std::filesystem;
using test::greedy_request;

const char* kModels[] = {"tiny-qwen3moe-s11", "tiny-step35-s11"};

// The golden prompt followed by n deterministic ordinary tokens (a long agent context).
std::vector<int32_t> long_prompt(const test::Golden& g, size_t n, uint32_t seed) {
  std::vector<int32_t> t = g.tokens;
  for (size_t i = 0; i < n; ++i) t.push_back(int32_t((i * 7919 + seed * 104729 + 13) % 4000));
  return t;
}

void expect_close(const LogitsResult& got, const LogitsResult& want, int64_t V) {
  ASSERT_EQ(got.logits.size(), want.logits.size());
  for (int64_t t = 0; t < got.prompt_tokens; ++t)
    ASSERT_LE(test::rel_l2(&got.logits[size_t(t * V)], &want.logits[size_t(t * V)], V), 1e-5) << "position " << t;
}

EngineOptions opts(bool prefix_cache, std::string cache_dir = "", uint64_t budget = 0) {
  EngineOptions o;
  o.threads = 2;
  o.n_ctx = 512;
  o.prefix_cache = prefix_cache;
  o.cache_dir = std::move(cache_dir);
  o.kv_budget_bytes = budget;
  return o;
}

TEST(PrefixCache, LogitsWithAReusedPrefixEqualFromScratch) {
  for (const char* name : kModels) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    auto cached = Engine::open(g.model_path, opts(true));
    auto fresh = Engine::open(g.model_path, opts(false));
    const auto prefix = long_prompt(g, 90, 1);  // 161 tokens: 10 whole blocks and a tail
    cached->prompt_logits(prefix);
    for (size_t extra : {1u, 37u}) {  // a tail copy-on-write, and new blocks past it
      auto prompt = prefix;
      for (size_t i = 0; i < extra; ++i) prompt.push_back(int32_t(100 * extra + i));
      LogitsResult reused = cached->prompt_logits(prompt);
      EXPECT_EQ(reused.cached_tokens, int64_t(prefix.size())) << "extra " << extra;
      EXPECT_EQ(reused.computed_tokens, int64_t(extra));
      LogitsResult scratch = fresh->prompt_logits(prompt);
      EXPECT_EQ(scratch.cached_tokens, 0);
      expect_close(reused, scratch, g.n_vocab);
    }
    // A prompt that diverges inside a block reuses up to the divergence.
    auto diverged = prefix;
    diverged[100] = 7;
    LogitsResult d = cached->prompt_logits(diverged);
    EXPECT_EQ(d.cached_tokens, 100);
    expect_close(d, fresh->prompt_logits(diverged), g.n_vocab);
  }
}

TEST(Scheduler, ConcurrentRequestsGiveTheTokensOfOneByOne) {
  for (const char* name : kModels) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    std::vector<Request> reqs;
    for (uint32_t i = 0; i < 5; ++i) reqs.push_back(greedy_request(long_prompt(g, 20 + 60 * i, i), 10));
    reqs.push_back(greedy_request(reqs[0].prompt, 14));  // shares a whole prompt with a request in flight
    std::vector<std::vector<int32_t>> alone;
    {
      auto e = Engine::open(g.model_path, opts(false));
      for (const auto& r : reqs) alone.push_back(e->generate(r).tokens);
    }
    auto e = Engine::open(g.model_path, opts(true));
    std::vector<Result> together(reqs.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < reqs.size(); ++i) threads.emplace_back([&, i] { together[i] = e->generate(reqs[i]); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(together[i].tokens, alone[i]) << "request " << i;
  }
}

TEST(Scheduler, CancellingOneRequestLeavesTheOthersUntouched) {
  auto g = test::load_golden("tiny-step35-s11");
  Request a = greedy_request(long_prompt(g, 40, 1), 24), b = greedy_request(long_prompt(g, 80, 2), 24);
  std::vector<int32_t> want_b = Engine::open(g.model_path, opts(false))->generate(b).tokens;
  auto e = Engine::open(g.model_path, opts(true));
  std::stop_source stop_a;
  a.stop = stop_a.get_token();
  int seen = 0;
  a.on_token = [&](int32_t) {
    if (++seen == 3) stop_a.request_stop();  // cancelled from inside the batch, mid-generation
    return true;
  };
  Result ra, rb;
  std::thread ta([&] { ra = e->generate(a); }), tb([&] { rb = e->generate(b); });
  ta.join(), tb.join();
  EXPECT_EQ(ra.finish, FinishReason::Cancelled);
  EXPECT_LT(ra.tokens.size(), 24u);
  EXPECT_EQ(rb.finish, FinishReason::Length);
  EXPECT_EQ(rb.tokens, want_b);
}

TEST(PrefixCache, TinyBudgetEvictsAndStaysCorrect) {
  for (const char* name : kModels) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    auto probe = Engine::open(g.model_path, opts(false));
    // Room for 16 blocks of each kind: one 240-token request, never two, and little to keep.
    auto model = Model::load(g.model_path);
    auto backend = make_cpu_backend(*model, 1);
    const uint64_t block = backend->kv_block_bytes(KvKind::Full) + backend->kv_block_bytes(KvKind::Sliding);
    ASSERT_GT(block, 0u);
    auto e = Engine::open(g.model_path, opts(true, "", 16 * block));
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::vector<int32_t>> want;
    for (uint32_t i = 0; i < 4; ++i) {
      prompts.push_back(long_prompt(g, 100 + 20 * i, i));
      want.push_back(probe->generate(greedy_request(prompts.back(), 8)).tokens);
    }
    for (int round = 0; round < 2; ++round)
      for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(e->generate(greedy_request(prompts[i], 8)).tokens, want[i]);
    // Concurrent requests that cannot all fit wait for each other instead of failing.
    std::vector<Result> out(prompts.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i) threads.emplace_back([&, i] { out[i] = e->generate(greedy_request(prompts[i], 8)); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(out[i].tokens, want[i]);
    // A single request larger than the whole budget is refused up front.
    EXPECT_THROW(e->generate(greedy_request(long_prompt(g, 250, 9), 8)), std::length_error);
  }
}

// The CPU store is one buffer of huge pages that become resident as positions are written, so a
// budget beyond the machine's memory would open fine and die in the OOM killer once the cache
// filled: it is refused when the engine opens, naming the cache and the flags that size it.
// The CPU store keeps keys lane-major inside a block, but blocks travel as position rows (the bytes
// the disk cache keeps and another backend reads): after one token at position 0 of a fresh block,
// each array of the block's bytes holds that token in its first row and zeros in the other 15, and
// bytes written are read back the same, and a partial copy carries exactly its positions.
TEST(KvStore, BlocksTravelAsPositionRows) {
  for (const char* name : kModels) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    auto model = Model::load(g.model_path);
    auto be = make_cpu_backend(*model, 1);
    const ModelConfig& c = model->config();
    auto store = be->new_kv_store(3, 3);
    BlockTable table;
    table.full = {0};
    table.sliding = {0};
    const int32_t token = g.tokens[0];
    const BatchRun run{&table, 0, std::span<const int32_t>(&token, 1), 1, nullptr};
    be->forward(*store, std::span<const BatchRun>(&run, 1));

    // The Full block's arrays in their byte order: each layer's K, V, then the hidden state; the trunk
    // leaves the MTP layers' rows empty.
    std::vector<size_t> widths;
    std::vector<bool> written;
    for (const LayerConfig& L : c.layers)
      if (!L.sliding || L.mtp) {
        widths.push_back(size_t(L.n_head_kv * c.head_dim)), widths.push_back(size_t(L.n_head_kv * c.v_head_dim));
        written.push_back(!L.mtp), written.push_back(!L.mtp);
      }
    widths.push_back(size_t(c.n_embd));
    written.push_back(true);
    std::vector<uint8_t> bytes(store->block_bytes(KvKind::Full));
    store->read_block(KvKind::Full, 0, bytes);
    const float* f = reinterpret_cast<const float*>(bytes.data());
    size_t at = 0;
    for (size_t a = 0; a < widths.size(); ++a) {
      const size_t w = widths[a];
      bool first_row_set = false, others_zero = true;
      for (size_t i = 0; i < w; ++i) first_row_set |= f[at + i] != 0.f;
      for (size_t i = w; i < w * kKvBlockTokens; ++i) others_zero &= f[at + i] == 0.f;
      EXPECT_EQ(first_row_set, bool(written[a])) << "array " << a << ": position 0's row";
      EXPECT_TRUE(others_zero) << "array " << a << ": positions 1..15 hold data";
      at += w * kKvBlockTokens;
    }
    ASSERT_EQ(at * sizeof(float), bytes.size());

    std::vector<uint8_t> pattern(bytes.size()), back(bytes.size());
    for (size_t i = 0; i < pattern.size(); i += sizeof(float)) {
      const float v = float(i / sizeof(float)) * 0.5f + 1.f;
      std::memcpy(&pattern[i], &v, sizeof v);
    }
    store->write_block(KvKind::Full, 1, pattern);
    store->read_block(KvKind::Full, 1, back);
    EXPECT_EQ(back, pattern) << "written bytes read back differently";
    store->write_block(KvKind::Full, 2, bytes);
    store->copy_block(KvKind::Full, 1, 2, 5);  // positions 0..4 of block 1 over block 2
    store->read_block(KvKind::Full, 2, back);
    at = 0;
    for (size_t w : widths) {
      for (size_t i = 0; i < w * kKvBlockTokens; ++i) {
        const std::vector<uint8_t>& want = i < 5 * w ? pattern : bytes;
        ASSERT_EQ(0, std::memcmp(&back[(at + i) * sizeof(float)], &want[(at + i) * sizeof(float)], sizeof(float)))
            << "float " << i << " of an array of width " << w << " after copying 5 positions";
      }
      at += w * kKvBlockTokens;
    }
  }
}

TEST(KvBudget, MoreThanTheMachineHoldsIsRefusedAtOpen) {
  auto g = test::load_golden("tiny-qwen3moe-s11");
  const uint64_t too_much = available_memory_bytes() + (uint64_t(1) << 30);
  try {
    Engine::open(g.model_path, opts(true, "", too_much));
    FAIL() << "a " << (too_much >> 20) << " MiB KV budget was accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the KV cache"), std::string::npos) << what;
    EXPECT_NE(what.find("--kv-budget-mb"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(Engine::open(g.model_path, opts(true, "", uint64_t(64) << 20)));  // a budget that fits
}

TEST(DiskCache, ReusedByTheNextEngineAndRejectedAfterTheModelChanges) {
  for (const char* name : kModels) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    const std::string model = test::temp(std::string(name) + ".gguf"), dir = test::temp(std::string(name) + "-cache");
    fs::copy_file(g.model_path, model, fs::copy_options::overwrite_existing);
    const auto prompt = long_prompt(g, 120, 3);
    LogitsResult scratch = Engine::open(model, opts(false))->prompt_logits(prompt);
    {
      auto first = Engine::open(model, opts(true, dir));
      EXPECT_EQ(first->prompt_logits(prompt).cached_tokens, 0);
    }  // closing writes the blocks
    {
      auto second = Engine::open(model, opts(true, dir));
      LogitsResult r = second->prompt_logits(prompt);
      EXPECT_EQ(r.cached_tokens, int64_t(prompt.size() - 1) / 16 * 16);
      expect_close(r, scratch, g.n_vocab);
    }
    // A corrupt block file is reported, ignored and recomputed.
    for (const auto& f : fs::recursive_directory_iterator(dir))
      if (f.path().extension() == ".kvb") {
        fs::resize_file(f.path(), fs::file_size(f.path()) / 2);
        break;
      }
    {
      auto third = Engine::open(model, opts(true, dir));
      LogitsResult r = third->prompt_logits(prompt);
      EXPECT_LT(r.cached_tokens, int64_t(prompt.size() - 1) / 16 * 16);
      expect_close(r, scratch, g.n_vocab);
    }
    // Flip the last byte of the file (a weight): same size, new contents, new key.
    {
      std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(-1, std::ios::end);
      char c = char(f.get());
      f.seekp(-1, std::ios::end);
      f.put(char(c ^ 1));
    }
    fs::last_write_time(model, fs::last_write_time(model) + std::chrono::seconds(1));
    auto changed = Engine::open(model, opts(true, dir));
    EXPECT_EQ(changed->prompt_logits(prompt).cached_tokens, 0);
  }
}

TEST(DiskCache, TheDirectoryStaysWithinItsBound) {
  auto g = test::load_golden("tiny-qwen3moe-s11");
  const std::string dir = test::temp("bounded-cache");
  auto block_file_bytes = [&] {
    uint64_t n = 0;
    for (const auto& f : fs::recursive_directory_iterator(dir))
      if (f.path().extension() == ".kvb") n += f.file_size();
    return n;
  };
  {
    auto e = Engine::open(g.model_path, opts(true, dir));
    e->prompt_logits(long_prompt(g, 57, 1));  // 8 whole blocks
  }
  const uint64_t eight = block_file_bytes();
  ASSERT_GT(eight, 0u);
  EngineOptions o = opts(true, dir);
  o.cache_dir_max_bytes = eight / 2;
  {
    auto e = Engine::open(g.model_path, o);
    for (uint32_t i = 2; i < 5; ++i) e->prompt_logits(long_prompt(g, 57, i));
  }
  EXPECT_LE(block_file_bytes(), o.cache_dir_max_bytes);
}

}  // namespace
}  // namespace flashfix
