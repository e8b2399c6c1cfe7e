// Rules for the files convjit trusts to decide what code it runs (the kernel cache,
// the tuning database): private directories, and ownership and mode checks.
#pragma once

#include <sys/stat.h>

#include <string>

namespace convjit {

// Why a file or directory must not be trusted, or "" when it may be: it must be
// owned by this user and not writable by group or others. Whoever can write it
// chooses the code convjit loads (or the schedules it compiles). Checked on fstat or
// stat results, never with access(): root passes access() for anything.
std::string ownership_problem(const struct stat& st);

// "0755"-style text of a mode's permission bits.
std::string mode_text(mode_t mode);

// mkdir -p, creating every missing directory with mode 0700; false with *error
// naming the directory and the reason when one cannot be created.
bool make_private_directories(const std::string& path, std::string* error);

}  // namespace convjit
