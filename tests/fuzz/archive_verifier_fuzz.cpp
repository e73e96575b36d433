// File: archive_verifier_fuzz.cpp
//
// libFuzzer target for `tixport verify` (archive_verifier.hpp). verify_archive
// reads a file, so each input is written to a temporary file first. Two input
// shapes:
//   - Raw (the input does not start with '#'): the bytes are the archive file
//     itself (tar, gzip or zstd, as the seeds show). Unreadable archives must
//     end in fatal_error, never in a crash.
//   - Structured (it starts with '#'): sections, each opened by a line
//     `#NAME` and running to the next line that starts with '#'. Each section
//     becomes a regular tar entry NAME holding the section's text; a section
//     named `#!users` is the index CSV instead. This lets the fuzzer work on
//     the JSON checks rather than on tar headers and checksums.
//   - Generated (it starts with '@'): the rest (through FuzzedDataProvider)
//     picks tickets, comments and users with ids and emails from small pools
//     (so they collide), the batch size and the numbering style; the batches
//     are written with encode_batch as `run` writes them. The expected problems
//     are computed here from the records: duplicate ids and email keys, unknown
//     ticket / author / requester ids, blank bodies and names, untrimmed names,
//     invalid emails; the verifier must report exactly those kinds and counts.
// Oracles: the result does not depend on the thread count (1 vs 2 workers:
// same counts, same problems in the same order); the problem list is
// consistent with the per-kind counts; a structured archive is never
// unreadable (only a bad index CSV may be fatal) and has one entry per
// section; and an archive declared valid really is: every entry is
// backup_tickets_N.json holding well-formed JSON whose arrays add up to the
// reported ticket, comment and user counts.
//
//   build-fuzz/archive_verifier_fuzz tests/fuzz/corpus/archive_verifier -max_len=8192
#include "tixport/archive/archive_verifier.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/run/json_batch_encoder.hpp"

#include "fuzz_check.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace dom = simdjson::dom;

constexpr std::size_t kMaxEntryBytes = 4096;  // small, so the size cap is reachable
constexpr std::string_view kUsersSection = "!users";

/// A directory for this process's input files, removed at exit.
class scratch_dir {
 public:
  scratch_dir() : path_(fs::temp_directory_path() / ("tixport_fuzz_verify_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ignored;  // best effort at exit
    fs::remove_all(path_, ignored);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  [[nodiscard]] fs::path file(const char* name) const { return path_ / name; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  FUZZ_CHECK(out.good());
}

struct section {
  std::string name;
  std::string content;
};

/// Split a structured input into its sections (see the file comment).
std::vector<section> split_sections(std::string_view input) {
  std::vector<section> sections;
  std::size_t pos = 0;
  while (pos < input.size()) {
    // input[pos] == '#': the name runs to the end of the line, the content to the next "\n#".
    const std::size_t name_end = std::min(input.find('\n', pos), input.size());
    std::string name(input.substr(pos + 1, name_end - pos - 1));
    const std::size_t next = name_end == input.size() ? std::string_view::npos : input.find("\n#", name_end);
    const std::size_t content_begin = name_end + 1;
    const std::size_t content_end = next == std::string_view::npos ? input.size() : next;
    const std::string_view content =
        content_end > content_begin ? input.substr(content_begin, content_end - content_begin) : std::string_view();
    sections.push_back({std::move(name), std::string(content)});
    pos = next == std::string_view::npos ? input.size() : next + 1;
  }
  return sections;
}

struct archive_write_deleter {
  void operator()(archive* a) const noexcept { archive_write_free(a); }
};
struct entry_deleter {
  void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};

/// A pax tar (what `run` writes) of the entries; nullopt when libarchive refuses a name.
std::optional<std::string> build_tar(const std::vector<const section*>& entries) {
  std::size_t capacity = 4096;
  for (const section* s : entries) capacity += 3 * 512 + s->name.size() + s->content.size();
  std::string buffer(capacity, '\0');
  std::size_t used = 0;
  const std::unique_ptr<archive, archive_write_deleter> a(archive_write_new());
  FUZZ_CHECK(a != nullptr);
  FUZZ_CHECK(archive_write_set_format_pax_restricted(a.get()) == ARCHIVE_OK);
  FUZZ_CHECK(archive_write_set_bytes_in_last_block(a.get(), 1) == ARCHIVE_OK);
  FUZZ_CHECK(archive_write_open_memory(a.get(), buffer.data(), buffer.size(), &used) == ARCHIVE_OK);
  for (const section* s : entries) {
    const std::unique_ptr<archive_entry, entry_deleter> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), s->name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(s->content.size()));
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK) return std::nullopt;
    if (!s->content.empty()) {
      FUZZ_CHECK(archive_write_data(a.get(), s->content.data(), s->content.size()) ==
                 static_cast<la_ssize_t>(s->content.size()));
    }
  }
  FUZZ_CHECK(archive_write_close(a.get()) == ARCHIVE_OK);
  buffer.resize(used);
  return buffer;
}

/// verify_archive's result, or the fatal error's message.
struct outcome {
  std::optional<tixport::verify_result> result;
  std::string error;
};

outcome run_verify(const fs::path& archive, const std::optional<fs::path>& users, unsigned threads,
                   std::size_t max_entry_bytes = kMaxEntryBytes) {
  tixport::verify_options options;
  options.archive = archive;
  options.users_file = users;
  options.threads = threads;
  options.max_entry_bytes = max_entry_bytes;
  try {
    return {tixport::verify_archive(options), {}};
  } catch (const tixport::fatal_error& e) {
    FUZZ_CHECK(e.code() == tixport::exit_code::input_error);
    return {std::nullopt, e.what()};
  }
}

void check_consistent(const tixport::verify_result& r) {
  std::uint64_t total = 0;
  for (const auto& [kind, count] : r.problems_by_kind) {
    FUZZ_CHECK(count > 0);
    total += count;
  }
  FUZZ_CHECK(r.valid == (total == 0));
  FUZZ_CHECK(r.first_problems.size() == std::min<std::uint64_t>(total, tixport::verify_options{}.max_problems_listed));
  for (const tixport::verify_problem& p : r.first_problems) {
    FUZZ_CHECK(r.problems_by_kind.contains(p.kind));
    FUZZ_CHECK(!p.message.empty());
  }
}

void check_same(const outcome& a, const outcome& b) {
  FUZZ_CHECK(a.error == b.error);
  FUZZ_CHECK(a.result.has_value() == b.result.has_value());
  if (!a.result) return;
  const tixport::verify_result& x = *a.result;
  const tixport::verify_result& y = *b.result;
  FUZZ_CHECK(x.valid == y.valid);
  FUZZ_CHECK(x.entries == y.entries);
  FUZZ_CHECK(x.tickets == y.tickets && x.comments == y.comments && x.users == y.users);
  FUZZ_CHECK(x.bytes == y.bytes);
  FUZZ_CHECK(x.problems_by_kind == y.problems_by_kind);
  FUZZ_CHECK(x.first_problems.size() == y.first_problems.size());
  for (std::size_t i = 0; i < x.first_problems.size(); ++i) {
    const tixport::verify_problem& p = x.first_problems[i];
    const tixport::verify_problem& q = y.first_problems[i];
    FUZZ_CHECK(p.entry == q.entry && p.json_path == q.json_path && p.kind == q.kind && p.message == q.message);
  }
}

bool is_batch_name(std::string_view name) {
  constexpr std::string_view kPrefix = "backup_tickets_";
  constexpr std::string_view kSuffix = ".json";
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
  const std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  return !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos;
}

std::uint64_t array_size(dom::element root, const char* pointer) {
  dom::array array;
  FUZZ_CHECK(root.at_pointer(pointer).get_array().get(array) == simdjson::SUCCESS);
  return array.size();
}

/// A valid verdict on a structured archive: recount what the verifier reported.
void check_valid_archive(const std::vector<const section*>& entries, const tixport::verify_result& r,
                         std::size_t max_entry_bytes = kMaxEntryBytes) {
  static dom::parser parser;
  std::uint64_t tickets = 0;
  std::uint64_t comments = 0;
  std::uint64_t users = 0;
  std::uint64_t bytes = 0;
  for (const section* s : entries) {
    FUZZ_CHECK(is_batch_name(s->name));
    FUZZ_CHECK(s->content.size() <= max_entry_bytes);
    dom::element root;
    FUZZ_CHECK(parser.parse(s->content.data(), s->content.size()).get(root) == simdjson::SUCCESS);
    tickets += array_size(root, "/data/tickets/data");
    comments += array_size(root, "/data/tickets/comments");
    users += array_size(root, "/data/tickets/users");
    FUZZ_CHECK(array_size(root, "/data/tickets/organizations") == 0);
    bytes += s->content.size();
  }
  FUZZ_CHECK(r.tickets == tickets && r.comments == comments && r.users == users);
  FUZZ_CHECK(r.bytes == bytes);
}

// ---------------------------------------------------------------------------
// Generated mode
// ---------------------------------------------------------------------------

constexpr std::size_t kMaxRecords = 40;  // per kind; several batches at small batch sizes
constexpr std::size_t kGeneratedMaxEntryBytes = std::size_t{1} << 20;  // far above any generated batch

std::int64_t pick_id(FuzzedDataProvider& in) {
  // Mostly a small pool so that ids collide and references resolve; sometimes any int64.
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<std::int64_t>(-2, 12) : in.ConsumeIntegral<std::int64_t>();
}

/// Free text made valid UTF-8, as every field is before encoding.
std::string pick_text(FuzzedDataProvider& in) {
  std::string clean;
  tixport::repair_utf8(in.ConsumeRandomLengthString(24), clean);
  return clean;
}

/// An email from a small pool in random letter case (colliding keys), or free text.
std::string pick_email(FuzzedDataProvider& in) {
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) return pick_text(in);
  std::string email = "user" + std::to_string(in.ConsumeIntegralInRange<int>(0, 9)) + "@example.org";
  for (char& c : email) {
    if (c >= 'a' && c <= 'z' && in.ConsumeBool()) c = static_cast<char>(c - 'a' + 'A');
  }
  return email;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

template <typename T, typename Key>
std::uint64_t repeats(const std::vector<T>& items, Key key) {
  std::set<decltype(key(items.front()))> seen;
  std::uint64_t n = 0;
  for (const T& item : items) n += seen.insert(key(item)).second ? 0 : 1;
  return n;
}

/// What verify must report for these records (kinds with a non-zero count).
std::map<std::string, std::uint64_t> expected_problems(const std::vector<tixport::ticket_record>& tickets,
                                                       const std::vector<tixport::comment_record>& comments,
                                                       const std::vector<tixport::user_record>& users) {
  std::map<std::string, std::uint64_t> expected;
  std::set<std::int64_t> ticket_ids;
  std::set<std::int64_t> user_ids;
  for (const auto& t : tickets) ticket_ids.insert(t.id);
  for (const auto& u : users) user_ids.insert(u.id);
  expected["duplicate_ticket_id"] = repeats(tickets, [](const auto& t) { return t.id; });
  expected["duplicate_comment_id"] = repeats(comments, [](const auto& c) { return c.id; });
  expected["duplicate_user_id"] = repeats(users, [](const auto& u) { return u.id; });
  expected["duplicate_email"] = repeats(users, [](const auto& u) { return lower_ascii(u.email); });
  std::uint64_t& value = expected["value"];
  for (const auto& t : tickets) expected["unknown_requester_id"] += user_ids.contains(t.requester_id) ? 0 : 1;
  for (const auto& c : comments) {
    expected["unknown_ticket_id"] += ticket_ids.contains(c.ticket_id) ? 0 : 1;
    expected["unknown_author_id"] += user_ids.contains(c.author_id) ? 0 : 1;
    value += tixport::trim_ws(c.html_body).empty() ? 1 : 0;
  }
  for (const auto& u : users) {
    value += tixport::trim_ws(u.name) != u.name || u.name.empty() ? 1 : 0;
    value += tixport::is_valid_email(u.email) ? 0 : 1;
  }
  std::erase_if(expected, [](const auto& kv) { return kv.second == 0; });
  return expected;
}

template <typename T>
std::span<const T> batch_slice(const std::vector<T>& items, std::size_t k, std::size_t b) {
  const std::size_t begin = std::min(items.size(), k * b);
  return std::span<const T>(items).subspan(begin, std::min(items.size(), begin + b) - begin);
}

/// Records from the input, encoded into SPEC 2.6 batches, verified, compared with the expectation.
void run_generated(std::string_view input, const fs::path& archive_path) {
  FuzzedDataProvider in(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  std::deque<std::string> text;  // the records' string_views point here; a deque never moves them
  std::vector<tixport::ticket_record> tickets(in.ConsumeIntegralInRange<std::size_t>(0, kMaxRecords));
  std::vector<tixport::comment_record> comments(in.ConsumeIntegralInRange<std::size_t>(0, kMaxRecords));
  std::vector<tixport::user_record> users(in.ConsumeIntegralInRange<std::size_t>(0, kMaxRecords));
  const auto batch_size = in.ConsumeIntegralInRange<std::size_t>(1, 100);
  const bool index_names = in.ConsumeBool();
  const auto style = in.ConsumeBool() ? tixport::json_style::pretty : tixport::json_style::compact;
  const auto timestamp = [&] {
    return in.ConsumeIntegralInRange<std::int64_t>(tixport::kMinTimestamp, tixport::kMaxTimestamp);
  };
  for (auto& t : tickets) {
    t.created_at = timestamp();
    t.requester_id = pick_id(in);
    t.id = pick_id(in);
  }
  for (auto& c : comments) {
    c.created_at = timestamp();
    c.ticket_id = pick_id(in);
    c.id = pick_id(in);
    c.is_public = in.ConsumeBool();
    c.html_body = in.ConsumeBool() ? text.emplace_back(pick_text(in)) : text.emplace_back("<p>hello</p>");
    c.author_id = pick_id(in);
  }
  for (auto& u : users) {
    u.name = in.ConsumeBool() ? text.emplace_back(pick_text(in)) : text.emplace_back("Ann Lee");
    u.id = pick_id(in);
    u.email = text.emplace_back(pick_email(in));
  }

  // SPEC 2.6: K = the most batches any kind needs; batch k holds slice k of each list.
  const std::size_t batches = std::max({(tickets.size() + batch_size - 1) / batch_size,
                                        (comments.size() + batch_size - 1) / batch_size,
                                        (users.size() + batch_size - 1) / batch_size});
  std::vector<section> entries(batches);
  std::vector<const section*> entry_ptrs;
  for (std::size_t k = 0; k < batches; ++k) {
    entries[k].name = "backup_tickets_" + std::to_string(index_names ? k + 1 : (k + 1) * batch_size) + ".json";
    tixport::encode_batch(batch_slice(tickets, k, batch_size), batch_slice(comments, k, batch_size),
                          batch_slice(users, k, batch_size), style, entries[k].content);
    entry_ptrs.push_back(&entries[k]);
  }
  const std::optional<std::string> tar = build_tar(entry_ptrs);
  FUZZ_CHECK(tar.has_value());
  write_file(archive_path, *tar);
  const outcome one = run_verify(archive_path, std::nullopt, 1, kGeneratedMaxEntryBytes);
  const outcome two = run_verify(archive_path, std::nullopt, 2, kGeneratedMaxEntryBytes);
  check_same(one, two);
  if (!one.result) std::fprintf(stderr, "%s\n", one.error.c_str());
  FUZZ_CHECK(one.result.has_value());
  const tixport::verify_result& r = *one.result;
  check_consistent(r);
  FUZZ_CHECK(r.entries == batches);
  FUZZ_CHECK(r.tickets == tickets.size() && r.comments == comments.size() && r.users == users.size());
  const auto expected = expected_problems(tickets, comments, users);
  if (r.problems_by_kind != expected) {
    for (const auto& [kind, n] : expected) std::fprintf(stderr, "expected %s: %llu\n", kind.c_str(), static_cast<unsigned long long>(n));
    for (const auto& [kind, n] : r.problems_by_kind) std::fprintf(stderr, "reported %s: %llu\n", kind.c_str(), static_cast<unsigned long long>(n));
    for (const auto& p : r.first_problems) std::fprintf(stderr, "  %s %s %s: %s\n", p.entry.c_str(), p.json_path.c_str(), p.kind.c_str(), p.message.c_str());
  }
  FUZZ_CHECK(r.problems_by_kind == expected);
  if (r.valid) check_valid_archive(entry_ptrs, r, kGeneratedMaxEntryBytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const scratch_dir dir;
  static const fs::path archive_path = dir.file("input.tar");
  static const fs::path users_path = dir.file("users.csv");
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (input.starts_with('@')) {
    run_generated(input.substr(1), archive_path);
    return 0;
  }
  if (!input.starts_with('#')) {
    write_file(archive_path, input);
    const outcome one = run_verify(archive_path, std::nullopt, 1);
    const outcome two = run_verify(archive_path, std::nullopt, 2);
    check_same(one, two);
    if (one.result) check_consistent(*one.result);
    return 0;
  }

  const std::vector<section> sections = split_sections(input);
  std::vector<const section*> entries;
  const section* users = nullptr;
  for (const section& s : sections) {
    if (s.name == kUsersSection) {
      users = &s;
    } else {
      // A C string ends at NUL: such a name is not representable in a tar header. A name
      // ending in '/' is a directory to libarchive's reader even with a regular-file type
      // (POSIX's old-tar rule, libarchive >= 3.6): it ignores the size and would read the
      // content as the next header ("Damaged tar archive"). `run` never writes either.
      if (s.name.empty() || s.name.find('\0') != std::string::npos || s.name.ends_with('/')) return 0;
      entries.push_back(&s);
    }
  }
  const std::optional<std::string> tar = build_tar(entries);
  if (!tar) return 0;
  write_file(archive_path, *tar);
  std::optional<fs::path> users_file;
  if (users != nullptr) {
    write_file(users_path, users->content);
    users_file = users_path;
  }
  const outcome one = run_verify(archive_path, users_file, 1);
  const outcome two = run_verify(archive_path, users_file, 2);
  check_same(one, two);
  if (!one.result) {
    // Only the index CSV may make a well-formed tar unverifiable.
    if (!one.error.starts_with("verify: users file: ")) std::fprintf(stderr, "%s\n", one.error.c_str());
    FUZZ_CHECK(one.error.starts_with("verify: users file: "));
    return 0;
  }
  check_consistent(*one.result);
  FUZZ_CHECK(one.result->entries == entries.size());
  if (one.result->valid) check_valid_archive(entries, *one.result);
  return 0;
}
