#include "common/comm/agreement.h"

#include <climits>
#include <nlohmann/json.hpp>

namespace mpibert {
namespace {

enum ErrorKind : int32_t { kNone = 0, kUsage = 1, kFailure = 2 };

// What fn threw on this rank, as the text every rank will see.
struct LocalOutcome {
  ErrorKind kind = kNone;
  std::string message;
};

LocalOutcome run_locally(HcclLike& comm, const std::function<void()>& fn) {
  const std::string prefix = comm.size() > 1 ? "rank " + std::to_string(comm.rank()) + ": " : "";
  try {
    fn();
  } catch (const CollectiveError&) {
    throw;
  } catch (const AgreedUsageError& e) {
    return {kUsage, e.what()};
  } catch (const AgreedFailure& e) {
    return {kFailure, e.what()};
  } catch (const UsageError& e) {
    return {kUsage, e.what()};
  } catch (const std::exception& e) {
    return {kFailure, prefix + e.what()};
  } catch (...) {
    return {kFailure, prefix + "unknown exception"};
  }
  return {};
}

std::vector<size_t> gathered_sizes(HcclLike& comm, const std::string& mine, std::chrono::milliseconds silence) {
  std::vector<int64_t> sizes(static_cast<size_t>(comm.size()));
  int64_t n = static_cast<int64_t>(mine.size());
  comm.allGather(&n, sizes.data(), 1, DataType::I64)->waitAlive(silence);
  return std::vector<size_t>(sizes.begin(), sizes.end());
}

std::vector<std::string> split_blocks(const std::string& all, const std::vector<size_t>& sizes) {
  std::vector<std::string> blocks;
  blocks.reserve(sizes.size());
  size_t offset = 0;
  for (size_t n : sizes) {
    blocks.push_back(all.substr(offset, n));
    offset += n;
  }
  return blocks;
}

}  // namespace

void agree(HcclLike& comm, RunOn where, const std::function<void()>& fn, std::chrono::milliseconds silence) {
  LocalOutcome outcome;
  if (where == RunOn::EveryRank || comm.rank() == 0) outcome = run_locally(comm, fn);
  // The lowest failing rank wins; its kind rides in the low bits so that one all-reduce says who and what.
  int32_t key = outcome.kind == kNone ? INT32_MAX : comm.rank() * 4 + outcome.kind, first = INT32_MAX;
  comm.allReduce(&key, &first, 1, DataType::I32, ReduceOp::Min)->waitAlive(silence);
  if (first == INT32_MAX) return;
  const int origin = first / 4;
  const std::string message = broadcast_string(comm, outcome.message, origin, silence);
  if (first % 4 == kUsage) throw AgreedUsageError(message, origin);
  throw AgreedFailure(message, origin);
}

std::string agree_on_root(HcclLike& comm, const std::function<std::string()>& decide,
                          std::chrono::milliseconds silence) {
  std::string result;
  agree(
      comm, RunOn::Root, [&] { result = decide(); }, silence);
  return broadcast_string(comm, std::move(result), 0, silence);
}

nlohmann::json agree_on_root_json(HcclLike& comm, const std::function<nlohmann::json()>& decide,
                                  std::chrono::milliseconds silence) {
  return nlohmann::json::parse(agree_on_root(
      comm, [&] { return decide().dump(); }, silence));
}

std::string broadcast_string(HcclLike& comm, std::string text, int root, std::chrono::milliseconds silence) {
  int64_t n = static_cast<int64_t>(text.size());
  comm.broadcast(&n, 1, DataType::I64, root)->waitAlive(silence);
  text.resize(static_cast<size_t>(n));
  if (n > 0) comm.broadcast(text.data(), text.size(), DataType::U8, root)->waitAlive(silence);
  return text;
}

nlohmann::json broadcast_json(HcclLike& comm, const nlohmann::json& value, int root,
                              std::chrono::milliseconds silence) {
  const std::string text = broadcast_string(comm, comm.rank() == root ? value.dump() : std::string(), root, silence);
  return nlohmann::json::parse(text);
}

std::vector<std::string> all_gather_strings(HcclLike& comm, const std::string& mine,
                                            std::chrono::milliseconds silence) {
  const std::vector<size_t> sizes = gathered_sizes(comm, mine, silence);
  size_t total = 0;
  for (size_t n : sizes) total += n;
  std::string all(total, '\0');
  comm.allGatherv(mine.data(), all.data(), sizes, DataType::U8)->waitAlive(silence);
  return split_blocks(all, sizes);
}

std::vector<std::string> gather_strings(HcclLike& comm, const std::string& mine, int root,
                                        std::chrono::milliseconds silence) {
  const std::vector<size_t> sizes = gathered_sizes(comm, mine, silence);
  size_t total = 0;
  for (size_t n : sizes) total += n;
  const bool receives = comm.rank() == root;
  std::string all(receives ? total : 0, '\0');
  comm.gatherv(mine.data(), receives ? all.data() : nullptr, sizes, DataType::U8, root)->waitAlive(silence);
  return receives ? split_blocks(all, sizes) : std::vector<std::string>();
}

}  // namespace mpibert
