#include "launcher/environment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "common/error.h"

using mpibert::UsageError;
using namespace mpibert::launcher;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// A fake file system: path -> kind.
FileProbe fake_fs(std::map<std::string, FileKind> files) {
  return [files](const std::string& path) {
    auto it = files.find(path);
    return it == files.end() ? FileKind::Missing : it->second;
  };
}

std::string usage_error_of(const std::string& program, const FileProbe& probe) {
  try {
    resolve_program(program, "/work", "/opt/bin", "/usr/bin:/bin", probe);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ResolveProgram, TakesTheProgramAsGivenFirst) {
  auto probe = fake_fs({{"/work/run_mlm", FileKind::Executable}, {"/opt/bin/run_mlm", FileKind::Executable}});
  EXPECT_EQ(resolve_program("run_mlm", "/work", "/opt/bin", "/usr/bin", probe), "/work/run_mlm");
  EXPECT_EQ(resolve_program("/abs/x", "/work", "/opt/bin", "", fake_fs({{"/abs/x", FileKind::Executable}})), "/abs/x");
}

TEST(ResolveProgram, ThenLooksNextToGaudiSpawnThenOnPath) {
  auto beside = fake_fs({{"/opt/bin/run_mlm", FileKind::Executable}, {"/usr/bin/run_mlm", FileKind::Executable}});
  EXPECT_EQ(resolve_program("run_mlm", "/work", "/opt/bin", "/usr/bin", beside), "/opt/bin/run_mlm");
  auto on_path = fake_fs({{"/bin/run_mlm", FileKind::Executable}, {"/usr/bin/run_mlm", FileKind::NotExecutable}});
  EXPECT_EQ(resolve_program("run_mlm", "/work", "/opt/bin", "/usr/bin:/bin", on_path), "/bin/run_mlm");
}

TEST(ResolveProgram, NameWithSlashIsNotSearched) {
  auto probe = fake_fs({{"/opt/bin/run_mlm", FileKind::Executable}});
  EXPECT_THAT(usage_error_of("sub/run_mlm", probe), HasSubstr("looked at /work/sub/run_mlm)"));
}

TEST(ResolveProgram, MissingProgramSaysWhereItLooked) {
  auto msg = usage_error_of("run_mlm", fake_fs({}));
  EXPECT_THAT(msg, HasSubstr("program 'run_mlm' not found (looked at /work/run_mlm, /opt/bin/run_mlm and on PATH)"));
  EXPECT_THAT(usage_error_of("run_mlm.py", fake_fs({})), HasSubstr("run_mlm, not run_mlm.py"));
}

TEST(ResolveProgram, NonExecutableFileIsAnError) {
  auto msg = usage_error_of("train.sh", fake_fs({{"/work/train.sh", FileKind::NotExecutable}}));
  EXPECT_THAT(msg, HasSubstr("is not executable"));
}

TEST(ResolveProgram, DirectoriesAreSkipped) {
  auto probe = fake_fs({{"/work/run_mlm", FileKind::Directory}, {"/usr/bin/run_mlm", FileKind::Executable}});
  EXPECT_EQ(resolve_program("run_mlm", "/work", "/opt/bin", "/usr/bin", probe), "/usr/bin/run_mlm");
}

TEST(ResolveProgram, ADirectoryThatIsNoProgramIsNamedAsADirectory) {
  auto dir = fake_fs({{"/work/out", FileKind::Directory}});
  EXPECT_THAT(usage_error_of("out", dir), HasSubstr("program 'out' (/work/out) is a directory"));
  EXPECT_THAT(usage_error_of("out", dir), Not(HasSubstr("not found")));
  EXPECT_THAT(usage_error_of("/abs/dir", fake_fs({{"/abs/dir", FileKind::Directory}})),
              HasSubstr("program '/abs/dir' (/abs/dir) is a directory"));
}

TEST(OpenMpiVersion, ParsesMajorFromMpirunVersion) {
  EXPECT_EQ(parse_open_mpi_major("mpirun (Open MPI) 4.1.4\n\nReport bugs to http://www.open-mpi.org/community/help/\n"),
            4);
  EXPECT_EQ(parse_open_mpi_major("mpirun (Open MPI) 5.0.3\n"), 5);
  EXPECT_EQ(parse_open_mpi_major("HYDRA build details:\n    Version: 4.0.2\n"), 0);
}

TEST(UsableCores, AtLeastOne) {
  EXPECT_GE(count_usable_cores(), 1);
}
