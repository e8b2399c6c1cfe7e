// Ownership and mode checks, and private directory creation.
#include "private_files.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace convjit {

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0%03o", static_cast<unsigned>(mode & 0777));
  return buf;
}

std::string ownership_problem(const struct stat& st) {
  if (st.st_uid != geteuid()) {
    return "owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " + std::to_string(geteuid()) +
           ")";
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return "writable by group or others (mode " + mode_text(st.st_mode) + ")";
  return "";
}

bool make_private_directories(const std::string& path, std::string* error) {
  std::string partial;
  std::istringstream parts(path);
  std::string part;
  if (!path.empty() && path[0] == '/') partial = "/";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    partial += (partial.empty() || partial.back() == '/' ? "" : "/") + part;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = "cannot create '" + partial + "': " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

}  // namespace convjit
