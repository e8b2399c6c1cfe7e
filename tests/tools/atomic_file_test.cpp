// Tests of AtomicFile: the destination is complete or untouched, never partial.
#include "atomic_file.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace convjit {
namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/convjit_atomic_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  static std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Number of entries in the scratch directory, to catch leftover temporary files.
  int entries() const {
    DIR* dir = opendir(dir_.c_str());
    if (dir == nullptr) return -1;
    int n = 0;
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") ++n;
    }
    closedir(dir);
    return n;
  }
  std::string dir_;
};

TEST_F(AtomicFileTest, CommitRenamesOntoTheDestination) {
  std::string path = dir_ + "/out.npy";
  StatusOr<AtomicFile> file = AtomicFile::create(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->temp_path().substr(0, dir_.size()), dir_) << "same directory, same file system";
  EXPECT_EQ(file->temp_path().substr(file->temp_path().size() - 4), ".npy") << "extension kept";
  ASSERT_TRUE(file->write("abc", 3).ok());
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "nothing under the final name before commit";
  ASSERT_TRUE(file->commit().ok());
  EXPECT_EQ(contents(path), "abc");
  EXPECT_EQ(entries(), 1);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_NE(st.st_mode & S_IRGRP, 0u) << "a plain new file's permissions, not mkstemp's 0600";
}

TEST_F(AtomicFileTest, DestroyedWithoutCommitLeavesTheDestinationUntouched) {
  std::string path = dir_ + "/out.npy";
  { std::ofstream(path) << "old"; }
  {
    StatusOr<AtomicFile> file = AtomicFile::create(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file->write("new", 3).ok());
  }
  EXPECT_EQ(contents(path), "old");
  EXPECT_EQ(entries(), 1) << "the temporary file is removed";
}

TEST_F(AtomicFileTest, MovedFromFileRemovesNothing) {
  std::string path = dir_ + "/out.s";
  StatusOr<AtomicFile> file = AtomicFile::create(path);
  ASSERT_TRUE(file.ok());
  AtomicFile moved = std::move(file).value();
  ASSERT_TRUE(moved.write("x", 1).ok());
  ASSERT_TRUE(moved.commit().ok());
  EXPECT_EQ(contents(path), "x");
}

TEST_F(AtomicFileTest, RejectsMissingDirectoriesAndDirectoryDestinations) {
  EXPECT_FALSE(AtomicFile::create(dir_ + "/no_such_dir/out.npy").ok());
  EXPECT_FALSE(AtomicFile::create(dir_).ok());
  EXPECT_FALSE(AtomicFile::create(dir_ + "/").ok());
  EXPECT_FALSE(AtomicFile::create("").ok());
  EXPECT_EQ(entries(), 0);
}

}  // namespace
}  // namespace convjit
