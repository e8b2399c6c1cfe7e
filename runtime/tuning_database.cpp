// The tuning database on SQLite: schema and its version, guarded opening, record
// checks, best and nearest lookups, and the JSON-lines exchange format.
//
// Schema version 1:
//   meta(name PRIMARY KEY, value)        schema_version = 1
//   records(id, the TuningRecord fields, family + shape columns)
// The family and shape columns (family, n, c_in, c_out, h_in, w_in, kh, kw, strides,
// dilations) are derived from spec_key on insert, so nearest() needs no parsing of
// stored keys. A unique index over every record field makes exact duplicates no-ops.
#include "convjit/tuning_database.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "code_fingerprint.h"
#include "convjit/descriptor.h"
#include "convjit/disk_cache.h"
#include "private_files.h"

namespace convjit {
namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 10000;
constexpr const char* kDefaultFileName = "tuning.sqlite";

std::string errno_text() { return std::strerror(errno); }




// ---- Spec keys ----------------------------------------------------------------

bool parse_int(const std::string& text, int64_t* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *value = v;
  return true;
}

bool parse_pair(const std::string& text, char separator, int64_t* a, int64_t* b) {
  const size_t at = text.find(separator);
  return at != std::string::npos && parse_int(text.substr(0, at), a) && parse_int(text.substr(at + 1), b);
}

// The spec a canonical_key() names. Fails unless the key is exactly the canonical key
// of a valid spec, so stored keys always match the runtime's lookups.
StatusOr<ConvSpec> parse_spec_key(const std::string& key) {
  std::istringstream in(key);
  std::string token;
  in >> token;
  if (token != "conv2d.v1") return Status::invalid_argument("'" + key + "' is not a conv2d.v1 canonical spec key");
  std::map<std::string, std::string> fields;
  while (in >> token) {
    const size_t eq = token.find('=');
    if (eq == std::string::npos) return Status::invalid_argument("'" + token + "' in the spec key is not name=value");
    fields[token.substr(0, eq)] = token.substr(eq + 1);
  }
  ConvSpec s;
  bool ok = true;
  auto get = [&](const char* name) -> std::string {
    auto it = fields.find(name);
    if (it == fields.end()) {
      ok = false;
      return "";
    }
    return it->second;
  };
  int64_t transposed = 0, bias = 0;
  ok = ok && parse_int(get("n"), &s.n) && parse_int(get("c_in"), &s.c_in) && parse_int(get("h_in"), &s.h_in) &&
       parse_int(get("w_in"), &s.w_in) && parse_int(get("c_out"), &s.c_out) && parse_int(get("kh"), &s.kh) &&
       parse_int(get("kw"), &s.kw) && parse_pair(get("stride"), 'x', &s.stride_h, &s.stride_w) &&
       parse_pair(get("dilation"), 'x', &s.dilation_h, &s.dilation_w) && parse_int(get("groups"), &s.groups) &&
       parse_int(get("transposed"), &transposed) &&
       parse_pair(get("output_padding"), 'x', &s.output_padding_h, &s.output_padding_w) &&
       parse_int(get("bias"), &bias);
  if (ok) {
    std::istringstream pads(get("pad"));
    std::string pad;
    int64_t* targets[] = {&s.pad_top, &s.pad_bottom, &s.pad_left, &s.pad_right};
    int count = 0;
    while (ok && std::getline(pads, pad, ',')) ok = count < 4 && parse_int(pad, targets[count++]);
    ok = ok && count == 4;
  }
  if (!ok) return Status::invalid_argument("'" + key + "' is not a canonical spec key (a field is missing or malformed)");
  s.transposed = transposed != 0;
  s.has_bias = bias != 0;
  auto padding_mode = parse_padding_mode(get("padding_mode"));
  auto conv_mode = parse_conv_mode(get("conv_mode"));
  auto dtype = parse_data_type(get("dtype"));
  auto compute_mode = parse_compute_mode(get("compute_mode"));
  auto wtag = parse_weight_layout(get("wtag"));
  for (const Status* st : {&padding_mode.status(), &conv_mode.status(), &dtype.status(), &compute_mode.status(),
                           &wtag.status()}) {
    if (!st->ok()) return Status::invalid_argument("spec key '" + key + "': " + st->message());
  }
  s.padding_mode = *padding_mode;
  s.conv_mode = *conv_mode;
  s.dtype = *dtype;
  s.compute_mode = *compute_mode;
  s.weight_layout = *wtag;
  if (Status st = validate(s); !st.ok()) return Status::invalid_argument("spec key '" + key + "': " + st.message());
  if (canonical_key(s) != key)
    return Status::invalid_argument("'" + key + "' is not canonical; its canonical form is '" + canonical_key(s) + "'");
  return s;
}

// What nearest() only compares within: schedules of another family do not transfer.
std::string family_of(const ConvSpec& s) {
  const char* grouping = s.groups == 1 ? "dense" : is_depthwise(s) ? "depthwise" : "grouped";
  return std::string(s.transposed ? "transposed" : "forward") + "/" + grouping + "/" + to_string(s.dtype);
}

// ---- Record checks --------------------------------------------------------------

// "" when the record may be stored, else "field 'NAME': why".
std::string record_problem(const TuningRecord& r, ConvSpec* spec) {
  auto parsed = parse_spec_key(r.spec_key);
  if (!parsed.ok()) return "field 'spec_key': " + parsed.status().message();
  *spec = *parsed;
  const std::pair<const char*, const std::string*> required[] = {
      {"target", &r.target},           {"schedule_template", &r.schedule_template},
      {"convjit_version", &r.convjit_version}, {"halide_version", &r.halide_version},
      {"codegen", &r.codegen}};
  for (const auto& [name, value] : required) {
    if (value->empty()) return std::string("field '") + name + "': must not be empty";
  }
  auto number = [](const char* name, double v, bool positive) -> std::string {
    if (!std::isfinite(v) || v < 0 || (positive && v == 0)) {
      std::ostringstream m;
      m << "field '" << name << "': " << v << " must be a finite number " << (positive ? "> 0" : ">= 0");
      return m.str();
    }
    return "";
  };
  if (std::string p = number("time_ms", r.time_ms, true); !p.empty()) return p;
  if (std::string p = number("max_error", r.max_error, false); !p.empty()) return p;
  if (std::string p = number("default_time_ms", r.default_time_ms, false); !p.empty()) return p;
  if (r.created_unix < 0) return "field 'created_unix': " + std::to_string(r.created_unix) + " must be >= 0";
  return "";
}

// ---- JSON lines -----------------------------------------------------------------

void write_json_string(std::ostream& out, const std::string& s) {
  out << '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out << "\\\""; break;
      case '\\': out << "\\\\"; break;
      case '\n': out << "\\n"; break;
      case '\r': out << "\\r"; break;
      case '\t': out << "\\t"; break;
      case '\b': out << "\\b"; break;
      case '\f': out << "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out << buf;
        } else {
          out << static_cast<char>(c);
        }
    }
  }
  out << '"';
}

// Shortest text that reads back as the same double.
std::string number_text(double v) {
  char buf[32];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string to_json(const TuningRecord& r) {
  std::ostringstream out;
  auto str = [&](const char* name, const std::string& value, bool first = false) {
    out << (first ? "{" : ",") << '"' << name << "\":";
    write_json_string(out, value);
  };
  auto num = [&](const char* name, const std::string& value) { out << ",\"" << name << "\":" << value; };
  str("spec_key", r.spec_key, true);
  str("descriptor", r.descriptor);
  str("target", r.target);
  str("schedule_template", r.schedule_template);
  str("schedule_params", r.schedule_params);
  num("time_ms", number_text(r.time_ms));
  num("max_error", number_text(r.max_error));
  num("default_time_ms", number_text(r.default_time_ms));
  str("convjit_version", r.convjit_version);
  str("halide_version", r.halide_version);
  str("codegen", r.codegen);
  num("created_unix", std::to_string(r.created_unix));
  out << "}";
  return out.str();
}

// A JSON value of a flat object: a string or a number (kept as its text).
struct JsonValue {
  bool is_string = false;
  std::string text;
};

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Reads one flat JSON object of string and number values. Enough JSON for records:
// nested values, true/false/null are errors.
class FlatJsonReader {
 public:
  explicit FlatJsonReader(const std::string& text) : s_(text) {}

  // "" on success, else what is wrong (and where, as a column).
  std::string read(std::map<std::string, JsonValue>* object) {
    skip_space();
    if (!eat('{')) return error("expected '{'");
    skip_space();
    if (eat('}')) return finish();
    for (;;) {
      skip_space();
      std::string name;
      if (std::string e = read_string(&name); !e.empty()) return e;
      if (object->count(name)) return "field '" + name + "': appears twice";
      skip_space();
      if (!eat(':')) return error("expected ':' after \"" + name + "\"");
      skip_space();
      JsonValue value;
      if (at('"')) {
        value.is_string = true;
        if (std::string e = read_string(&value.text); !e.empty()) return "field '" + name + "': " + e;
      } else if (std::string e = read_number(&value.text); !e.empty()) {
        return "field '" + name + "': " + e;
      }
      (*object)[name] = value;
      skip_space();
      if (eat('}')) return finish();
      if (!eat(',')) return error("expected ',' or '}'");
    }
  }

 private:
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool eat(char c) {
    if (!at(c)) return false;
    ++i_;
    return true;
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  std::string error(const std::string& what) const {
    return what + " at column " + std::to_string(i_ + 1);
  }
  std::string finish() {
    skip_space();
    return i_ == s_.size() ? "" : error("unexpected text after the object");
  }

  bool hex4(uint32_t* v) {
    if (i_ + 4 > s_.size()) return false;
    *v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_ + k];
      *v <<= 4;
      if (c >= '0' && c <= '9') *v |= c - '0';
      else if (c >= 'a' && c <= 'f') *v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') *v |= c - 'A' + 10;
      else return false;
    }
    i_ += 4;
    return true;
  }

  std::string read_string(std::string* out) {
    if (!eat('"')) return error("expected a string");
    for (;;) {
      if (i_ >= s_.size()) return error("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return "";
      if (c < 0x20) return error("control character in a string (write it escaped)");
      if (c != '\\') {
        *out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) return error("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return error("bad \\u escape");
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            uint32_t low;
            if (!(eat('\\') && eat('u') && hex4(&low) && low >= 0xDC00 && low < 0xE000))
              return error("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return error("unpaired surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return error(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  // JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  std::string read_number(std::string* out) {
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > from;
    };
    eat('-');
    if (eat('0')) {
    } else if (!digits()) {
      return error("expected a string or a number");
    }
    if (eat('.') && !digits()) return error("malformed number");
    if (at('e') || at('E')) {
      ++i_;
      if (!eat('+')) eat('-');
      if (!digits()) return error("malformed number");
    }
    *out = s_.substr(start, i_ - start);
    return "";
  }

  const std::string& s_;
  size_t i_ = 0;
};

// "" on success, else "field 'NAME': why" (or a syntax error with its column).
std::string record_from_json(const std::string& line, TuningRecord* r) {
  std::map<std::string, JsonValue> object;
  if (std::string e = FlatJsonReader(line).read(&object); !e.empty()) return e;
  auto take = [&](const char* name, bool want_string, std::string* text) -> std::string {
    auto it = object.find(name);
    if (it == object.end()) return std::string("field '") + name + "': missing";
    if (it->second.is_string != want_string)
      return std::string("field '") + name + "': expected a " + (want_string ? "string" : "number");
    *text = it->second.text;
    object.erase(it);
    return "";
  };
  auto number = [&](const char* name, double* value) -> std::string {
    std::string text;
    if (std::string e = take(name, false, &text); !e.empty()) return e;
    errno = 0;
    *value = std::strtod(text.c_str(), nullptr);
    if (errno == ERANGE && std::isinf(*value)) return std::string("field '") + name + "': " + text + " is out of range";
    return "";
  };
  const std::pair<const char*, std::string*> strings[] = {
      {"spec_key", &r->spec_key},       {"descriptor", &r->descriptor},
      {"target", &r->target},           {"schedule_template", &r->schedule_template},
      {"schedule_params", &r->schedule_params}, {"convjit_version", &r->convjit_version},
      {"halide_version", &r->halide_version},   {"codegen", &r->codegen}};
  for (const auto& [name, value] : strings) {
    if (std::string e = take(name, true, value); !e.empty()) return e;
  }
  if (std::string e = number("time_ms", &r->time_ms); !e.empty()) return e;
  if (std::string e = number("max_error", &r->max_error); !e.empty()) return e;
  if (std::string e = number("default_time_ms", &r->default_time_ms); !e.empty()) return e;
  std::string created;
  if (std::string e = take("created_unix", false, &created); !e.empty()) return e;
  int64_t created_value = 0;
  if (!parse_int(created, &created_value)) return "field 'created_unix': " + created + " is not an integer";
  r->created_unix = created_value;
  if (!object.empty()) return "field '" + object.begin()->first + "': not a tuning record field";
  return "";
}

// ---- SQLite helpers --------------------------------------------------------------

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool prepared() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() const { return stmt_; }
  void bind(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }
  std::string text(int i) const {
    const unsigned char* p = sqlite3_column_text(stmt_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, i)) : std::string();
  }
  double real(int i) const { return sqlite3_column_double(stmt_, i); }
  int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

constexpr const char* kRecordColumns =
    "spec_key, descriptor, target, schedule_template, schedule_params, time_ms, max_error, default_time_ms, "
    "convjit_version, halide_version, codegen, created_unix";

TuningRecord read_record(const Statement& s) {
  TuningRecord r;
  r.spec_key = s.text(0);
  r.descriptor = s.text(1);
  r.target = s.text(2);
  r.schedule_template = s.text(3);
  r.schedule_params = s.text(4);
  r.time_ms = s.real(5);
  r.max_error = s.real(6);
  r.default_time_ms = s.real(7);
  r.convjit_version = s.text(8);
  r.halide_version = s.text(9);
  r.codegen = s.text(10);
  r.created_unix = s.integer(11);
  return r;
}

const char* const kCreateSchema[] = {
    "CREATE TABLE IF NOT EXISTS records ("
    " id INTEGER PRIMARY KEY,"
    " spec_key TEXT NOT NULL, descriptor TEXT NOT NULL, target TEXT NOT NULL,"
    " schedule_template TEXT NOT NULL, schedule_params TEXT NOT NULL,"
    " time_ms REAL NOT NULL, max_error REAL NOT NULL, default_time_ms REAL NOT NULL,"
    " convjit_version TEXT NOT NULL, halide_version TEXT NOT NULL, codegen TEXT NOT NULL,"
    " created_unix INTEGER NOT NULL,"
    " family TEXT NOT NULL, n INTEGER NOT NULL, c_in INTEGER NOT NULL, c_out INTEGER NOT NULL,"
    " h_in INTEGER NOT NULL, w_in INTEGER NOT NULL, kh INTEGER NOT NULL, kw INTEGER NOT NULL,"
    " stride_h INTEGER NOT NULL, stride_w INTEGER NOT NULL,"
    " dilation_h INTEGER NOT NULL, dilation_w INTEGER NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS records_unique ON records (spec_key, target, schedule_template,"
    " schedule_params, time_ms, max_error, default_time_ms, convjit_version, halide_version, codegen,"
    " created_unix, descriptor)",
    "CREATE INDEX IF NOT EXISTS records_best ON records (spec_key, target, codegen, time_ms)",
    "CREATE INDEX IF NOT EXISTS records_family ON records (target, codegen, family)",
};

double log2_ratio(int64_t a, int64_t b) { return std::fabs(std::log2(static_cast<double>(a) / static_cast<double>(b))); }

}  // namespace

bool TuningRecord::operator==(const TuningRecord& o) const {
  return spec_key == o.spec_key && descriptor == o.descriptor && target == o.target &&
         schedule_template == o.schedule_template && schedule_params == o.schedule_params && time_ms == o.time_ms &&
         max_error == o.max_error && default_time_ms == o.default_time_ms && convjit_version == o.convjit_version &&
         halide_version == o.halide_version && codegen == o.codegen && created_unix == o.created_unix;
}

std::string tuning_codegen_fingerprint() {
  return std::string("halide=") + CONVJIT_HALIDE_VERSION + " convjit=" + codegen_fingerprint();
}

TuningRecord make_tuning_record(const ConvSpec& spec, const std::string& target) {
  TuningRecord r;
  r.spec_key = canonical_key(spec);
  r.descriptor = print_descriptor(canonicalize(spec));
  r.target = target;
  r.convjit_version = CONVJIT_VERSION;
  r.halide_version = CONVJIT_HALIDE_VERSION;
  r.codegen = tuning_codegen_fingerprint();
  r.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return r;
}

class TuningDatabase::Impl {
 public:
  explicit Impl(std::string path) : path_(std::move(path)) {}
  ~Impl() {
    if (db_) sqlite3_close_v2(db_);
  }

  Status fail(const std::string& what) {
    last_error_ = sqlite3_errcode(db_);
    return Status::internal(what + " in tuning database '" + path_ + "': " + sqlite3_errmsg(db_));
  }

  Status exec(const char* sql) {
    char* message = nullptr;
    last_error_ = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
    if (last_error_ != SQLITE_OK) {
      const std::string text = message ? message : sqlite3_errmsg(db_);
      sqlite3_free(message);
      return Status::internal(std::string("'") + sql + "' failed in tuning database '" + path_ + "': " + text);
    }
    return Status();
  }

  // The file's ownership and mode, checked through the directory descriptor that
  // open() verified (ours, writable by no one else), so nobody else can swap the
  // file between check and use.
  // fstat on a descriptor of our own is avoided on purpose: closing any descriptor of
  // the file would drop the POSIX locks SQLite holds on it for other connections of
  // this process.
  Status check_file(int dir_fd, const std::string& name, bool must_exist) const {
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT && !must_exist) return Status();
      return Status::internal("cannot stat tuning database '" + path_ + "': " + errno_text());
    }
    if (!S_ISREG(st.st_mode)) return Status::invalid_argument("refusing tuning database '" + path_ + "': not a regular file");
    if (std::string problem = ownership_problem(st); !problem.empty())
      return Status::invalid_argument("refusing tuning database '" + path_ + "': " + problem);
    return Status();
  }

  Status open() {
    const size_t slash = path_.rfind('/');
    const std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
    const std::string name = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    if (name.empty()) return Status::invalid_argument("tuning database path '" + path_ + "' names a directory, not a file");
    std::string error;
    if (!make_private_directories(directory, &error)) return Status::internal("tuning database: " + error);
    const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return Status::internal("cannot open directory '" + directory + "': " + errno_text());
    Status status = [&]() -> Status {
      struct stat st;
      if (fstat(dir_fd, &st) != 0) return Status::internal("cannot stat '" + directory + "': " + errno_text());
      if (std::string problem = ownership_problem(st); !problem.empty())
        return Status::invalid_argument("refusing tuning database directory '" + directory + "': " + problem +
                                        " (SQLite writes side files beside the database; put it in a directory "
                                        "only you can write, e.g. one made with mkdir -m 700)");
      CONVJIT_RETURN_IF_ERROR(check_file(dir_fd, name, false));
      // SQLite names its side files after the database; a planted one would be replayed.
      CONVJIT_RETURN_IF_ERROR(check_file(dir_fd, name + "-wal", false));
      CONVJIT_RETURN_IF_ERROR(check_file(dir_fd, name + "-shm", false));
      const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX;
      if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
        return Status::internal("cannot open tuning database '" + path_ + "': " + why);
      }
      sqlite3_extended_result_codes(db_, 1);
      sqlite3_busy_timeout(db_, kBusyTimeoutMs);
      CONVJIT_RETURN_IF_ERROR(initialize());
      // The file now exists (SQLite creates it on first use): check what was opened.
      return check_file(dir_fd, name, true);
    }();
    ::close(dir_fd);
    return status;
  }

  // Runs `body` again while another process holds a lock SQLite cannot wait for
  // (changing the journal mode, a deferred read racing schema creation), up to the
  // busy timeout.
  template <typename Body>
  Status retry_busy(Body body) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    for (;;) {
      last_error_ = SQLITE_OK;
      Status st = body();
      const int code = last_error_ & 0xff;
      if (st.ok() || (code != SQLITE_BUSY && code != SQLITE_LOCKED) || std::chrono::steady_clock::now() > deadline)
        return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // Reads the schema version (0: no schema yet).
  StatusOr<int> schema_version() {
    Statement has_meta(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
    if (!has_meta.prepared()) return fail("reading the schema");
    const int rc = has_meta.step();
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return fail("reading the schema");
    Statement version(db_, "SELECT value FROM meta WHERE name = 'schema_version'");
    if (!version.prepared()) return fail("reading the schema version");
    if (version.step() != SQLITE_ROW) return 0;
    int64_t v = 0;
    if (!parse_int(version.text(0), &v) || v < 1)
      return Status::invalid_argument("tuning database '" + path_ + "' has a malformed schema version '" +
                                      version.text(0) + "'");
    return static_cast<int>(v);
  }

  // Ends a failed transaction, keeping the failure's error code for retry_busy.
  void rollback() { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

  // Runs `body` in an immediate transaction (the write lock, waited for up to the
  // busy timeout): committed when it succeeds, rolled back otherwise.
  template <typename Body>
  Status in_write_transaction(Body body) {
    CONVJIT_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE"));
    Status st = body();
    if (st.ok()) st = exec("COMMIT");
    if (!st.ok()) rollback();
    return st;
  }

  Status newer_schema(int version) const {
    return Status::unsupported("tuning database '" + path_ + "' has schema version " + std::to_string(version) +
                               ", newer than version " + std::to_string(kSchemaVersion) +
                               " that this convjit reads: use a newer convjit or another CONVJIT_TUNING_DB");
  }

  Status initialize() {
    int version = 0;
    auto read_version = [&]() -> Status {
      auto v = schema_version();
      if (!v.ok()) return v.status();
      version = *v;
      return Status();
    };
    // A newer convjit's file is left exactly as it is.
    CONVJIT_RETURN_IF_ERROR(retry_busy(read_version));
    if (version > kSchemaVersion) return newer_schema(version);
    // WAL lets readers work while one process writes; the setting persists in the file.
    CONVJIT_RETURN_IF_ERROR(retry_busy([&] {
      Statement wal(db_, "PRAGMA journal_mode = WAL");
      if (!wal.prepared() || wal.step() != SQLITE_ROW) return fail("setting WAL journal mode");
      return Status();
    }));
    // With WAL a crash cannot corrupt the file; only the last commits may be lost on power failure.
    (void)exec("PRAGMA synchronous = NORMAL");
    if (version == 0) {
      // Created under the write lock, checking again: another process may have been first.
      CONVJIT_RETURN_IF_ERROR(retry_busy([&] {
        return in_write_transaction([&]() -> Status {
          CONVJIT_RETURN_IF_ERROR(
              exec("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)"));
          CONVJIT_RETURN_IF_ERROR(read_version());
          if (version != 0) return Status();
          for (const char* sql : kCreateSchema) CONVJIT_RETURN_IF_ERROR(exec(sql));
          Statement insert(db_, "INSERT INTO meta (name, value) VALUES ('schema_version', ?)");
          if (!insert.prepared()) return fail("writing the schema version");
          insert.bind(1, std::to_string(kSchemaVersion));
          if (insert.step() != SQLITE_DONE) return fail("writing the schema version");
          version = kSchemaVersion;
          return Status();
        });
      }));
      if (version > kSchemaVersion) return newer_schema(version);
    }
    return Status();
  }

  // Inserts one checked record inside the caller's transaction; *added says whether
  // it was new.
  Status insert_locked(const TuningRecord& r, const ConvSpec& spec, bool* added) {
    Statement s(db_,
                "INSERT OR IGNORE INTO records (spec_key, descriptor, target, schedule_template, schedule_params,"
                " time_ms, max_error, default_time_ms, convjit_version, halide_version, codegen, created_unix,"
                " family, n, c_in, c_out, h_in, w_in, kh, kw, stride_h, stride_w, dilation_h, dilation_w)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!s.prepared()) return fail("preparing an insert");
    s.bind(1, r.spec_key);
    s.bind(2, r.descriptor.empty() ? print_descriptor(spec) : r.descriptor);
    s.bind(3, r.target);
    s.bind(4, r.schedule_template);
    s.bind(5, r.schedule_params);
    s.bind(6, r.time_ms);
    s.bind(7, r.max_error);
    s.bind(8, r.default_time_ms);
    s.bind(9, r.convjit_version);
    s.bind(10, r.halide_version);
    s.bind(11, r.codegen);
    s.bind(12, r.created_unix);
    s.bind(13, family_of(spec));
    const int64_t shape[] = {spec.n,  spec.c_in, spec.c_out,     spec.h_in,     spec.w_in,       spec.kh,
                             spec.kw, spec.stride_h, spec.stride_w, spec.dilation_h, spec.dilation_w};
    for (int i = 0; i < 11; ++i) s.bind(14 + i, shape[i]);
    if (s.step() != SQLITE_DONE) return fail("inserting a record");
    *added = sqlite3_changes(db_) > 0;
    return Status();
  }

  // Inserts checked records in one immediate transaction: all or none.
  StatusOr<int> insert_all(const std::vector<std::pair<TuningRecord, ConvSpec>>& records) {
    std::lock_guard<std::mutex> lock(mutex_);
    int added = 0;
    CONVJIT_RETURN_IF_ERROR(in_write_transaction([&]() -> Status {
      for (const auto& [record, spec] : records) {
        bool was_new = false;
        CONVJIT_RETURN_IF_ERROR(insert_locked(record, spec, &was_new));
        added += was_new ? 1 : 0;
      }
      return Status();
    }));
    return added;
  }

  StatusOr<std::optional<TuningRecord>> best(const std::string& spec_key, const std::string& target,
                                             const std::string& codegen) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string sql = std::string("SELECT ") + kRecordColumns +
                            " FROM records WHERE spec_key = ? AND target = ? AND codegen = ?"
                            " ORDER BY time_ms ASC, created_unix DESC, id DESC LIMIT 1";
    Statement s(db_, sql.c_str());
    if (!s.prepared()) return fail("looking up the best record");
    s.bind(1, spec_key);
    s.bind(2, target);
    s.bind(3, codegen);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<TuningRecord>();
    if (rc != SQLITE_ROW) return fail("looking up the best record");
    return std::optional<TuningRecord>(read_record(s));
  }

  StatusOr<std::optional<TuningRecord>> nearest(const ConvSpec& spec, const std::string& target,
                                                const std::string& codegen) {
    if (Status st = validate(spec); !st.ok()) return st;
    const ConvSpec c = canonicalize(spec);
    std::string best_key;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Statement s(db_,
                  "SELECT DISTINCT spec_key, n, c_in, c_out, h_in, w_in, kh, kw, stride_h, stride_w, dilation_h,"
                  " dilation_w FROM records WHERE target = ? AND codegen = ? AND family = ?");
      if (!s.prepared()) return fail("looking up tuned specs");
      s.bind(1, target);
      s.bind(2, codegen);
      s.bind(3, family_of(c));
      double best_distance = std::numeric_limits<double>::infinity();
      int rc;
      while ((rc = s.step()) == SQLITE_ROW) {
        auto v = [&](int i) { return s.integer(i); };
        const double distance = 0.5 * log2_ratio(c.n, v(1)) + log2_ratio(c.c_in, v(2)) + log2_ratio(c.c_out, v(3)) +
                                log2_ratio(c.h_in, v(4)) + log2_ratio(c.w_in, v(5)) + 2.0 * (c.kh != v(6)) +
                                2.0 * (c.kw != v(7)) + 2.0 * (c.stride_h != v(8)) + 2.0 * (c.stride_w != v(9)) +
                                2.0 * (c.dilation_h != v(10)) + 2.0 * (c.dilation_w != v(11));
        const std::string key = s.text(0);
        // Ties go to the smaller key, so every process picks the same neighbour.
        if (distance < best_distance || (distance == best_distance && key < best_key)) {
          best_distance = distance;
          best_key = key;
        }
      }
      if (rc != SQLITE_DONE) return fail("looking up tuned specs");
    }
    if (best_key.empty()) return std::optional<TuningRecord>();
    return best(best_key, target, codegen);
  }

  StatusOr<std::vector<TuningRecord>> all() {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string sql = std::string("SELECT ") + kRecordColumns + " FROM records ORDER BY id";
    Statement s(db_, sql.c_str());
    if (!s.prepared()) return fail("reading records");
    std::vector<TuningRecord> records;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) records.push_back(read_record(s));
    if (rc != SQLITE_DONE) return fail("reading records");
    return records;
  }

  const std::string path_;
  sqlite3* db_ = nullptr;
  int last_error_ = SQLITE_OK;  // of the last failed call, for retry_busy
  std::mutex mutex_;  // one statement at a time on the one connection
};

TuningDatabase::TuningDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TuningDatabase::~TuningDatabase() = default;

StatusOr<std::shared_ptr<TuningDatabase>> TuningDatabase::open(const std::string& path) {
  if (path.empty()) return Status::invalid_argument("tuning database path is empty");
  auto impl = std::make_unique<Impl>(path);
  CONVJIT_RETURN_IF_ERROR(impl->open());
  return std::make_shared<TuningDatabase>(std::move(impl));
}

std::string TuningDatabase::default_path() {
  if (const char* env = std::getenv("CONVJIT_TUNING_DB"); env && *env) {
    return std::string(env) == "off" ? "" : env;
  }
  const std::string directory = DiskCacheConfig::from_environment().directory;
  return directory.empty() ? "" : directory + "/" + kDefaultFileName;
}

const std::string& TuningDatabase::path() const { return impl_->path_; }

Status TuningDatabase::insert(const TuningRecord& record) {
  ConvSpec spec;
  if (std::string problem = record_problem(record, &spec); !problem.empty())
    return Status::invalid_argument("tuning record: " + problem);
  auto added = impl_->insert_all({{record, spec}});
  return added.status();
}

StatusOr<std::optional<TuningRecord>> TuningDatabase::best(const std::string& spec_key, const std::string& target,
                                                           const std::string& codegen) {
  return impl_->best(spec_key, target, codegen);
}

StatusOr<std::optional<TuningRecord>> TuningDatabase::nearest(const ConvSpec& spec, const std::string& target,
                                                              const std::string& codegen) {
  return impl_->nearest(spec, target, codegen);
}

StatusOr<std::vector<TuningRecord>> TuningDatabase::all() { return impl_->all(); }

Status TuningDatabase::export_jsonl(const std::string& path) {
  auto records = all();
  if (!records.ok()) return records.status();
  // A private temporary file renamed into place: a reader never sees half an export.
  const std::string temp = path + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    if (!out) return Status::invalid_argument("cannot write '" + temp + "': " + errno_text());
    for (const TuningRecord& r : *records) out << to_json(r) << "\n";
    out.flush();
    if (!out) {
      ::unlink(temp.c_str());
      return Status::internal("cannot write '" + temp + "': " + errno_text());
    }
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(temp.c_str());
    return Status::invalid_argument("cannot write '" + path + "': " + why);
  }
  return Status();
}

StatusOr<int> TuningDatabase::import_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot read '" + path + "': " + errno_text());
  std::vector<std::pair<TuningRecord, ConvSpec>> records;
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    TuningRecord r;
    ConvSpec spec;
    std::string problem = record_from_json(line, &r);
    if (problem.empty()) problem = record_problem(r, &spec);
    if (!problem.empty()) return Status::invalid_argument(path + ":" + std::to_string(line_number) + ": " + problem);
    records.emplace_back(std::move(r), spec);
  }
  if (in.bad()) return Status::internal("cannot read '" + path + "': " + errno_text());
  return impl_->insert_all(records);
}

}  // namespace convjit
