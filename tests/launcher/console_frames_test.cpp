#include "launcher/console_frames.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace mpibert::launcher;

namespace {

// What a decoder gives back, as (stream, bytes) runs with adjacent runs of one stream joined.
struct Collected {
  std::string out, err, order;  // order: one letter per run ('o', 'e')
};

Collected decode(const std::string& bytes, size_t chunk) {
  Collected c;
  FrameDecoder d([&](int stream, const char* data, size_t size) {
    (stream == 2 ? c.err : c.out).append(data, size);
    const char letter = stream == 2 ? 'e' : 'o';
    if (size > 0 && (c.order.empty() || c.order.back() != letter)) c.order += letter;
  });
  for (size_t i = 0; i < bytes.size(); i += chunk) d.feed(bytes.data() + i, std::min(chunk, bytes.size() - i));
  return c;
}

std::string frames(int stream, const std::string& text) {
  return encode_frames(stream, text.data(), text.size());
}

}  // namespace

TEST(ConsoleFrames, EveryByteGoesBackToItsStreamInOrderWhateverTheChunking) {
  const std::string binary(
      "a\0b\x1e"
      "c\r\n",
      7);
  const std::string bytes =
      frames(1, "step 1/3\r") + frames(2, "warning: x\n") + frames(1, "step 2/3\n") + frames(2, binary) + frames(1, "");
  for (size_t chunk : {1, 2, 3, 5, 7, 64, 4096}) {
    Collected c = decode(bytes, chunk);
    EXPECT_EQ(c.out, "step 1/3\rstep 2/3\n") << chunk;
    EXPECT_EQ(c.err, "warning: x\n" + binary) << chunk;
    EXPECT_EQ(c.order, "oeoe") << chunk;
  }
}

TEST(ConsoleFrames, LongWritesAreSplitIntoSeveralFrames) {
  const std::string big(200000, 'x');
  const std::string bytes = frames(2, big);
  EXPECT_EQ(bytes.size(), big.size() + 4 * 6);  // four frames of at most 65535 bytes
  EXPECT_EQ(decode(bytes, 1000).err, big);
}

TEST(ConsoleFrames, TextOutsideFramesPassesToStdoutUnchanged) {
  Collected c = decode("mpirun says hi\n" + frames(2, "e\n") + "more\n", 4);
  EXPECT_EQ(c.out, "mpirun says hi\nmore\n");
  EXPECT_EQ(c.err, "e\n");
  // A mark that starts no valid header is text too.
  EXPECT_EQ(decode("\x1ezz\n", 1).out, "\x1ezz\n");
}
