#include <gtest/gtest.h>

#include <filesystem>

#include "support/decision_log_contract.h"
#include "verdict/common/ids.h"

namespace verdict::coordinator {
namespace {

LogBackend LevelDbBackend() {
  return {"LevelDb",
          [] {
            return (std::filesystem::temp_directory_path() / ("verdict-log-test-" + NewRandomId()))
                .string();
          },
          [](const std::string& dir) { return OpenLevelDbDecisionLog(dir); },
          [](const std::string& dir) { std::filesystem::remove_all(dir); }};
}

INSTANTIATE_TEST_SUITE_P(Backends, DecisionLogContractTest, ::testing::Values(LevelDbBackend()),
                         BackendName);

TEST(LevelDbDecisionLogTest, OpenFailsOnUnusableDirectoryOrSecondOpener) {
  EXPECT_FALSE(OpenLevelDbDecisionLog("/proc/verdict-cannot-be-here").ok());
  std::string dir =
      (std::filesystem::temp_directory_path() / ("verdict-log-test-" + NewRandomId())).string();
  auto first = OpenLevelDbDecisionLog(dir);
  ASSERT_TRUE(first.ok());
  // A second opener of a live log is refused (LevelDB's lock file).
  EXPECT_FALSE(OpenLevelDbDecisionLog(dir).ok());
  first = Status::Internal("closed");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace verdict::coordinator
