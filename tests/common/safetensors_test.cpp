// Our safetensors reader/writer: byte-exact output against the reference implementation's own test
// vectors (huggingface/safetensors, safetensors/src/tensor.rs), round trips, and one test per
// validation rule of the reader.
#include "common/io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/error.h"

namespace mpibert::io {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mpibert_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string read_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static std::string le64(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
  }

  // Writes a hand-made file: 8-byte length (header.size() unless overridden), header, buffer.
  std::string craft(const std::string& header, std::size_t buffer_bytes, std::optional<std::uint64_t> n = {}) {
    const std::string p = path("crafted.safetensors");
    std::ofstream out(p, std::ios::binary);
    out << le64(n ? *n : header.size()) << header << std::string(buffer_bytes, '\x01');
    return p;
  }

  // The UsageError message read_safetensors throws for a file (fails the test if none is thrown).
  static std::string read_error(const std::string& p) {
    try {
      read_safetensors(p);
    } catch (const UsageError& e) {
      return e.what();
    }
    ADD_FAILURE() << "read_safetensors(" << p << ") accepted a malformed file";
    return "";
  }

  static std::string f32_bytes(std::initializer_list<float> values) {
    std::string s;
    for (float v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
    return s;
  }

  fs::path dir_;
};

std::string bytes_of(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

TEST_F(SafetensorsTest, WritesTheReferenceBytesForOneTensor) {
  SafetensorsFile file;
  file.tensors["attn.0"] = {StDtype::F32, {1, 2, 3}, f32_bytes({0, 1, 2, 3, 4, 5})};
  write_safetensors(path("a.safetensors"), file);
  // test_serialization in the reference implementation.
  const std::string expected =
      bytes_of({64, 0, 0, 0, 0, 0, 0, 0}) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
      bytes_of({0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64});
  EXPECT_EQ(read_bytes(path("a.safetensors")), expected);
}

TEST_F(SafetensorsTest, PadsTheHeaderWithSpacesToEightBytes) {
  SafetensorsFile file;
  file.tensors["attn0"] = {StDtype::F32, {1, 1, 2, 3}, f32_bytes({0, 1, 2, 3, 4, 5})};
  write_safetensors(path("a.safetensors"), file);
  // test_serialization_forced_alignement in the reference implementation.
  const std::string expected = bytes_of({72, 0, 0, 0, 0, 0, 0, 0}) +
                               R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
                               std::string(7, ' ') + f32_bytes({0, 1, 2, 3, 4, 5});
  EXPECT_EQ(read_bytes(path("a.safetensors")), expected);
}

TEST_F(SafetensorsTest, WritesMetadataFirstAndEmptyFilesLikeTheReference) {
  SafetensorsFile empty;
  write_safetensors(path("empty.safetensors"), empty);
  EXPECT_EQ(read_bytes(path("empty.safetensors")), bytes_of({8, 0, 0, 0, 0, 0, 0, 0}) + "{}" + std::string(6, ' '));

  SafetensorsFile with_meta;
  with_meta.metadata["framework"] = "pt";
  write_safetensors(path("meta.safetensors"), with_meta);
  EXPECT_EQ(read_bytes(path("meta.safetensors")),
            bytes_of({40, 0, 0, 0, 0, 0, 0, 0}) + R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '));
}

TEST_F(SafetensorsTest, OrdersTensorsByDescendingDtypeAlignmentThenName) {
  SafetensorsFile file;
  file.tensors["b"] = {StDtype::F32, {1}, std::string(4, 'b')};
  file.tensors["a"] = {StDtype::F32, {1}, std::string(4, 'a')};
  file.tensors["flag"] = {StDtype::BOOL, {1}, std::string(1, '\1')};
  file.tensors["step"] = {StDtype::I64, {1}, std::string(8, 's')};
  file.tensors["half"] = {StDtype::BF16, {1}, std::string(2, 'h')};
  write_safetensors(path("o.safetensors"), file);
  const SafetensorsHeader h = read_safetensors_header(path("o.safetensors"));
  EXPECT_EQ(h.tensors.at("step").begin, 0u);  // I64 first
  EXPECT_EQ(h.tensors.at("a").begin, 8u);     // then F32, by name
  EXPECT_EQ(h.tensors.at("b").begin, 12u);
  EXPECT_EQ(h.tensors.at("half").begin, 16u);  // BF16
  EXPECT_EQ(h.tensors.at("flag").begin, 18u);  // BOOL last
  EXPECT_EQ(h.header_bytes % 8, 0u);
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeShapeAndMetadata) {
  SafetensorsFile file;
  file.metadata = {{"format", "pt"}, {"note", "ünïcode \"quoted\"\n"}};
  const StDtype all[] = {StDtype::F64, StDtype::F32, StDtype::F16, StDtype::BF16, StDtype::I64,
                         StDtype::I32, StDtype::I16, StDtype::I8,  StDtype::U8,   StDtype::BOOL};
  int k = 0;
  for (StDtype d : all) {
    StTensor t{d, {2, 3}, {}};
    for (std::size_t i = 0; i < 6 * st_dtype_size(d); ++i) t.data.push_back(static_cast<char>(i * 7 + k));
    file.tensors[std::string("t.") + st_dtype_name(d)] = t;
    ++k;
  }
  file.tensors["scalar"] = {StDtype::F32, {}, f32_bytes({3.5f})};
  file.tensors["empty"] = {StDtype::F32, {0, 4}, ""};
  write_safetensors(path("all.safetensors"), file);
  const SafetensorsFile back = read_safetensors(path("all.safetensors"));
  EXPECT_EQ(back.metadata, file.metadata);
  ASSERT_EQ(back.tensors.size(), file.tensors.size());
  for (const auto& [name, t] : file.tensors) {
    const StTensor& b = back.tensors.at(name);
    EXPECT_EQ(b.dtype, t.dtype) << name;
    EXPECT_EQ(b.shape, t.shape) << name;
    EXPECT_EQ(b.data, t.data) << name;
  }
}

TEST_F(SafetensorsTest, ParsesDtypeNames) {
  StDtype d;
  ASSERT_TRUE(parse_st_dtype("BF16", &d));
  EXPECT_EQ(d, StDtype::BF16);
  EXPECT_FALSE(parse_st_dtype("bf16", &d));
  EXPECT_EQ(st_dtype_size(StDtype::F64), 8u);
  EXPECT_EQ(std::string(st_dtype_name(StDtype::BOOL)), "BOOL");
}

TEST_F(SafetensorsTest, ReplacesAnExistingFileAndLeavesNoTemporaryFiles) {
  SafetensorsFile one, two;
  one.tensors["x"] = {StDtype::U8, {3}, "abc"};
  two.tensors["y"] = {StDtype::U8, {2}, "de"};
  write_safetensors(path("m.safetensors"), one);
  write_safetensors(path("m.safetensors"), two);
  EXPECT_EQ(read_safetensors(path("m.safetensors")).tensors.count("y"), 1u);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST_F(SafetensorsTest, StreamingWriterRejectsASourceThatWritesTheWrongByteCount) {
  StTensorSource bad;
  bad.dtype = StDtype::F32;
  bad.shape = {2};
  bad.write = [](const StByteSink& sink) { sink("abcd", 4); };  // 4 of 8 bytes
  EXPECT_THROW(write_safetensors(path("bad.safetensors"), {}, {{"x", bad}}), std::logic_error);
  EXPECT_FALSE(fs::exists(path("bad.safetensors")));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 0) << "the temporary file must be removed";
}

TEST_F(SafetensorsTest, WriterRejectsDuplicateAndReservedNames) {
  StTensorSource s;
  s.dtype = StDtype::U8;
  s.shape = {1};
  s.write = [](const StByteSink& sink) { sink("a", 1); };
  EXPECT_THROW(write_safetensors(path("d.safetensors"), {}, {{"x", s}, {"x", s}}), UsageError);
  EXPECT_THROW(write_safetensors(path("d.safetensors"), {}, {{"__metadata__", s}}), UsageError);
}

TEST_F(SafetensorsTest, ReadsHeaderWithoutData) {
  SafetensorsFile file;
  file.metadata["format"] = "pt";
  file.tensors["w"] = {StDtype::F16, {4, 2}, std::string(16, 'x')};
  write_safetensors(path("h.safetensors"), file);
  const SafetensorsHeader h = read_safetensors_header(path("h.safetensors"));
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.tensors.at("w").shape, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(h.tensors.at("w").end, 16u);
  EXPECT_EQ(h.buffer_bytes, 16u);
}

TEST_F(SafetensorsTest, AcceptsAHeaderPaddedWithSpacesAndAnyTensorOrder) {
  const std::string p = craft(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                              R"("a":{"data_offsets":[0,2],"shape":[2],"dtype":"U8"}}   )",
                              4);
  const SafetensorsFile f = read_safetensors(p);
  EXPECT_EQ(f.tensors.at("a").data, "\1\1");
  EXPECT_EQ(f.tensors.at("b").data.size(), 2u);
}

// ---- one test per validation rule ----

TEST_F(SafetensorsTest, RejectsMissingFile) {
  EXPECT_THAT(read_error(path("nope.safetensors")), HasSubstr("no such file"));
}

TEST_F(SafetensorsTest, RejectsFileShorterThanTheLengthField) {
  const std::string p = path("short.safetensors");
  std::ofstream(p, std::ios::binary) << "abc";
  const std::string e = read_error(p);
  EXPECT_THAT(e, HasSubstr(p));
  EXPECT_THAT(e, HasSubstr("shorter than the 8-byte header length"));
}

TEST_F(SafetensorsTest, RejectsHeaderLengthOverTheLimit) {
  EXPECT_THAT(read_error(craft("{}", 0, 100'000'001)), HasSubstr("exceeds the limit of 100000000 bytes"));
}

TEST_F(SafetensorsTest, RejectsHeaderLengthPastTheEndOfTheFile) {
  EXPECT_THAT(read_error(craft("{}", 0, 4096)), HasSubstr("truncated file?"));
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotJson) {
  EXPECT_THAT(read_error(craft("{\"a\": nope}", 0)), HasSubstr("not valid UTF-8 JSON"));
}

TEST_F(SafetensorsTest, RejectsHeaderWithInvalidUtf8) {
  EXPECT_THAT(read_error(craft("{\"\xff\xfe\":{}}", 0)), HasSubstr("not valid UTF-8 JSON"));
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotAnObject) {
  EXPECT_THAT(read_error(craft("[1, 2]  ", 0)), HasSubstr("does not start with '{'"));
}

TEST_F(SafetensorsTest, RejectsDuplicateTensorNames) {
  const std::string e = read_error(craft(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                         R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                         2));
  EXPECT_THAT(e, HasSubstr("duplicate tensor name 'w'"));
}

TEST_F(SafetensorsTest, RejectsDuplicateKeysInsideAnEntry) {
  const std::string e = read_error(craft(R"({"w":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1));
  EXPECT_THAT(e, HasSubstr("duplicate key 'dtype' inside 'w'"));
}

TEST_F(SafetensorsTest, RejectsUnknownKeyInAnEntry) {
  const std::string e =
      read_error(craft(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"offsets":[0,1]}})", 1));
  EXPECT_THAT(e, HasSubstr("tensor 'w': unknown key 'offsets'"));
}

TEST_F(SafetensorsTest, RejectsMissingKeyInAnEntry) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", 1)),
              HasSubstr("tensor 'w': missing key 'shape'"));
}

TEST_F(SafetensorsTest, RejectsUnknownDtype) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4)),
              HasSubstr("tensor 'w': unknown dtype 'F33'"));
}

TEST_F(SafetensorsTest, RejectsValidButUnsupportedDtypeByName) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}})", 2)),
              HasSubstr("dtype U16 is valid safetensors but not supported"));
}

TEST_F(SafetensorsTest, RejectsNegativeShape) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", 0)),
              HasSubstr("tensor 'w': shape dimension -1 is out of range"));
}

TEST_F(SafetensorsTest, RejectsNonIntegerShape) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", 1)),
              HasSubstr("dimensions must be integers"));
}

TEST_F(SafetensorsTest, RejectsMalformedDataOffsets) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1)),
              HasSubstr("data_offsets must be an array [begin, end]"));
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}})", 1)),
              HasSubstr("end before they begin"));
}

TEST_F(SafetensorsTest, RejectsByteCountThatDoesNotMatchShapeAndDtype) {
  const std::string e = read_error(craft(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20));
  EXPECT_THAT(e, HasSubstr("tensor 'w'"));
  EXPECT_THAT(e, HasSubstr("span 20 bytes but F32 x shape [2, 3] needs 24"));
}

TEST_F(SafetensorsTest, RejectsShapeWhoseByteCountOverflows) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8)),
              HasSubstr("overflows"));
}

TEST_F(SafetensorsTest, RejectsOffsetsPastTheBuffer) {
  EXPECT_THAT(read_error(craft(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 3)),
              HasSubstr("tensor 'w': data_offsets [0, 4] run past the end of the 3-byte buffer"));
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  const std::string e = read_error(craft(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                         R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                                         6));
  EXPECT_THAT(e, HasSubstr("tensor 'b': data_offsets [2, 6] overlap tensor 'a'"));
}

TEST_F(SafetensorsTest, RejectsAHoleBetweenTensors) {
  const std::string e = read_error(craft(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                         R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                                         6));
  EXPECT_THAT(e, HasSubstr("tensor 'b'"));
  EXPECT_THAT(e, HasSubstr("bytes 2..4 of the buffer belong to no tensor"));
}

TEST_F(SafetensorsTest, RejectsAHoleAtTheStartOfTheBuffer) {
  EXPECT_THAT(read_error(craft(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", 3)),
              HasSubstr("bytes 0..1 of the buffer belong to no tensor"));
}

TEST_F(SafetensorsTest, RejectsTrailingBytesAfterTheLastTensor) {
  EXPECT_THAT(read_error(craft(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 5)),
              HasSubstr("3 trailing bytes belong to no tensor"));
}

TEST_F(SafetensorsTest, RejectsMetadataThatIsNotStringToString) {
  EXPECT_THAT(read_error(craft(R"({"__metadata__":{"epoch":3}})", 0)),
              HasSubstr("__metadata__ key 'epoch' holds an integer; values must be strings"));
  EXPECT_THAT(read_error(craft(R"({"__metadata__":["pt"]})", 0)), HasSubstr("__metadata__ must be an object"));
}

TEST_F(SafetensorsTest, RejectsEntryThatIsNotAnObject) {
  EXPECT_THAT(read_error(craft(R"({"w":[1,2]})", 0)), HasSubstr("tensor 'w': entry must be an object"));
}

}  // namespace
}  // namespace mpibert::io
