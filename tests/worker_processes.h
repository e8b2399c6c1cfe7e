// Several copies of the running test binary started at once, for tests of what
// concurrent processes do to shared files (the disk cache, the tuning database).
//
// The parent spawns each worker with a GoogleTest filter naming a worker test; the
// workers block on a pipe until every one has been spawned, so they really race.
// A worker test skips itself unless `barrier_variable` is set in its environment.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace convjit {

struct WorkerResult {
  int status = -1;     // as waitpid reports it
  std::string output;  // the worker's stdout and stderr
  bool succeeded() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Runs `count` workers of the test `gtest_filter` together. Each gets this process's
// environment without GoogleTest's variables (a worker runs its one test and writes
// no report) and without variables starting with one of `drop_prefixes`, plus the
// barrier's descriptor in `barrier_variable` and `extra_env(i)` ("NAME=value" each).
// Their output goes to files under `log_directory`.
inline std::vector<WorkerResult> run_workers_together(
    const std::string& gtest_filter, int count, const char* barrier_variable,
    const std::vector<std::string>& drop_prefixes,
    const std::function<std::vector<std::string>(int)>& extra_env, const std::string& log_directory) {
  std::vector<WorkerResult> results;
  char exe[4096];
  const ssize_t exe_size = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (exe_size <= 0) {
    ADD_FAILURE() << "readlink /proc/self/exe: " << std::strerror(errno);
    return results;
  }
  exe[exe_size] = '\0';
  int barrier[2];
  if (pipe2(barrier, O_CLOEXEC) != 0 || fcntl(barrier[0], F_SETFD, 0) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return results;
  }  // the workers inherit the read end only

  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    const std::string var = *e;
    bool drop = var.rfind("GTEST_", 0) == 0;
    for (const std::string& prefix : drop_prefixes) drop = drop || var.rfind(prefix, 0) == 0;
    if (!drop) base_env.push_back(var);
  }
  base_env.push_back(std::string(barrier_variable) + "=" + std::to_string(barrier[0]));
  std::string filter = "--gtest_filter=" + gtest_filter;
  std::string brief = "--gtest_brief=1";
  char* argv[] = {exe, filter.data(), brief.data(), nullptr};

  std::vector<pid_t> pids;
  std::vector<std::string> logs;
  for (int i = 0; i < count; ++i) {
    std::vector<std::string> env = base_env;
    for (const std::string& var : extra_env(i)) env.push_back(var);
    std::vector<char*> envp;
    for (std::string& var : env) envp.push_back(var.data());
    envp.push_back(nullptr);
    const std::string log = log_directory + "/worker" + std::to_string(i) + ".log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid;
    const int error = posix_spawn(&pid, exe, &actions, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(error, 0) << "posix_spawn " << exe << ": " << std::strerror(error);
    if (error == 0) {
      pids.push_back(pid);
      logs.push_back(log);
    }
  }
  ::close(barrier[0]);
  ::close(barrier[1]);  // end of file: every worker starts now
  for (size_t i = 0; i < pids.size(); ++i) {
    WorkerResult result;
    if (waitpid(pids[i], &result.status, 0) != pids[i]) ADD_FAILURE() << "waitpid " << pids[i];
    std::ifstream log(logs[i]);
    std::stringstream text;
    text << log.rdbuf();
    result.output = text.str();
    ::unlink(logs[i].c_str());
    results.push_back(result);
  }
  return results;
}

// In a worker: blocks until the parent has spawned every worker. False (and the
// test should skip) when this process is not a worker.
inline bool wait_for_other_workers(const char* barrier_variable) {
  const char* barrier = std::getenv(barrier_variable);
  if (barrier == nullptr) return false;
  const int fd = std::atoi(barrier);
  char byte;
  for (;;) {
    const ssize_t n = ::read(fd, &byte, 1);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  ::close(fd);
  return true;
}

}  // namespace convjit
