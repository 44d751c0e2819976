#pragma once
// TFRecord framing, the container of TensorBoard event files: each record is
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
#include <string>
#include <string_view>

namespace mpibert::report {

// The framed bytes of one record holding `data`.
std::string frame_tfrecord(std::string_view data);

}  // namespace mpibert::report
