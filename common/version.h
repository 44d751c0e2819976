#pragma once
// The project version, from CMake's project(VERSION ...): checkpoints and logs record it.
namespace mpibert {
const char* version();
}
