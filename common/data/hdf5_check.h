#pragma once
// Checked HDF5 calls: a failing call throws with HDF5's own error stack text (instead of HDF5
// printing it to stderr), and identifiers are closed by RAII.
#include <hdf5.h>

#include <string>

namespace mpibert::data {

// Turns off HDF5's automatic error-stack printing for the calling thread (the library is built
// thread-safe, so the setting is per thread). Idempotent and cheap; every entry point calls it.
void hdf5_quiet();

// The calling thread's current HDF5 error stack as one line, innermost error first
// ("H5FD_sec2_open(): unable to open file: ... errno = 2 ...; H5Fopen(): unable to open file"),
// then clears the stack. "" if empty.
std::string hdf5_error_text();

// Throws std::runtime_error("<what>: <HDF5 error text>") if `result` < 0 (the HDF5 failure
// convention for hid_t, herr_t and htri_t); otherwise returns it.
hid_t hdf5_check_id(hid_t result, const std::string& what);
herr_t hdf5_check(herr_t result, const std::string& what);

// Owns one HDF5 identifier (file, dataset, dataspace, datatype, attribute, group or property list)
// and closes it with the matching H5?close.
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  // Checked construction: throws like hdf5_check_id.
  H5Id(hid_t id, const std::string& what) : id_(hdf5_check_id(id, what)) {}
  ~H5Id() { reset(); }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  H5Id& operator=(H5Id&& other) noexcept;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes quietly (destructor path: errors are dropped).
  void reset();
  // Closes and throws if HDF5 reports an error (e.g. a file's final flush failed).
  void close(const std::string& what);

 private:
  hid_t id_ = H5I_INVALID_HID;
};

}  // namespace mpibert::data
