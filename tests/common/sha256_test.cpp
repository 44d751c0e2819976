// SHA-256 against the FIPS 180-4 / NIST example vectors, streaming in odd pieces, and file hashing.
#include "common/io/sha256.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace mpibert::io {
namespace {

TEST(Sha256, MatchesNistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(
      sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                 "mnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundariesAndStreamingInPiecesMatchReference) {
  // 55, 56, 63, 64 and 65 bytes straddle the one-block/two-block padding boundary.
  // Reference digests from coreutils sha256sum.
  EXPECT_EQ(sha256_hex(std::string(55, 'x')), "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
  EXPECT_EQ(sha256_hex(std::string(56, 'x')), "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
  EXPECT_EQ(sha256_hex(std::string(64, 'x')), "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
  for (size_t n : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 127u, 128u, 129u, 1000u}) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = char(i * 7 + 3);
    Sha256 streamed;
    for (size_t i = 0; i < n;) {
      size_t piece = std::min<size_t>(1 + (i % 13), n - i);
      streamed.update(s.data() + i, piece);
      i += piece;
    }
    EXPECT_EQ(streamed.hex_digest(), sha256_hex(s)) << "length " << n;
  }
}

TEST(Sha256, FileHashEqualsHashOfItsBytes) {
  const std::string path = ::testing::TempDir() + "sha256_test_file.bin";
  std::string bytes;
  for (int i = 0; i < 3 * (1 << 20) + 17; ++i) bytes.push_back(char(i * 31 + (i >> 8)));
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  EXPECT_EQ(sha256_file(path), sha256_hex(bytes));
  std::remove(path.c_str());
}

TEST(Sha256, MissingFileErrorNamesTheFile) {
  try {
    sha256_file("/nonexistent/dir/shard.h5");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/shard.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
}

TEST(Sha256, DigestTwiceIsALogicError) {
  Sha256 h;
  h.update("abc");
  h.digest();
  EXPECT_THROW(h.digest(), std::logic_error);
  EXPECT_THROW(h.update("x"), std::logic_error);
}

}  // namespace
}  // namespace mpibert::io
