#include "common/data/hdf5_check.h"

#include <stdexcept>
#include <vector>

namespace mpibert::data {
namespace {

herr_t collect_error(unsigned, const H5E_error2_t* err, void* out) {
  auto* lines = static_cast<std::vector<std::string>*>(out);
  std::string line = std::string(err->func_name ? err->func_name : "?") + "(): ";
  line += err->desc ? err->desc : "error";
  lines->push_back(std::move(line));
  return 0;
}

herr_t close_any(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      return H5Fclose(id);
    case H5I_GROUP:
      return H5Gclose(id);
    case H5I_DATASET:
      return H5Dclose(id);
    case H5I_DATASPACE:
      return H5Sclose(id);
    case H5I_DATATYPE:
      return H5Tclose(id);
    case H5I_ATTR:
      return H5Aclose(id);
    case H5I_GENPROP_LST:
      return H5Pclose(id);
    default:
      return H5Idec_ref(id) < 0 ? -1 : 0;
  }
}

}  // namespace

void hdf5_quiet() {
  thread_local bool quiet = false;
  if (!quiet) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    quiet = true;
  }
}

std::string hdf5_error_text() {
  std::vector<std::string> lines;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error, &lines);
  H5Eclear2(H5E_DEFAULT);
  std::string text;
  for (const auto& line : lines) {
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text;
}

hid_t hdf5_check_id(hid_t result, const std::string& what) {
  if (result < 0) {
    std::string detail = hdf5_error_text();
    throw std::runtime_error(what + (detail.empty() ? std::string(" failed") : ": " + detail));
  }
  return result;
}

herr_t hdf5_check(herr_t result, const std::string& what) {
  if (result < 0) {
    std::string detail = hdf5_error_text();
    throw std::runtime_error(what + (detail.empty() ? std::string(" failed") : ": " + detail));
  }
  return result;
}

H5Id& H5Id::operator=(H5Id&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void H5Id::reset() {
  if (id_ >= 0) {
    if (close_any(id_) < 0) H5Eclear2(H5E_DEFAULT);
    id_ = H5I_INVALID_HID;
  }
}

void H5Id::close(const std::string& what) {
  if (id_ < 0) return;
  hid_t id = id_;
  id_ = H5I_INVALID_HID;
  hdf5_check(close_any(id), what);
}

}  // namespace mpibert::data
