// Tests of the tuning database contract (tuning_database.h): best and nearest lookups,
// history, JSON-lines export and all-or-nothing import, schema versions, refused
// ownership and modes, and concurrent writers in several processes.
//
// Every test works in a temporary directory of its own, never in $CONVJIT_CACHE_DIR
// or ~/.cache. Nothing here compiles a kernel.
#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/descriptor.h"
#include "convjit/tuning_database.h"
#include "scoped_test_state.h"
#include "worker_processes.h"

extern char** environ;

namespace convjit {
namespace {

constexpr const char* kTarget = "x86-64-linux-avx2-f16c-fma-sse41";
constexpr const char* kOtherTarget = "x86-64-linux-avx512_skylake-avx2-avx512-f16c-fma-sse41";
constexpr const char* kCodegen = "halide=14.0.0 convjit=0123456789abcdef";
// Set in the environment of the worker processes of ConcurrentProcesses...: the
// database path, and the descriptor of the pipe whose end-of-file starts them.
constexpr const char* kWorkerDbVariable = "CONVJIT_TUNING_DB_TEST_WORKER_DB";
constexpr const char* kWorkerBarrierVariable = "CONVJIT_TUNING_DB_TEST_WORKER_FD";
constexpr const char* kWorkerIdVariable = "CONVJIT_TUNING_DB_TEST_WORKER_ID";
constexpr int kWorkerRecords = 50;

// ---- Helpers --------------------------------------------------------------------



ConvSpec dense_spec(int64_t c_in, int64_t c_out, int64_t hw, int64_t k = 3) {
  ConvSpec s;
  s.n = 1;
  s.c_in = c_in;
  s.c_out = c_out;
  s.h_in = s.w_in = hw;
  s.kh = s.kw = k;
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = k / 2;
  return s;
}

ConvSpec depthwise_spec(int64_t c, int64_t hw) {
  ConvSpec s = ConvSpec::depthwise(1, c, hw, hw, 1, 3, 3);
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 1;
  return s;
}

TuningRecord record_for(const ConvSpec& spec, double time_ms, const std::string& target = kTarget,
                        const std::string& codegen = kCodegen) {
  TuningRecord r;
  r.spec_key = canonical_key(spec);
  r.descriptor = print_descriptor(spec);
  r.target = target;
  r.schedule_template = "cpu_direct";
  r.schedule_params = "c=8,x=" + std::to_string(static_cast<int>(time_ms * 1000));
  r.time_ms = time_ms;
  r.max_error = 1.5e-7;
  r.default_time_ms = 2 * time_ms;
  r.convjit_version = "0.1.0";
  r.halide_version = "14.0.0";
  r.codegen = codegen;
  r.created_unix = 1700000000;
  return r;
}

std::shared_ptr<TuningDatabase> open_db(const std::string& path) {
  auto db = TuningDatabase::open(path);
  EXPECT_TRUE(db.ok()) << db.status().message();
  return db.ok() ? *db : nullptr;
}

std::vector<TuningRecord> all_records(TuningDatabase& db) {
  auto records = db.all();
  EXPECT_TRUE(records.ok()) << records.status().message();
  return records.ok() ? *records : std::vector<TuningRecord>();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// ---- Insert and best --------------------------------------------------------------

TEST(TuningDatabase, BestIsTheFastestRecordOfThatSpecTargetAndCodegen) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  const ConvSpec spec = dense_spec(64, 64, 56);
  ASSERT_TRUE(db->insert(record_for(spec, 3.0)).ok());
  ASSERT_TRUE(db->insert(record_for(spec, 1.0)).ok());
  ASSERT_TRUE(db->insert(record_for(spec, 2.0)).ok());
  // Faster, but for another target, another code generator or another spec.
  ASSERT_TRUE(db->insert(record_for(spec, 0.5, kOtherTarget)).ok());
  ASSERT_TRUE(db->insert(record_for(spec, 0.25, kTarget, "halide=14.0.0 convjit=fedcba9876543210")).ok());
  ASSERT_TRUE(db->insert(record_for(dense_spec(64, 128, 56), 0.1)).ok());

  auto best = db->best(canonical_key(spec), kTarget, kCodegen);
  ASSERT_TRUE(best.ok()) << best.status().message();
  ASSERT_TRUE(best->has_value());
  EXPECT_EQ(**best, record_for(spec, 1.0));

  auto other_target = db->best(canonical_key(spec), kOtherTarget, kCodegen);
  ASSERT_TRUE(other_target.ok() && other_target->has_value());
  EXPECT_EQ((*other_target)->time_ms, 0.5);

  auto untuned = db->best(canonical_key(dense_spec(3, 64, 224)), kTarget, kCodegen);
  ASSERT_TRUE(untuned.ok()) << untuned.status().message();
  EXPECT_FALSE(untuned->has_value());
  auto unknown_codegen = db->best(canonical_key(spec), kTarget, "halide=15.0.0 convjit=0");
  ASSERT_TRUE(unknown_codegen.ok());
  EXPECT_FALSE(unknown_codegen->has_value());
}

TEST(TuningDatabase, KeepsEveryRecordAsHistoryAndSkipsExactDuplicates) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  const ConvSpec spec = dense_spec(32, 32, 28);
  std::vector<TuningRecord> inserted;
  for (double t : {4.0, 2.0, 3.0}) {
    inserted.push_back(record_for(spec, t));
    ASSERT_TRUE(db->insert(inserted.back()).ok());
  }
  // The same measurement again is not new history.
  ASSERT_TRUE(db->insert(inserted[0]).ok());
  // A later measurement of the same schedule is.
  TuningRecord later = inserted[0];
  later.created_unix += 60;
  inserted.push_back(later);
  ASSERT_TRUE(db->insert(later).ok());
  EXPECT_EQ(all_records(*db), inserted);

  // And it survives reopening.
  db.reset();
  auto reopened = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(reopened);
  EXPECT_EQ(all_records(*reopened), inserted);
}

TEST(TuningDatabase, InsertRejectsInvalidRecordsNamingTheField) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  const ConvSpec spec = dense_spec(8, 8, 8);
  struct Case {
    const char* field;
    void (*damage)(TuningRecord*);
  };
  const Case cases[] = {
      {"spec_key", [](TuningRecord* r) { r->spec_key = "mb1ic8ih8oc8oh8kh3ph1"; }},
      {"spec_key", [](TuningRecord* r) { r->spec_key.replace(r->spec_key.find("kh=3"), 4, "kh=0"); }},
      // Valid, but not the canonical form (compute_mode means nothing for f32 data).
      {"spec_key",
       [](TuningRecord* r) {
         r->spec_key.replace(r->spec_key.find("compute_mode=default"), 20, "compute_mode=float32");
       }},
      {"target", [](TuningRecord* r) { r->target.clear(); }},
      {"schedule_template", [](TuningRecord* r) { r->schedule_template.clear(); }},
      {"codegen", [](TuningRecord* r) { r->codegen.clear(); }},
      {"time_ms", [](TuningRecord* r) { r->time_ms = 0; }},
      {"time_ms", [](TuningRecord* r) { r->time_ms = std::nan(""); }},
      {"max_error", [](TuningRecord* r) { r->max_error = -1; }},
      {"default_time_ms", [](TuningRecord* r) { r->default_time_ms = INFINITY; }},
  };
  for (const Case& c : cases) {
    TuningRecord r = record_for(spec, 1.0);
    c.damage(&r);
    const Status st = db->insert(r);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(st.message().find(std::string("field '") + c.field + "'"), std::string::npos) << st.message();
  }
  EXPECT_TRUE(all_records(*db).empty());
}

TEST(TuningDatabase, MakeTuningRecordStampsThisBuild) {
  const ConvSpec spec = dense_spec(16, 16, 14);
  const TuningRecord r = make_tuning_record(spec, kTarget);
  EXPECT_EQ(r.spec_key, canonical_key(spec));
  EXPECT_EQ(r.descriptor, print_descriptor(spec));
  EXPECT_EQ(r.target, kTarget);
  EXPECT_EQ(r.codegen, tuning_codegen_fingerprint());
  EXPECT_EQ(r.codegen.rfind("halide=" + r.halide_version + " convjit=", 0), 0u) << r.codegen;
  EXPECT_FALSE(r.convjit_version.empty());
  EXPECT_GT(r.created_unix, 1600000000);
}

// ---- Nearest ------------------------------------------------------------------------

TEST(TuningDatabase, NearestPrefersTheSameFamilyThenTheClosestShape) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  const ConvSpec near = dense_spec(64, 64, 56);
  const ConvSpec far = dense_spec(512, 512, 7);
  const ConvSpec other_kernel = dense_spec(64, 64, 56, 1);
  const ConvSpec depthwise = depthwise_spec(64, 56);  // closest shape, other family
  ASSERT_TRUE(db->insert(record_for(near, 2.0)).ok());
  ASSERT_TRUE(db->insert(record_for(near, 1.5)).ok());
  ASSERT_TRUE(db->insert(record_for(far, 0.5)).ok());
  ASSERT_TRUE(db->insert(record_for(other_kernel, 0.2)).ok());
  ASSERT_TRUE(db->insert(record_for(depthwise, 0.1)).ok());
  // Closer still, but on another target or from another code generator.
  ASSERT_TRUE(db->insert(record_for(dense_spec(64, 64, 52), 1.0, kOtherTarget)).ok());
  ASSERT_TRUE(db->insert(record_for(dense_spec(64, 64, 52), 1.0, kTarget, "other")).ok());

  auto found = db->nearest(dense_spec(64, 128, 56), kTarget, kCodegen);
  ASSERT_TRUE(found.ok()) << found.status().message();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, record_for(near, 1.5));  // the neighbour's best record

  auto small = db->nearest(dense_spec(384, 512, 14), kTarget, kCodegen);
  ASSERT_TRUE(small.ok() && small->has_value());
  EXPECT_EQ((*small)->spec_key, canonical_key(far));

  auto one_by_one = db->nearest(dense_spec(64, 128, 56, 1), kTarget, kCodegen);
  ASSERT_TRUE(one_by_one.ok() && one_by_one->has_value());
  EXPECT_EQ((*one_by_one)->spec_key, canonical_key(other_kernel));

  auto dw = db->nearest(depthwise_spec(128, 28), kTarget, kCodegen);
  ASSERT_TRUE(dw.ok() && dw->has_value());
  EXPECT_EQ((*dw)->spec_key, canonical_key(depthwise));

  // A tuned spec is its own nearest.
  auto self = db->nearest(far, kTarget, kCodegen);
  ASSERT_TRUE(self.ok() && self->has_value());
  EXPECT_EQ((*self)->spec_key, canonical_key(far));
}

TEST(TuningDatabase, NearestFindsNothingOutsideTheFamily) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->insert(record_for(dense_spec(64, 64, 56), 1.0)).ok());
  ASSERT_TRUE(db->insert(record_for(depthwise_spec(64, 56), 1.0)).ok());

  ConvSpec grouped = dense_spec(64, 64, 56);
  grouped.groups = 4;
  ConvSpec transposed = dense_spec(64, 64, 28);
  transposed.transposed = true;
  ConvSpec half = dense_spec(64, 64, 56);
  half.dtype = DataType::kFloat16;
  for (const ConvSpec& spec : {grouped, transposed, half}) {
    ASSERT_TRUE(validate(spec).ok()) << validate(spec).message();
    auto found = db->nearest(spec, kTarget, kCodegen);
    ASSERT_TRUE(found.ok()) << found.status().message();
    EXPECT_FALSE(found->has_value()) << print_descriptor(spec) << " found " << (*found)->descriptor;
  }
  // Nothing on another target either.
  auto other = db->nearest(dense_spec(64, 64, 56), kOtherTarget, kCodegen);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  // An invalid spec is an error, not a miss.
  auto invalid = db->nearest(dense_spec(0, 64, 56), kTarget, kCodegen);
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidSpec);
}

// ---- JSON lines -----------------------------------------------------------------------

TEST(TuningDatabase, ExportThenImportIntoAFreshDatabaseGivesEqualRecords) {
  TempDir dir("convjit_tuning_db_test");
  auto source = open_db(dir.file("a/tuning.sqlite"));
  ASSERT_TRUE(source);
  ConvSpec transposed = dense_spec(16, 8, 8, 4);
  transposed.transposed = true;
  transposed.stride_h = transposed.stride_w = 2;
  std::vector<TuningRecord> records = {record_for(dense_spec(64, 64, 56), 0.1),
                                       record_for(depthwise_spec(32, 112), 1.0 / 3.0, kOtherTarget),
                                       record_for(transposed, 12345.678901234567)};
  // Text that needs escaping survives the round trip.
  records[1].schedule_params = "quote=\",backslash=\\,newline=\n,tab=\t,bell=\x07,utf8=\xc3\xa9";
  records[2].max_error = 1e-300;
  records[2].default_time_ms = 0;
  records[2].created_unix = 4102444800;
  for (const TuningRecord& r : records) ASSERT_TRUE(source->insert(r).ok());

  const std::string file = dir.file("records.jsonl");
  ASSERT_TRUE(source->export_jsonl(file).ok());
  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), records.size());
  EXPECT_NE(lines[1].find("\\\"") , std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\\u0007"), std::string::npos) << lines[1];

  auto copy = open_db(dir.file("b/tuning.sqlite"));
  ASSERT_TRUE(copy);
  auto imported = copy->import_jsonl(file);
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  EXPECT_EQ(*imported, 3);
  EXPECT_EQ(all_records(*copy), records);

  // Importing again adds nothing; so does importing into the source.
  auto again = copy->import_jsonl(file);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, 0);
  auto into_source = source->import_jsonl(file);
  ASSERT_TRUE(into_source.ok());
  EXPECT_EQ(*into_source, 0);
  EXPECT_EQ(all_records(*copy).size(), 3u);
}

TEST(TuningDatabase, ImportReadsHandWrittenJson) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  const ConvSpec spec = dense_spec(8, 8, 8);
  // Any field order, spaces, blank lines, \u escapes (with a surrogate pair), exponents.
  const std::string line = "  { \"created_unix\" : 1700000000, \"time_ms\": 1.25e0, \"max_error\":0,"
                           "\"default_time_ms\":2.5, \"spec_key\":\"" + canonical_key(spec) +
                           "\", \"descriptor\":\"\\u0064\\ud83d\\ude00\", \"target\":\"" + kTarget +
                           "\", \"schedule_template\":\"cpu_direct\", \"schedule_params\":\"x\\/y\","
                           "\"convjit_version\":\"0.1.0\",\"halide_version\":\"14.0.0\",\"codegen\":\"" + kCodegen +
                           "\" }\r";
  write_file(dir.file("in.jsonl"), "\n" + line + "\n\n");
  auto imported = db->import_jsonl(dir.file("in.jsonl"));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  EXPECT_EQ(*imported, 1);
  const std::vector<TuningRecord> records = all_records(*db);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].descriptor, "d\xf0\x9f\x98\x80");
  EXPECT_EQ(records[0].schedule_params, "x/y");
  EXPECT_EQ(records[0].time_ms, 1.25);
}

TEST(TuningDatabase, ImportOfAMalformedLineNamesFileLineAndFieldAndImportsNothing) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->insert(record_for(dense_spec(4, 4, 4), 1.0)).ok());
  auto exported = open_db(dir.file("source.sqlite"));
  ASSERT_TRUE(exported);
  ASSERT_TRUE(exported->insert(record_for(dense_spec(8, 8, 8), 1.0)).ok());
  ASSERT_TRUE(exported->insert(record_for(dense_spec(8, 16, 8), 1.0)).ok());
  ASSERT_TRUE(exported->export_jsonl(dir.file("good.jsonl")).ok());
  const std::vector<std::string> good = read_lines(dir.file("good.jsonl"));
  ASSERT_EQ(good.size(), 2u);

  auto replace = [](std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  };
  const std::string base = good[1];
  struct Case {
    std::string line;
    std::string expected;  // in the message after "FILE:3: "
  };
  const Case cases[] = {
      {"not json", "expected '{'"},
      {base.substr(0, base.size() - 1), "expected ',' or '}'"},
      {replace(base, "\"time_ms\":1", "\"time_ms\":\"1\""), "field 'time_ms': expected a number"},
      {replace(base, "\"time_ms\":1", "\"time_ms\":-1"), "field 'time_ms'"},
      {replace(base, "\"time_ms\":1", "\"time_ms\":1e999"), "field 'time_ms'"},
      {replace(base, "\"time_ms\":1", "\"time_ms\":1."), "field 'time_ms': malformed number"},
      {replace(base, "\"target\":", "\"tar\":"), "field 'target': missing"},
      {replace(base, "\"created_unix\":1700000000", "\"created_unix\":1.5"), "field 'created_unix'"},
      {replace(base, "\"codegen\":", "\"extra\":1,\"codegen\":"), "field 'extra': not a tuning record field"},
      {replace(base, "\"codegen\":", "\"codegen\":\"a\",\"codegen\":"), "field 'codegen': appears twice"},
      {replace(base, "c_in=8", "c_in=x"), "field 'spec_key'"},
      {replace(base, "\"schedule_params\":\"", "\"schedule_params\":\"\\q"), "field 'schedule_params': bad escape"},
      {replace(base, "\"max_error\":", "\"max_error\":true,\"x\":"), "field 'max_error': expected a string or a number"},
      {base + " x", "unexpected text after the object"},
  };
  for (const Case& c : cases) {
    const std::string file = dir.file("bad.jsonl");
    write_file(file, good[0] + "\n\n" + c.line + "\n" + good[1] + "\n");
    auto imported = db->import_jsonl(file);
    ASSERT_FALSE(imported.ok()) << c.line;
    EXPECT_EQ(imported.status().code(), StatusCode::kInvalidArgument);
    const std::string& message = imported.status().message();
    EXPECT_EQ(message.rfind(file + ":3: ", 0), 0u) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << "expected '" << c.expected << "' in: " << message;
    EXPECT_EQ(all_records(*db).size(), 1u) << "a failed import must add nothing: " << c.line;
  }
  auto missing = db->import_jsonl(dir.file("absent.jsonl"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// ---- Versions, ownership and modes ------------------------------------------------------

TEST(TuningDatabase, RefusesANewerSchemaVersionNamingBothVersions) {
  TempDir dir("convjit_tuning_db_test");
  const std::string path = dir.file("tuning.sqlite");
  {
    auto db = open_db(path);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->insert(record_for(dense_spec(8, 8, 8), 1.0)).ok());
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE meta SET value = '2' WHERE name = 'schema_version'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);

  auto db = TuningDatabase::open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(db.status().message().find("schema version 2"), std::string::npos) << db.status().message();
  EXPECT_NE(db.status().message().find("version 1"), std::string::npos) << db.status().message();
  EXPECT_NE(db.status().message().find(path), std::string::npos) << db.status().message();
}

TEST(TuningDatabase, RefusesAFileThatIsNotADatabase) {
  TempDir dir("convjit_tuning_db_test");
  const std::string path = dir.file("tuning.sqlite");
  write_file(path, std::string(4096, 'x'));
  chmod(path.c_str(), 0600);
  auto db = TuningDatabase::open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find(path), std::string::npos) << db.status().message();
}

TEST(TuningDatabase, RefusesAFileOrDirectoryWritableByOthers) {
  TempDir dir("convjit_tuning_db_test");
  const std::string path = dir.file("tuning.sqlite");
  ASSERT_TRUE(open_db(path));
  ASSERT_EQ(chmod(path.c_str(), 0660), 0);
  auto group_writable = TuningDatabase::open(path);
  ASSERT_FALSE(group_writable.ok());
  EXPECT_NE(group_writable.status().message().find("writable by group or others (mode 0660)"), std::string::npos)
      << group_writable.status().message();
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(open_db(path));

  // A directory others may write: they could replace the file.
  const std::string shared = dir.file("shared");
  ASSERT_EQ(mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  auto in_shared = TuningDatabase::open(shared + "/tuning.sqlite");
  ASSERT_FALSE(in_shared.ok());
  EXPECT_NE(in_shared.status().message().find("refusing tuning database directory"), std::string::npos)
      << in_shared.status().message();
  // ... and says what to do instead.
  EXPECT_NE(in_shared.status().message().find("mkdir -m 700"), std::string::npos) << in_shared.status().message();

  // A symbolic link in place of the file.
  ASSERT_EQ(symlink(path.c_str(), dir.file("link.sqlite").c_str()), 0);
  auto linked = TuningDatabase::open(dir.file("link.sqlite"));
  ASSERT_FALSE(linked.ok());
  EXPECT_NE(linked.status().message().find("not a regular file"), std::string::npos) << linked.status().message();
}

TEST(TuningDatabase, RefusesAFileOwnedByAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  TempDir dir("convjit_tuning_db_test");
  const std::string path = dir.file("tuning.sqlite");
  ASSERT_TRUE(open_db(path));
  ASSERT_EQ(chown(path.c_str(), 12345, 12345), 0);
  auto db = TuningDatabase::open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("owned by uid 12345"), std::string::npos) << db.status().message();
}

TEST(TuningDatabase, CreatesItsDirectoryPrivate) {
  TempDir dir("convjit_tuning_db_test");
  ASSERT_TRUE(open_db(dir.file("x/y/tuning.sqlite")));
  struct stat st;
  ASSERT_EQ(stat(dir.file("x/y").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(dir.file("x/y/tuning.sqlite").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0022, 0u);
}

TEST(TuningDatabase, DefaultPathIsBesideTheKernelCacheUnlessSetOrOff) {
  ScopedEnv cache_dir("CONVJIT_CACHE_DIR", "/some/cache");
  ScopedEnv cache("CONVJIT_CACHE", "off");  // turns off kernels on disk, not tuning
  {
    ScopedEnv unset("CONVJIT_TUNING_DB", nullptr);
    EXPECT_EQ(TuningDatabase::default_path(), "/some/cache/tuning.sqlite");
  }
  {
    ScopedEnv set("CONVJIT_TUNING_DB", "/elsewhere/t.sqlite");
    EXPECT_EQ(TuningDatabase::default_path(), "/elsewhere/t.sqlite");
  }
  {
    ScopedEnv off("CONVJIT_TUNING_DB", "off");
    EXPECT_EQ(TuningDatabase::default_path(), "");
  }
}

// ---- Concurrency ----------------------------------------------------------------------------

TEST(TuningDatabase, ThreadsShareOneDatabase) {
  TempDir dir("convjit_tuning_db_test");
  auto db = open_db(dir.file("tuning.sqlite"));
  ASSERT_TRUE(db);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&db, t] {
      const ConvSpec spec = dense_spec(8 * (t + 1), 8, 8);
      for (int i = 0; i < 25; ++i) {
        EXPECT_TRUE(db->insert(record_for(spec, 1.0 + i)).ok());
        auto best = db->best(canonical_key(spec), kTarget, kCodegen);
        EXPECT_TRUE(best.ok() && best->has_value() && (*best)->time_ms == 1.0);
        EXPECT_TRUE(db->nearest(spec, kTarget, kCodegen).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(all_records(*db).size(), 100u);
}

// The worker of ConcurrentProcessesInsertWithoutLosingRecords, run in child processes.
TEST(TuningDatabase, ConcurrentProcessWorker) {
  if (!wait_for_other_workers(kWorkerBarrierVariable)) {
    GTEST_SKIP() << "runs only as a child of TuningDatabase.ConcurrentProcessesInsertWithoutLosingRecords";
  }
  const int id = std::atoi(std::getenv(kWorkerIdVariable));
  // Every worker creates the database at once: schema creation races too.
  auto db = TuningDatabase::open(std::getenv(kWorkerDbVariable));
  ASSERT_TRUE(db.ok()) << db.status().message();
  const ConvSpec spec = dense_spec(8 * (id + 1), 16, 8);
  for (int i = 0; i < kWorkerRecords; ++i) {
    TuningRecord r = record_for(spec, 1.0 + i);
    r.schedule_params = "worker=" + std::to_string(id) + ",i=" + std::to_string(i);
    const Status st = (*db)->insert(r);
    ASSERT_TRUE(st.ok()) << st.message();
    // Readers run alongside the writers.
    auto best = (*db)->best(r.spec_key, kTarget, kCodegen);
    ASSERT_TRUE(best.ok()) << best.status().message();
    ASSERT_TRUE(best->has_value());
    EXPECT_EQ((*best)->time_ms, 1.0);
  }
}

TEST(TuningDatabase, ConcurrentProcessesInsertWithoutLosingRecords) {
  constexpr int kWorkers = 4;
  TempDir dir("convjit_tuning_db_test");
  const std::string path = dir.file("db/tuning.sqlite");
  const auto results = run_workers_together(
      "TuningDatabase.ConcurrentProcessWorker", kWorkers, kWorkerBarrierVariable, {},
      [&](int i) {
        return std::vector<std::string>{std::string(kWorkerDbVariable) + "=" + path,
                                        std::string(kWorkerIdVariable) + "=" + std::to_string(i)};
      },
      dir.path());
  ASSERT_EQ(results.size(), static_cast<size_t>(kWorkers));
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].succeeded()) << "worker " << i << " ended with status " << results[i].status << ":\n"
                                        << results[i].output;
    // SQLite's "database is locked" must never reach a worker.
    EXPECT_EQ(results[i].output.find("locked"), std::string::npos) << results[i].output;
  }

  auto db = open_db(path);
  ASSERT_TRUE(db);
  std::set<std::string> params;
  for (const TuningRecord& r : all_records(*db)) params.insert(r.schedule_params);
  EXPECT_EQ(params.size(), static_cast<size_t>(kWorkers * kWorkerRecords));
  for (int w = 0; w < kWorkers; ++w) {
    for (int i = 0; i < kWorkerRecords; ++i) {
      EXPECT_EQ(params.count("worker=" + std::to_string(w) + ",i=" + std::to_string(i)), 1u);
    }
  }
}

}  // namespace
}  // namespace convjit
