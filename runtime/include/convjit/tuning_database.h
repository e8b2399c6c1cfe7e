// The tuning database: measured schedules (spec, target, template, parameters, time,
// error, versions) kept in one SQLite file beside the kernel cache, shared by every
// process of a user and exchanged between machines of one kind as JSON lines.
//
// Where: $CONVJIT_TUNING_DB, else <kernel cache directory>/tuning.sqlite (the
// directory of convjit/disk_cache.h, whether or not CONVJIT_CACHE turns the kernel
// cache off); CONVJIT_TUNING_DB=off means no database (default_path() returns "").
//
// Contract:
// - Records are history: insert() never replaces one. Inserting a record equal in
//   every field to a stored one is a no-op, so importing a file twice adds nothing.
// - best() answers only with records whose `codegen` equals the caller's: a record
//   measured with another code generator (Halide version, convjit's code-generation
//   sources) describes code this build no longer produces.
// - Several processes may read and write one file at once: every write is one
//   immediate transaction (waiting up to 10 s for another writer), readers never
//   wait for writers (write-ahead log).
// - The database decides which schedule is compiled, so it is guarded like the
//   kernel cache: the directory is created with mode 0700, and a directory or file
//   owned by another user or writable by group or others is refused, as is a
//   symbolic link in place of the file.
// - The file is versioned (schema version 1); a file written by a newer convjit is
//   refused with an error naming both versions, never modified.
// - Errors come back as Status values; no exception crosses this API.
// Thread-safe: one TuningDatabase may be shared by any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/status.h"

namespace convjit {

// One measurement of one schedule for one spec on one target.
struct TuningRecord {
  std::string spec_key;           // canonical_key() of the spec
  std::string descriptor;         // print_descriptor() of the spec, for people ("" = filled in on insert)
  std::string target;             // the full Halide target string
  std::string schedule_template;  // the template's name, e.g. "cpu_direct"
  std::string schedule_params;    // ScheduleParams text: "name=value,name=value"
  double time_ms = 0;             // run time of the tuned kernel (> 0)
  double max_error = 0;           // relative error against the default kernel's output (>= 0)
  double default_time_ms = 0;     // run time of the default schedule, measured alongside (>= 0)
  std::string convjit_version;    // project version, e.g. "0.1.0"
  std::string halide_version;     // e.g. "14.0.0"
  std::string codegen;            // tuning_codegen_fingerprint() of the build that measured it
  int64_t created_unix = 0;       // seconds since the epoch

  bool operator==(const TuningRecord& other) const;
  bool operator!=(const TuningRecord& other) const { return !(*this == other); }
};

// The code-generator identity this build stamps on records and looks them up by:
// Halide's version and the hash of convjit's code-generation sources. Unlike the
// disk cache key it leaves out the libHalide file's identity, so that records move
// between machines with the same packages.
std::string tuning_codegen_fingerprint();

// A record for (spec, target) of this build: spec_key, descriptor, target, the three
// version fields and created_unix (now) filled in; the caller adds the schedule and
// the measurements. `spec` must be valid.
TuningRecord make_tuning_record(const ConvSpec& spec, const std::string& target);

class TuningDatabase {
 public:
  // Opens the database at `path`, creating the file (and its directory, mode 0700)
  // when absent. Errors name the path and the reason (refused ownership or mode,
  // newer schema version, not a database, ...).
  static StatusOr<std::shared_ptr<TuningDatabase>> open(const std::string& path);

  // Where the runtime and the tuner keep their database (see the top of this file);
  // "" when CONVJIT_TUNING_DB=off or no cache directory can be named.
  static std::string default_path();

  const std::string& path() const;

  // Stores a record after checking it: a spec_key that is the canonical key of a
  // valid spec, non-empty target, template and versions, finite times and error.
  Status insert(const TuningRecord& record);

  // The fastest record for exactly this spec and target from the code generator
  // `codegen`; nullopt when there is none.
  StatusOr<std::optional<TuningRecord>> best(const std::string& spec_key, const std::string& target,
                                             const std::string& codegen);

  // The best record of the tuned spec most similar to `spec` on `target` from
  // `codegen`, as a starting point for tuning it (its parameters may not apply as
  // they are). Only specs of the same family qualify: same transposed flag, same
  // grouping (dense groups=1, depthwise groups=c_in, other grouped) and same dtype.
  // Among them the smallest distance wins: the sum of |log2| of the ratios of
  // c_in, c_out, h_in, w_in (n counts half) plus 2 for each of kh, kw, stride_h,
  // stride_w, dilation_h, dilation_w that differs. `spec` itself qualifies when
  // tuned. nullopt when no spec of the family is tuned.
  StatusOr<std::optional<TuningRecord>> nearest(const ConvSpec& spec, const std::string& target,
                                                const std::string& codegen);

  // Every record, oldest insert first.
  StatusOr<std::vector<TuningRecord>> all();

  // Writes every record to `path` as JSON lines (one flat object a line, every
  // field), replacing the file atomically.
  Status export_jsonl(const std::string& path);

  // Adds the records of a JSON-lines file (blank lines are skipped) and returns how
  // many were new (exact duplicates of stored records are skipped). All or nothing:
  // one bad line, reported as "FILE:LINE: field 'NAME': why", imports no record.
  StatusOr<int> import_jsonl(const std::string& path);

  class Impl;
  explicit TuningDatabase(std::unique_ptr<Impl> impl);
  ~TuningDatabase();
  TuningDatabase(const TuningDatabase&) = delete;
  TuningDatabase& operator=(const TuningDatabase&) = delete;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace convjit
