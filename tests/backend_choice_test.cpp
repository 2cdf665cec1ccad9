// Choosing a backend by name: the CPU backend always, the CUDA backend only where it was built and a
// device exists; asking for one that cannot run here is an error naming why, never a silent fallback.
#include <gtest/gtest.h>

#include "engine/backend.h"
#include "engine/engine.h"

namespace flashfix {
namespace {

const std::string kModel = std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-qwen3moe-s11.gguf";

TEST(BackendChoice, CpuByName) {
  auto model = Model::load(kModel);
  EXPECT_EQ(make_backend(*model, "cpu", 1)->name(), "cpu");
}

TEST(BackendChoice, UnknownNameIsRejected) {
  auto model = Model::load(kModel);
  EXPECT_THROW(make_backend(*model, "tpu", 1), std::invalid_argument);
}

TEST(BackendChoice, CudaWithoutBuildOrDeviceIsAClearError) {
  auto model = Model::load(kModel);
  try {
    auto be = make_backend(*model, "cuda", 1);
    GTEST_SKIP() << "this machine runs the cuda backend (tests/cuda covers it)";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cuda backend"), std::string::npos) << msg;
    if (!cuda_backend_built()) {
      EXPECT_NE(msg.find("not in this build"), std::string::npos) << msg;
    }
    // The engine reports the same error instead of opening on the CPU.
    EngineOptions o;
    o.n_ctx = 64;
    o.backend = "cuda";
    EXPECT_THROW(Engine::open(kModel, o), std::runtime_error);
  }
}

}  // namespace
}  // namespace flashfix
