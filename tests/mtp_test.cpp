// The MTP (nextn) heads of the step35 golden models: drafting through the backend and the draft
// source, catch-up, rollback, an independent dense reference of the heads' math, and lossless
// greedy decoding with MTP drafts in the engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/draft.h"
#include "engine/engine.h"
#include "golden.h"
#include "greedy_request.h"

using namespace flashfix;
using namespace flashfix::test;

namespace {

// A store and block table for n positions, every block held (as the engine holds a decoding
// sequence's Full blocks; its Sliding blocks are simply all kept here).
struct Slab {
  std::unique_ptr<KvStore> store;
  BlockTable table;
  Slab(Backend& be, int64_t n) {
    const auto blocks = int32_t((n + kKvBlockTokens - 1) / kKvBlockTokens);
    store = be.new_kv_store(blocks, blocks);
    for (int32_t b = 0; b < blocks; ++b) table.full.push_back(b), table.sliding.push_back(b);
  }
  // The trunk over tokens placed at pos0 onward: their K/V and hidden states, no logits.
  void trunk(Backend& be, std::span<const int32_t> tokens, int64_t pos0) {
    const BatchRun r{&table, pos0, tokens, int64_t(tokens.size()), nullptr};
    be.forward(*store, std::span<const BatchRun>(&r, 1));
  }
  // Drafts of n_heads heads for context `tokens` (the last one not in the trunk yet), recomputing
  // from position `from`; returns each head's logits at its last row.
  std::vector<float> heads(Backend& be, std::span<const int32_t> tokens, int64_t from, int n_heads, std::vector<int32_t>& drafts) {
    std::vector<float> logits(size_t(n_heads) * size_t(be.model().config().n_vocab));
    drafts.assign(size_t(n_heads), -1);
    const MtpRun r{&table, tokens, from, n_heads, drafts.data(), logits.data()};
    be.mtp_draft(*store, std::span<const MtpRun>(&r, 1));
    return logits;
  }
};

// The golden prompt followed by its greedy continuation: 88 tokens, several sliding windows long.
std::vector<int32_t> context_of(const Golden& g) {
  std::vector<int32_t> t = g.tokens;
  t.insert(t.end(), g.greedy.begin(), g.greedy.end());
  return t;
}

std::vector<int32_t> propose(DraftSource& src, Slab& slab, std::span<const int32_t> tokens, int max_k) {
  std::vector<int32_t> out;
  const DraftContext ctx{tokens, int64_t(tokens.size()) - 1, &slab.table, slab.store.get()};
  src.propose(ctx, max_k, out);
  return out;
}

TEST(Mtp, ModelWithoutHeadsSaysSo) {
  const std::string path = golden_dir() + "/tiny-qwen3moe-s11.gguf";
  auto model = Model::load(path);
  auto be = make_cpu_backend(*model, 1);
  EXPECT_EQ(be->mtp_heads(), 0);
  std::string why;
  EXPECT_FALSE(mtp_supported(*be, &why));
  EXPECT_EQ(why, "the model has no MTP (nextn) heads");
  EXPECT_THROW(make_mtp_draft(DraftSetup{*be, *be->new_kv_store(1, 1), 16}), std::invalid_argument);
  Slab slab(*be, 16);
  std::vector<int32_t> drafts;
  const std::vector<int32_t> tokens = {1, 2, 3};
  EXPECT_THROW(slab.heads(*be, tokens, 1, 1, drafts), std::invalid_argument);

  EngineOptions opts;
  opts.threads = 1;
  opts.n_ctx = 64;
  opts.draft = DraftMode::Mtp;
  try {
    Engine::open(path, opts);
    ADD_FAILURE() << "--draft mtp opened a model without MTP heads";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no MTP"), std::string::npos) << e.what();
  }
  opts.draft = DraftMode::Auto;  // auto drafts with what the model has
  EXPECT_NO_THROW(Engine::open(path, opts));
}

TEST(Mtp, RejectsMalformedRuns) {
  auto model = Model::load(golden_dir() + "/tiny-step35-s11.gguf");
  auto be = make_cpu_backend(*model, 1);
  EXPECT_EQ(be->mtp_heads(), 3);
  Slab slab(*be, 32);
  const std::vector<int32_t> tokens = {5, 6, 7, 8};
  slab.trunk(*be, std::span<const int32_t>(tokens).first(3), 0);
  std::vector<int32_t> drafts;
  EXPECT_THROW(slab.heads(*be, tokens, 1, 4, drafts), std::invalid_argument);  // more heads than the model has
  EXPECT_THROW(slab.heads(*be, tokens, 0, 1, drafts), std::invalid_argument);  // no head-1 row at position 0
  EXPECT_THROW(slab.heads(*be, tokens, 4, 1, drafts), std::invalid_argument);  // past the newest token
  const std::vector<int32_t> bad = {5, 6, 99999};
  EXPECT_THROW(slab.heads(*be, bad, 1, 1, drafts), std::out_of_range);
  Slab small(*be, 16);  // the third head's row at position 16 has no block
  const std::vector<int32_t> long_tokens(15, 3);
  small.trunk(*be, std::span<const int32_t>(long_tokens).first(14), 0);
  EXPECT_THROW(small.heads(*be, long_tokens, 1, 3, drafts), std::logic_error);
  EXPECT_NO_THROW(small.heads(*be, long_tokens, 1, 2, drafts));
}

class MtpGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(MtpGolden, DraftsAreDeterministic) {
  Golden g = load_golden(GetParam());
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  const std::vector<int32_t> ctx = context_of(g);
  std::vector<int32_t> d1, d2;
  std::vector<float> l1, l2;
  for (auto* out : {&d1, &d2}) {
    Slab slab(*be, int64_t(ctx.size()) + 4);
    slab.trunk(*be, std::span<const int32_t>(ctx).first(ctx.size() - 1), 0);
    (out == &d1 ? l1 : l2) = slab.heads(*be, ctx, 1, 3, *out);
  }
  ASSERT_EQ(d1.size(), 3u);
  for (int32_t t : d1) EXPECT_TRUE(t >= 0 && t < g.n_vocab);
  EXPECT_EQ(d1, d2);
  EXPECT_EQ(0, std::memcmp(l1.data(), l2.data(), l1.size() * sizeof(float)));
  // Each draft is its head's argmax, and the heads differ (each chains on the previous one).
  for (int k = 0; k < 3; ++k) EXPECT_EQ(d1[size_t(k)], int32_t(argmax(&l1[size_t(k) * size_t(g.n_vocab)], g.n_vocab)));
  EXPECT_GT(rel_l2(&l1[0], &l1[size_t(g.n_vocab)], g.n_vocab), 1e-2);
}

// Catch-up: the heads' rows computed in one batch from the start equal those computed a few
// positions at a time as the sequence grows (the incremental rows are then read back by attention).
TEST_P(MtpGolden, CatchUpBatchEqualsPositionByPosition) {
  Golden g = load_golden(GetParam());
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  const std::vector<int32_t> ctx = context_of(g);
  const auto n = int64_t(ctx.size());
  Slab inc(*be, n + 4), batch(*be, n + 4);
  inc.trunk(*be, ctx, 0);
  batch.trunk(*be, ctx, 0);
  const int64_t V = g.n_vocab;
  int checked = 0;
  for (int64_t c = 1; c < n; ++c) {
    const std::span<const int32_t> tokens(ctx.data(), size_t(c + 1));
    std::vector<int32_t> di, db;
    // Every head's rows up to c are current after the previous call, so head 3 restarts at c - 2.
    const auto li = inc.heads(*be, tokens, std::max<int64_t>(1, c - 2), 3, di);
    if (c % 5 != 0 && c != n - 1) continue;  // one batch from the start costs O(c): check a subset
    const auto lb = batch.heads(*be, tokens, 1, 3, db);
    EXPECT_EQ(di, db) << "at " << c;
    for (int k = 0; k < 3; ++k)
      EXPECT_LE(rel_l2(&li[size_t(k * V)], &lb[size_t(k * V)], V), 1e-5) << "head " << k + 1 << " at " << c;
    ++checked;
  }
  EXPECT_GE(checked, 17);
}

// Several sequences' runs in one call (rows of all of them batched per head) give what each gives alone.
TEST_P(MtpGolden, SeveralRunsInOneCallEqualSeparateCalls) {
  Golden g = load_golden(GetParam());
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  const std::vector<int32_t> ctx = context_of(g);
  const std::vector<int32_t> a(ctx.begin(), ctx.begin() + 30), b(ctx.begin() + 10, ctx.end());
  const int64_t V = g.n_vocab;
  // Both sequences in one store: b's table takes the blocks after a's.
  Slab both(*be, 128);
  BlockTable ta, tb;
  for (size_t i = 0; i < 3; ++i) ta.full.push_back(both.table.full[i]), ta.sliding.push_back(both.table.sliding[i]);
  for (size_t i = 3; i < 8; ++i) tb.full.push_back(both.table.full[i]), tb.sliding.push_back(both.table.sliding[i]);
  const BatchRun trunk[] = {{&ta, 0, std::span<const int32_t>(a).first(a.size() - 1), int64_t(a.size()) - 1, nullptr},
                            {&tb, 0, std::span<const int32_t>(b).first(b.size() - 1), int64_t(b.size()) - 1, nullptr}};
  be->forward(*both.store, trunk);
  std::vector<int32_t> da(3), db(2);
  std::vector<float> la(size_t(3 * V)), lb(size_t(2 * V));
  const MtpRun runs[] = {{&ta, a, 1, 3, da.data(), la.data()}, {&tb, b, 1, 2, db.data(), lb.data()}};
  be->mtp_draft(*both.store, runs);
  for (int which = 0; which < 2; ++which) {
    const std::vector<int32_t>& t = which ? b : a;
    Slab alone(*be, 128);
    alone.trunk(*be, std::span<const int32_t>(t).first(t.size() - 1), 0);
    std::vector<int32_t> d;
    const auto l = alone.heads(*be, t, 1, which ? 2 : 3, d);
    EXPECT_EQ(d, which ? db : da);
    const std::vector<float>& lt = which ? lb : la;
    for (size_t k = 0; k < d.size(); ++k)
      EXPECT_LE(rel_l2(&lt[k * size_t(V)], &l[k * size_t(V)], V), 1e-5) << "sequence " << which << " head " << k + 1;
  }
}

// Drafts after rejections, and after stretches the source was not asked, equal those of a fresh
// sequence over the same accepted tokens: rejected rows leave no trace.
TEST_P(MtpGolden, RollbackLeavesNoTrace) {
  Golden g = load_golden(GetParam());
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  const int64_t kMaxCtx = int64_t(g.tokens.size()) + 80;
  Slab live(*be, kMaxCtx);
  auto src = make_mtp_draft(DraftSetup{*be, *live.store, kMaxCtx});
  EXPECT_EQ(src->name(), "mtp");
  std::vector<int32_t> tokens = g.tokens;
  live.trunk(*be, tokens, 0);
  tokens.push_back(g.greedy[0]);
  // Per step: -1 = the source is not asked (one token is fed without drafts), else the number of
  // its drafts accepted before a token that differs from the next draft.
  const int schedule[] = {0, 2, -1, -1, 1, 3, 0, -1, 0, 2, 1, -1, -1, -1, 0, 3};
  for (int accept : schedule) {
    if (accept < 0) {
      live.trunk(*be, std::span<const int32_t>(&tokens.back(), 1), int64_t(tokens.size()) - 1);
      tokens.push_back(int32_t((tokens.back() * 31 + 7) % 4000));
      continue;
    }
    std::vector<int32_t> drafts = propose(*src, live, tokens, 3);
    ASSERT_EQ(drafts.size(), 3u);
    Slab fresh(*be, kMaxCtx);
    fresh.trunk(*be, std::span<const int32_t>(tokens).first(tokens.size() - 1), 0);
    auto fresh_src = make_mtp_draft(DraftSetup{*be, *fresh.store, kMaxCtx});
    EXPECT_EQ(drafts, propose(*fresh_src, fresh, tokens, 3)) << "at " << tokens.size() - 1;
    // The verify pass writes the trunk's rows of the last token and every draft.
    std::vector<int32_t> run = {tokens.back()};
    run.insert(run.end(), drafts.begin(), drafts.end());
    live.trunk(*be, run, int64_t(tokens.size()) - 1);
    tokens.insert(tokens.end(), drafts.begin(), drafts.begin() + accept);
    tokens.push_back(accept < 3 ? (drafts[size_t(accept)] + 1) % 4000 : int32_t((tokens.back() * 17 + 3) % 4000));
    src->accepted(accept);
  }
}

EngineOptions engine_options(DraftMode mode) {
  EngineOptions opts;
  opts.threads = 2;
  opts.n_ctx = 512;
  opts.draft = mode;
  opts.draft_max = 3;
  opts.draft_always = true;  // MTP drafts every step even though random heads are never right
  return opts;
}

// Greedy decoding with MTP drafts at every step is token for token plain greedy decoding.
TEST_P(MtpGolden, GreedyWithMtpDraftsIsLossless) {
  Golden g = load_golden(GetParam());
  auto plain = Engine::open(g.model_path, engine_options(DraftMode::None));
  auto spec = Engine::open(g.model_path, engine_options(DraftMode::Mtp));
  for (int64_t n : {int64_t(g.greedy.size()), int64_t(160)}) {
    const Result want = plain->generate(greedy_request(g.tokens, n));
    const Result got = spec->generate(greedy_request(g.tokens, n));
    EXPECT_EQ(got.tokens, want.tokens) << n << " tokens";
    if (!g.quantized() && n == int64_t(g.greedy.size())) {
      EXPECT_EQ(want.tokens, g.greedy);
    }
    ASSERT_EQ(got.drafts.size(), 1u);
    const DraftStats& d = got.drafts[0];
    EXPECT_EQ(d.source, "mtp");
    EXPECT_GE(d.passes, n / 2) << "MTP drafted too rarely for the comparison to mean much";
    std::printf("%s, %lld tokens: MTP drafted %lld in %lld passes, %lld accepted (random weights: expect ~0)\n",
                g.name.c_str(), (long long)n, (long long)d.drafted, (long long)d.passes, (long long)d.accepted);
  }
}

// Sequences decoding together with a shared prompt prefix (whose blocks they share through the
// prefix cache, MTP rows included) each give their plain greedy tokens.
TEST_P(MtpGolden, ConcurrentSequencesWithASharedPrefixStayLossless) {
  Golden g = load_golden(GetParam());
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < 3; ++i) prompts.emplace_back(g.tokens.begin(), g.tokens.end() - int64_t(5 * i));
  auto plain = Engine::open(g.model_path, engine_options(DraftMode::None));
  std::vector<std::vector<int32_t>> want;
  for (const auto& p : prompts) want.push_back(plain->generate(greedy_request(p, 60)).tokens);
  auto spec = Engine::open(g.model_path, engine_options(DraftMode::Mtp));
  spec->generate(greedy_request(prompts[0], 1));  // publishes the prefix the others then share
  std::vector<Result> got(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) threads.emplace_back([&, i] { got[i] = spec->generate(greedy_request(prompts[i], 60)); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i]) << "sequence " << i;
    EXPECT_GT(got[i].cached_tokens, 0) << "sequence " << i << " shared no prefix";
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, MtpGolden, ::testing::Values("tiny-step35-s11", "tiny-step35-s11-Q6_K"), [](const auto& info) {
  std::string s = info.param;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
});

// ---- An independent dense reference of the heads, in F32 straight from the file's tensors ----

const float* f32(Weight w) {
  if (!w || w->type != TensorType::F32) throw std::runtime_error("the reference needs F32 weights");
  return reinterpret_cast<const float*>(w->data);
}

// y = W x for W of ggml shape {n_in, n_out}.
std::vector<float> matvec(Weight w, const std::vector<float>& x) {
  const int64_t n_in = w->ne[0], n_out = w->dim(1);
  EXPECT_EQ(int64_t(x.size()), n_in) << w->name;
  const float* m = f32(w);
  std::vector<float> y(static_cast<size_t>(n_out));
  for (int64_t o = 0; o < n_out; ++o) {
    double acc = 0;
    for (int64_t i = 0; i < n_in; ++i) acc += double(m[o * n_in + i]) * double(x[size_t(i)]);
    y[size_t(o)] = float(acc);
  }
  return y;
}

std::vector<float> rmsnorm(const float* x, int64_t n, Weight w, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const double inv = 1.0 / std::sqrt(ss / double(n) + double(eps));
  std::vector<float> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = float(double(x[i]) * inv * double(f32(w)[i]));
  return y;
}

// NEOX rotation of the first n_rot dims at position pos (no context scaling on these models).
void rope(float* head, int64_t pos, const RopeConfig& r, const float* factors) {
  const int half = r.n_rot / 2;
  for (int i = 0; i < half; ++i) {
    double theta = double(pos) * std::pow(double(r.freq_base), -2.0 * i / r.n_rot);
    if (factors) theta /= double(factors[i]);
    const double c = std::cos(theta), s = std::sin(theta), a = head[i], b = head[i + half];
    head[i] = float(a * c - b * s);
    head[i + half] = float(a * s + b * c);
  }
}

// Head k (1-based) at positions k..last, in the DeepSeek-V3 formulation: its row j = s - k reads the
// token at s and the previous head's output at j + k - 1, and is rotated at position j. Returns the
// outputs (pre-norm) per s; prev(s) gives the previous head's output at s - 1, token(s) the token.
template <class Prev, class Tok>
std::vector<std::vector<float>> ref_head(const Model& m, int k, int64_t last, Prev prev, Tok token) {
  const ModelConfig& c = m.config();
  const int il = c.n_layer + k - 1;
  const LayerConfig& L = c.layers[size_t(il)];
  const LayerWeights& lw = m.weights().layers[size_t(il)];
  const int64_t E = c.n_embd, H = L.n_head, Hkv = L.n_head_kv, hd = c.head_dim, vd = c.v_head_dim;
  EXPECT_FALSE(L.moe);  // the golden file's MTP blocks have a dense FFN
  EXPECT_EQ(L.rope.ext_factor, 0.f);
  EXPECT_EQ(L.rope.freq_scale, 1.f);
  const float* factors = L.rope.use_freq_factors ? f32(m.weights().rope_freqs) : nullptr;
  const Weight embd = lw.nextn_embed_tokens ? lw.nextn_embed_tokens : m.weights().token_embd;
  std::vector<std::vector<float>> keys(size_t(last + 1)), values(size_t(last + 1)), out(size_t(last + 1));
  for (int64_t s = k; s <= last; ++s) {
    std::vector<float> cat = rmsnorm(f32(embd) + int64_t(token(s)) * E, E, lw.nextn_enorm, c.rms_eps);
    const std::vector<float> h = rmsnorm(prev(s), E, lw.nextn_hnorm, c.rms_eps);
    cat.insert(cat.end(), h.begin(), h.end());
    std::vector<float> x = matvec(lw.nextn_eh_proj, cat);
    const std::vector<float> xn = rmsnorm(x.data(), E, lw.attn_norm, c.rms_eps);
    std::vector<float> q = matvec(lw.attn_q, xn), kk = matvec(lw.attn_k, xn), gate = matvec(lw.attn_gate, xn);
    values[size_t(s)] = matvec(lw.attn_v, xn);
    const int64_t pos = s - k;
    for (int64_t hh = 0; hh < H; ++hh) {
      auto n = rmsnorm(&q[size_t(hh * hd)], hd, lw.attn_q_norm, c.rms_eps);
      std::copy(n.begin(), n.end(), q.begin() + hh * hd);
      rope(&q[size_t(hh * hd)], pos, L.rope, factors);
    }
    for (int64_t hh = 0; hh < Hkv; ++hh) {
      auto n = rmsnorm(&kk[size_t(hh * hd)], hd, lw.attn_k_norm, c.rms_eps);
      std::copy(n.begin(), n.end(), kk.begin() + hh * hd);
      rope(&kk[size_t(hh * hd)], pos, L.rope, factors);
    }
    keys[size_t(s)] = kk;
    std::vector<float> att(size_t(H * vd), 0.f);
    const int64_t first = L.sliding ? std::max<int64_t>(k, s - c.sliding_window + 1) : k;
    for (int64_t hh = 0; hh < H; ++hh) {
      const int64_t kvh = hh / (H / Hkv);
      std::vector<double> w;
      for (int64_t j = first; j <= s; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += double(q[size_t(hh * hd + d)]) * double(keys[size_t(j)][size_t(kvh * hd + d)]);
        w.push_back(dot / std::sqrt(double(hd)));
      }
      const double mx = *std::max_element(w.begin(), w.end());
      double sum = 0;
      for (double& v : w) sum += (v = std::exp(v - mx));
      const double g = 1.0 / (1.0 + std::exp(-double(gate[size_t(hh)])));
      for (int64_t j = first; j <= s; ++j)
        for (int64_t d = 0; d < vd; ++d)
          att[size_t(hh * vd + d)] += float(w[size_t(j - first)] / sum * g * double(values[size_t(j)][size_t(kvh * vd + d)]));
    }
    const std::vector<float> o = matvec(lw.attn_output, att);
    for (int64_t i = 0; i < E; ++i) x[size_t(i)] += o[size_t(i)];
    const std::vector<float> yn = rmsnorm(x.data(), E, lw.ffn_norm, c.rms_eps);
    const std::vector<float> ga = matvec(lw.ffn_gate, yn), up = matvec(lw.ffn_up, yn);
    std::vector<float> act(ga.size());
    for (size_t i = 0; i < ga.size(); ++i) {
      double a = ga[i] / (1.0 + std::exp(-double(ga[i]))), u = up[i];
      if (L.clamp_shexp > 0) a = std::min(a, double(L.clamp_shexp)), u = std::clamp(u, -double(L.clamp_shexp), double(L.clamp_shexp));
      act[i] = float(a * u);
    }
    const std::vector<float> f = matvec(lw.ffn_down, act);
    for (int64_t i = 0; i < E; ++i) x[size_t(i)] += f[size_t(i)];
    out[size_t(s)] = x;
  }
  return out;
}

std::vector<float> ref_logits(const Model& m, const std::vector<float>& h, Weight norm, Weight head) {
  return matvec(head, rmsnorm(h.data(), m.config().n_embd, norm, m.config().rms_eps));
}

TEST(MtpReference, HeadsMatchADenseReference) {
  Golden g = load_golden("tiny-step35-s11");
  auto model = Model::load(g.model_path);
  const ModelConfig& c = model->config();
  const ModelWeights& w = model->weights();
  auto be = make_cpu_backend(*model, 2);
  const int64_t E = c.n_embd, V = c.n_vocab;
  std::vector<int32_t> ctx(g.tokens.begin(), g.tokens.begin() + 40);  // 2.5 sliding windows
  const int64_t last = int64_t(ctx.size()) - 1;
  Slab slab(*be, last + 4);
  slab.trunk(*be, std::span<const int32_t>(ctx).first(size_t(last)), 0);
  std::vector<int32_t> drafts;
  const std::vector<float> logits = slab.heads(*be, ctx, 1, 3, drafts);

  // The trunk's hidden state of each position: the last n_embd floats of each row of a Full block
  // (the CPU store's layout), checked through the public logits_from_hidden.
  std::vector<std::vector<float>> trunk(static_cast<size_t>(last));
  std::vector<uint8_t> block(slab.store->block_bytes(KvKind::Full));
  for (int64_t p = 0; p < last; ++p) {
    slab.store->read_block(KvKind::Full, slab.table.full[size_t(p / kKvBlockTokens)], block);
    const float* rows = reinterpret_cast<const float*>(block.data()) + block.size() / sizeof(float) - size_t(kKvBlockTokens * E);
    trunk[size_t(p)].assign(rows + (p % kKvBlockTokens) * E, rows + (p % kKvBlockTokens + 1) * E);
  }
  std::vector<float> trunk_logits(static_cast<size_t>(V));
  be->logits_from_hidden(*slab.store, slab.table, last - 1, 1, trunk_logits.data());
  ASSERT_LE(rel_l2(ref_logits(*model, trunk[size_t(last - 1)], w.output_norm, w.output).data(), trunk_logits.data(), V), 1e-5)
      << "the hidden state read from the block is not the trunk's";

  // Chain the three heads; positions past the context read the backend's drafts, as it did.
  auto token = [&](int64_t s) { return s <= last ? ctx[size_t(s)] : drafts[size_t(s - last - 1)]; };
  std::vector<std::vector<float>> prev = trunk;
  for (int k = 1; k <= 3; ++k) {
    const LayerWeights& lw = w.layers[size_t(c.n_layer + k - 1)];
    auto out = ref_head(*model, k, last + k - 1, [&](int64_t s) { return prev[size_t(s - 1)].data(); }, token);
    const auto ref = ref_logits(*model, out[size_t(last + k - 1)], lw.nextn_head_norm ? lw.nextn_head_norm : w.output_norm,
                                lw.nextn_head ? lw.nextn_head : w.output);
    EXPECT_LE(rel_l2(&logits[size_t((k - 1) * V)], ref.data(), V), 1e-5) << "head " << k;
    EXPECT_EQ(drafts[size_t(k - 1)], int32_t(argmax(ref.data(), V))) << "head " << k;
    prev = std::move(out);
  }
}

}  // namespace
