#pragma once
// Encoded classification data as bytes, so that rank 0 alone reads and tokenises the files (no shared
// file system is assumed) and broadcasts the result: the label space and any number of datasets.
#include <string>
#include <vector>

#include "common/data/classification_labels.h"
#include "common/data/text_classification.h"

namespace mpibert::data {

std::string to_blob(const LabelSpace& labels, const std::vector<const ClassificationDataset*>& datasets);
// Throws std::runtime_error on bytes that are not such a blob (a truncated or foreign buffer).
void from_blob(const std::string& blob, LabelSpace& labels, std::vector<ClassificationDataset*>& datasets);

// Renumbers the classes: label id i becomes order[i] (single- and multi-label targets alike).
void renumber_labels(ClassificationDataset& dataset, const std::vector<int32_t>& order);

}  // namespace mpibert::data
