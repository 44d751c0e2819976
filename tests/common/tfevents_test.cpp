// TensorBoard event files: CRC-32C against the RFC 3720 vectors, TFRecord framing, and events written by
// TfEventsWriter read back by tests/e2e/tfevents_read.py, a reader written from TensorBoard's upstream
// .proto field numbers that shares nothing with the writer; damaged files must be caught by that reader.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "common/report/crc32c.h"
#include "common/report/logging_dir.h"
#include "common/report/tfevents_writer.h"
#include "common/report/tfrecord.h"

namespace mpibert::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(Crc32c, MatchesKnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC catalogue's check value
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("a"), 0xC1D04330u);
  // RFC 3720 appendix B.4 (iSCSI): 32 zero bytes, 32 0xFF bytes, 0..31 and 31..0.
  std::string zeros(32, '\0'), ones(32, '\xFF'), up, down;
  for (int i = 0; i < 32; ++i) up.push_back(static_cast<char>(i)), down.push_back(static_cast<char>(31 - i));
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);
}

TEST(Crc32c, ContinuesAcrossPiecesAndMasksAsTfRecordDoes) {
  const std::string a = "hello ", b = "tensorboard";
  EXPECT_EQ(crc32c(b.data(), b.size(), crc32c(a)), crc32c(a + b));
  EXPECT_EQ(mask_crc32c(0), 0xA282EAD8u);
  EXPECT_EQ(mask_crc32c(0xE3069283u), 0xC78AB0E5u);  // rotate right 15, add 0xa282ead8 (mod 2^32)
}

uint64_t le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

TEST(TfRecord, FramesLengthLengthCrcDataAndDataCrcLittleEndian) {
  const std::string data = "event bytes";
  const std::string framed = frame_tfrecord(data);
  ASSERT_EQ(framed.size(), 8 + 4 + data.size() + 4);
  EXPECT_EQ(le(framed, 0, 8), data.size());
  EXPECT_EQ(le(framed, 8, 4), mask_crc32c(crc32c(framed.substr(0, 8))));
  EXPECT_EQ(framed.substr(12, data.size()), data);
  EXPECT_EQ(le(framed, 12 + data.size(), 4), mask_crc32c(crc32c(data)));
  EXPECT_EQ(frame_tfrecord("").size(), 16u);
}

TEST(LoggingDir, NamesTheRunAsHuggingFaceDoes) {
  std::tm t{};
  t.tm_year = 2023 - 1900, t.tm_mon = 11, t.tm_mday = 1, t.tm_hour = 12, t.tm_min = 0, t.tm_sec = 5;
  EXPECT_EQ(logging_dir_name(t, "node1"), "Dec01_12-00-05_node1");
  t.tm_mon = 0, t.tm_mday = 31, t.tm_hour = 23, t.tm_min = 59, t.tm_sec = 59;
  EXPECT_EQ(logging_dir_name(t, "h"), "Jan31_23-59-59_h");
  const std::string dir = default_logging_dir("out");
  EXPECT_TRUE(std::regex_match(dir, std::regex("out/runs/[A-Z][a-z]{2}\\d\\d_\\d\\d-\\d\\d-\\d\\d_.+"))) << dir;
  EXPECT_EQ(dir.substr(dir.size() - host_name().size() - 1), "_" + host_name());
}

TEST(EventFileName, IsTorchsPattern) {
  EXPECT_EQ(event_file_name(1700000000.9, "node1", 4242, 0), "events.out.tfevents.1700000000.node1.4242.0");
  EXPECT_EQ(event_file_name(123.0, "h", 1, 7), "events.out.tfevents.0000000123.h.1.7");
}

struct Result {
  int code;
  std::string out, err;
};

class TfEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "mpibert_tfevents_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs the independent reader on `args`; its stdout is one JSON object when it succeeds.
  Result read_back(const std::string& args) const {
    const std::string err_path = (dir_ / "reader.err").string();
    const std::string cmd =
        "/usr/bin/python3 " MPIBERT_SOURCE_DIR "/tests/e2e/tfevents_read.py " + args + " 2>" + err_path;
    Result r;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return {-1, "", "popen failed"};
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
    const int status = pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_path);
    std::getline(err, r.err, '\0');
    return r;
  }
  json read_json(const std::string& args) const {
    Result r = read_back(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? json::parse(r.out) : json::object();
  }

  fs::path logs() const { return dir_ / "runs" / "Dec01_12-00-00_test"; }
  std::string write_sample() const {
    TfEventsWriter w(logs().string());
    w.add_text("args", "{\"learning_rate\": 0.0001}\nnon-ASCII: \xC3\xBC", 0, 1700000000.5);
    w.add_scalar("train/loss", 7.25, 10, 1700000001.25);
    w.add_scalar("train/learning_rate", 1e-4, 10, 1700000001.25);
    w.add_scalar("train/grad_norm", 0.0, 20, 1700000002.0);
    w.add_scalar("eval/loss", -3.5, (int64_t{1} << 40), 1700000003.0);
    w.add_session_start(21, 1700000004.0);
    w.close();
    return w.path();
  }

  fs::path dir_;
};

TEST_F(TfEventsTest, IndependentReaderReadsBackEveryEventWithValidCrcs) {
  const std::string path = write_sample();
  EXPECT_EQ(fs::path(path).parent_path(), logs());
  const std::string name = fs::path(path).filename().string();
  EXPECT_TRUE(std::regex_match(name, std::regex("events\\.out\\.tfevents\\.\\d{10}\\." + host_name() + "\\." +
                                                std::to_string(getpid()) + "\\.\\d+")))
      << name;

  json j = read_json(logs().string());
  ASSERT_EQ(j["files"].size(), 1u);
  EXPECT_EQ(j["files"][0]["records"], 7);  // file_version + 6 events
  EXPECT_EQ(j["files"][0]["file_version"], "brain.Event:2");
  const json scalars = j["scalars"];
  ASSERT_EQ(scalars.size(), 4u);
  const json expected = json::array({json::array({1700000001.25, 10, "train/loss", 7.25}),
                                     json::array({1700000001.25, 10, "train/learning_rate", double(1e-4f)}),
                                     json::array({1700000002.0, 20, "train/grad_norm", 0.0}),
                                     json::array({1700000003.0, int64_t{1} << 40, "eval/loss", -3.5})});
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(scalars[i][0].get<double>(), expected[i][0].get<double>()) << i;
    EXPECT_EQ(scalars[i][1].get<int64_t>(), expected[i][1].get<int64_t>()) << i;
    EXPECT_EQ(scalars[i][2], expected[i][2]) << i;
    EXPECT_EQ(scalars[i][3].get<double>(), expected[i][3].get<double>()) << i;  // exact float32 values
  }
  ASSERT_EQ(j["texts"].size(), 1u);
  EXPECT_EQ(j["texts"][0], json::array({1700000000.5, 0, "args/text_summary",
                                        "{\"learning_rate\": 0.0001}\nnon-ASCII: \xC3\xBC", "text"}));
  EXPECT_EQ(j["session_logs"], json::array({json::array({1700000004.0, 21, "START"})}));
}

TEST_F(TfEventsTest, FlushedEventsAreReadableWhileTheWriterIsOpen) {
  TfEventsWriter w(dir_.string());
  EXPECT_EQ(read_json(dir_.string())["files"][0]["records"], 1);  // the constructor flushes file_version
  w.add_scalar("train/loss", 1.5, 1, 1.0);
  w.flush();
  json j = read_json(w.path());
  ASSERT_EQ(j["scalars"].size(), 1u);
  EXPECT_EQ(j["scalars"][0][3].get<double>(), 1.5);
}

TEST_F(TfEventsTest, SessionStartPurgesLaterStepsOfOlderFilesAsTensorBoardDoes) {
  {
    TfEventsWriter first(logs().string());  // an interrupted run: logged 10, 20, 30; checkpoint at 20
    for (int step : {10, 20, 30}) first.add_scalar("train/loss", step, step, step);
  }
  TfEventsWriter resumed(logs().string());  // resumed from checkpoint-20: the old 30 must go
  resumed.add_session_start(21, 100);
  resumed.add_scalar("train/loss", 31, 30, 101);
  resumed.close();
  json j = read_json("--purge " + logs().string());
  ASSERT_EQ(j["files"].size(), 2u);
  ASSERT_EQ(j["scalars"].size(), 3u);
  EXPECT_EQ(j["scalars"][0][3].get<double>(), 10);
  EXPECT_EQ(j["scalars"][1][3].get<double>(), 20);
  EXPECT_EQ(j["scalars"][2][3].get<double>(), 31);
  EXPECT_EQ(read_json(logs().string())["scalars"].size(), 4u);  // without the rule, all four are there
}

TEST_F(TfEventsTest, TwoWritersInOneProcessGetTheirOwnFiles) {
  TfEventsWriter a(dir_.string()), b(dir_.string());
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(fs::path(a.path()).parent_path(), fs::path(b.path()).parent_path());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST_F(TfEventsTest, ReaderDetectsDamagedRecords) {
  const std::string path = write_sample();
  const std::string good = read_file(path);
  const size_t second = 16 + le(good, 0, 8);  // offset of record 1 (after the file_version record)
  std::string bad = good;
  bad[second + 12 + 3] ^= 0x01;  // a bit of record 1's data
  write_file(path, bad);
  Result r = read_back(path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("record 1 at offset " + std::to_string(second) + ": data CRC mismatch"), std::string::npos)
      << r.err;

  bad = good;
  bad[second] ^= 0x01;  // record 1's length
  write_file(path, bad);
  r = read_back(path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("record 1 at offset " + std::to_string(second) + ": length CRC mismatch"), std::string::npos)
      << r.err;

  write_file(path, good.substr(0, good.size() - 2));  // the last record cut short
  r = read_back(path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("truncated data"), std::string::npos) << r.err;

  write_file(path, good);
  EXPECT_EQ(read_back(path).code, 0);
}

TEST_F(TfEventsTest, ReaderCrcMatchesTheKnownVector) {
  const std::string cmd = "/usr/bin/python3 -B -c \"import sys; sys.path.insert(0, '" MPIBERT_SOURCE_DIR
                          "/tests/e2e'); import tfevents_read as r; "
                          "sys.exit(0 if r.crc32c(b'123456789') == 0xE3069283 else 1)\"";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(TfEventsTest, UnwritableDirIsOneErrorNamingThePath) {
  write_file((dir_ / "file").string(), "x");
  const std::string bad = (dir_ / "file" / "runs").string();
  try {
    TfEventsWriter w(bad);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create TensorBoard logging dir " + bad + ": "), std::string::npos)
        << e.what();
  }
}

// In a death-test child: a file size limit makes the disk "full", so the writes fail with EFBIG.
// Exits 3 after printing the error, 0 if nothing failed.
void write_past_a_file_size_limit(const std::string& dir) {
  std::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{200, 200};
  setrlimit(RLIMIT_FSIZE, &limit);
  TfEventsWriter w(dir);
  try {
    for (int step = 0; step < 100; ++step) w.add_scalar("train/loss", step, step);
    w.flush();
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(3);
  }
  std::exit(0);
}

TEST_F(TfEventsTest, WriteErrorsAreOneErrorNamingTheFile) {
  const std::string dir = dir_.string();
  EXPECT_EXIT(write_past_a_file_size_limit(dir), ::testing::ExitedWithCode(3),
              "cannot write TensorBoard event file " + dir + "/events\\.out\\.tfevents\\.[^ ]+: File too large");
  TfEventsWriter closed(dir);
  closed.close();
  EXPECT_NO_THROW(closed.close());
  try {
    closed.add_scalar("x", 1, 1);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(closed.path() + " is closed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mpibert::report
