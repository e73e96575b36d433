// File: email_index_http.cpp
//
// The HTTP pieces of the REST user-index client that need no network (SPEC 1.3):
// URL parsing and page targets, Retry-After parsing, the full-jitter backoff
// schedule, base64 and the basic-auth credentials, and redact_url() for every URL
// that is shown. The fetch session (email_index_fetch_session.cpp) uses them.
//
//   auto url = detail::parse_url(options.users_url);       // or a url_error
//   std::string target = detail::offset_page_target(std::get<detail::parsed_url>(url), 2, 100);
//   auto wait = detail::backoff_delay(retry, base, cap, rng);
//   std::string shown = redact_url(options.users_url);
#include "index/email_index_http_internal.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/index/email_index_client.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>

namespace tixport {
namespace detail {
namespace {

constexpr std::string_view kWhiteSpace = " \t\r\n";

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

std::string to_lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_host_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
         c == '.' || c == '_';
}

bool is_ipv6_char(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

}  // namespace

std::string parsed_url::host_header() const {
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict, bug 105329) on "literal" + std::string.
  std::string out;
  if (ipv6_literal) out += '[';
  out += host;
  if (ipv6_literal) out += ']';
  if (!default_port) {
    out += ':';
    out += std::to_string(port);
  }
  return out;
}

bool parsed_url::same_origin(const parsed_url& other) const noexcept {
  return tls == other.tls && host == other.host && port == other.port;
}

std::variant<parsed_url, url_error> parse_url(std::string_view text) {
  // The URL is never quoted in `what` (it may hold control characters, or a token): callers
  // that name a URL show it through redact_url().
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) {
      return url_error{"the URL holds a space or a control character"};
    }
  }
  const std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return url_error{"not an absolute http:// or https:// URL"};
  }
  parsed_url url;
  const std::string scheme = to_lower_ascii(text.substr(0, scheme_end));
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return url_error{"the scheme must be http or https"};
  }
  std::string_view rest = text.substr(scheme_end + 3);
  const std::size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view remainder =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return url_error{
        "user info (user:password@) is not allowed in the URL; give credentials in "
        "TIXPORT_API_USER and TIXPORT_API_TOKEN, or in --auth-file"};
  }
  if (authority.empty()) return url_error{"the URL has no host"};

  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return url_error{"unterminated IPv6 literal"};
    const std::string_view host = authority.substr(1, close - 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_ipv6_char) ||
        host.find(':') == std::string_view::npos) {
      return url_error{"bad IPv6 literal"};
    }
    url.host = to_lower_ascii(host);
    url.ipv6_literal = true;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return url_error{"unexpected text after the IPv6 literal"};
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const std::size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return url_error{"the URL has no host"};
    if (!std::all_of(host.begin(), host.end(), is_host_char)) {
      return url_error{"the host holds a character that is not allowed"};
    }
    url.host = to_lower_ascii(host);
  }
  url.port = url.tls ? 443 : 80;
  // "host:" with an empty port means the default port (RFC 3986 3.2.3).
  if (has_port && !port_text.empty()) {
    unsigned value = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535 || !std::all_of(port_text.begin(), port_text.end(), is_digit)) {
      return url_error{"bad port"};
    }
    url.default_port = value == url.port;
    url.port = static_cast<std::uint16_t>(value);
  }
  // The fragment is never sent (RFC 9110 7.1).
  remainder = remainder.substr(0, remainder.find('#'));
  if (remainder.empty() || remainder.front() == '?') {
    url.target.clear();
    url.target += '/';  // appended piecewise, as in host_header()
    url.target += remainder;
  } else {
    url.target = std::string(remainder);
  }
  return url;
}

std::variant<parsed_url, url_error> resolve_link(const parsed_url& base, std::string_view link) {
  if (link.size() >= 2 && link[0] == '/' && link[1] == '/') {
    return parse_url(std::string(base.tls ? "https:" : "http:") + std::string(link));
  }
  if (!link.empty() && link.front() == '/') {
    for (const char c : link) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte <= 0x20 || byte == 0x7f) {
        return url_error{"the link holds a space or a control character"};
      }
    }
    parsed_url url = base;
    url.target = std::string(link.substr(0, link.find('#')));
    return url;
  }
  return parse_url(link);
}

std::string offset_page_target(const parsed_url& url, std::uint64_t page,
                               std::optional<unsigned> per_page) {
  std::string target = url.target;
  target += url.target.find('?') == std::string::npos ? '?' : '&';
  target += "page=" + std::to_string(page);
  if (per_page) target += "&per_page=" + std::to_string(*per_page);
  return target;
}

std::string cursor_first_target(const parsed_url& url, unsigned page_size) {
  // Sent as SPEC 1.3 and the Zendesk documentation write it, brackets unencoded.
  std::string target = url.target;
  target += url.target.find('?') == std::string::npos ? '?' : '&';
  target += "page[size]=" + std::to_string(page_size);
  return target;
}

namespace {

std::optional<int> month_number(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (name == kMonths[i]) return static_cast<int>(i) + 1;
  }
  return std::nullopt;
}

std::optional<int> parse_number(std::string_view text, std::size_t min_digits,
                                std::size_t max_digits) {
  if (text.size() < min_digits || text.size() > max_digits) return std::nullopt;
  int value = 0;
  for (const char c : text) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] != ' ') ++pos;
    if (pos > start) words.push_back(text.substr(start, pos - start));
  }
  return words;
}

/// "HH:MM:SS" -> seconds of the day.
std::optional<int> parse_clock(std::string_view text) {
  if (text.size() != 8 || text[2] != ':' || text[5] != ':') return std::nullopt;
  const auto hours = parse_number(text.substr(0, 2), 2, 2);
  const auto minutes = parse_number(text.substr(3, 2), 2, 2);
  const auto seconds = parse_number(text.substr(6, 2), 2, 2);
  if (!hours || !minutes || !seconds || *hours > 23 || *minutes > 59 || *seconds > 60) {
    return std::nullopt;
  }
  return *hours * 3600 + *minutes * 60 + *seconds;
}

std::optional<std::chrono::system_clock::time_point> make_time(int year, int month, int day,
                                                               int seconds_of_day) {
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days{date} + std::chrono::seconds{seconds_of_day};
}

/// The three HTTP-date forms of RFC 9110 5.6.7.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  const std::vector<std::string_view> words = split_words(text);
  const std::size_t comma = text.find(',');
  if (comma != std::string_view::npos) {
    if (words.size() == 6 && words[5] == "GMT") {
      // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
      const auto day = parse_number(words[1], 1, 2);
      const auto month = month_number(words[2]);
      const auto year = parse_number(words[3], 4, 4);
      const auto clock = parse_clock(words[4]);
      if (!day || !month || !year || !clock) return std::nullopt;
      return make_time(*year, *month, *day, *clock);
    }
    if (words.size() == 4 && words[3] == "GMT" && words[1].size() == 9 && words[1][2] == '-' &&
        words[1][6] == '-') {
      // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years below 70 are 20xx.
      const auto day = parse_number(words[1].substr(0, 2), 2, 2);
      const auto month = month_number(words[1].substr(3, 3));
      const auto year = parse_number(words[1].substr(7, 2), 2, 2);
      const auto clock = parse_clock(words[2]);
      if (!day || !month || !year || !clock) return std::nullopt;
      return make_time(*year < 70 ? 2000 + *year : 1900 + *year, *month, *day, *clock);
    }
    return std::nullopt;
  }
  if (words.size() == 5) {
    // asctime: "Sun Nov  6 08:49:37 1994"
    const auto month = month_number(words[1]);
    const auto day = parse_number(words[2], 1, 2);
    const auto clock = parse_clock(words[3]);
    const auto year = parse_number(words[4], 4, 4);
    if (!day || !month || !year || !clock) return std::nullopt;
    return make_time(*year, *month, *day, *clock);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  const std::size_t first = value.find_first_not_of(kWhiteSpace);
  if (first == std::string_view::npos) return std::nullopt;
  value = value.substr(first, value.find_last_not_of(kWhiteSpace) - first + 1);
  if (std::all_of(value.begin(), value.end(), is_digit)) {
    // Absurd values saturate; the caller caps the wait anyway.
    constexpr std::size_t kMaxDigits = 9;
    if (value.size() > kMaxDigits) return std::chrono::milliseconds(std::chrono::hours(24 * 365));
    return std::chrono::seconds(*parse_number(value, 1, kMaxDigits));
  }
  const auto date = parse_http_date(value);
  if (!date) return std::nullopt;
  if (*date <= now) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(*date - now);
}

std::chrono::milliseconds backoff_delay(unsigned retry, std::chrono::milliseconds base,
                                        std::chrono::milliseconds cap, std::mt19937_64& rng) {
  constexpr unsigned kMaxShift = 30;
  const unsigned shift = std::min(retry == 0 ? 0U : retry - 1, kMaxShift);
  const auto base_count = std::max<std::int64_t>(base.count(), 0);
  const auto cap_count = std::max<std::int64_t>(cap.count(), 0);
  // base << shift saturates at the cap instead of overflowing.
  const std::int64_t limit = base_count > (cap_count >> shift) ? cap_count : base_count << shift;
  std::uniform_int_distribution<std::int64_t> jitter(0, std::min(limit, cap_count));
  return std::chrono::milliseconds(jitter(rng));
}

std::string base64_encode(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += kAlphabet[n >> 6 & 63];
    out += kAlphabet[n & 63];
  }
  const std::size_t left = bytes.size() - i;
  if (left > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (left == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += left == 2 ? kAlphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace detail

namespace {

constexpr std::string_view kRedacted = "***";

/// 0..15 for a hex digit, else -1.
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Whether a query or fragment parameter named `name` (percent-decoded, any case) looks like
/// it carries a credential: it contains one of kSecretWords, or is one of kSecretNames.
bool is_secret_parameter(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kSecretWords = {
      "token", "key", "secret", "password", "passwd", "signature"};
  static constexpr std::array<std::string_view, 5> kSecretNames = {"sig", "pwd", "pass", "auth",
                                                                   "credentials"};
  std::string lower;
  lower.reserve(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    // "%5F" for '_' and the like: a name written with escapes is the same name.
    if (c == '%' && i + 2 < name.size()) {
      const int high = hex_value(name[i + 1]);
      const int low = hex_value(name[i + 2]);
      if (high >= 0 && low >= 0) {
        c = static_cast<char>(high * 16 + low);
        i += 2;
      }
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    lower += c;
  }
  for (const std::string_view word : kSecretWords) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return std::find(kSecretNames.begin(), kSecretNames.end(), lower) != kSecretNames.end();
}

/// Append `params` ("a=1&b=2", a query or a fragment) with secret values replaced.
void append_redacted_params(std::string& out, std::string_view params) {
  for (;;) {
    const std::size_t end = params.find_first_of("&;");
    const std::string_view pair = params.substr(0, end);
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && is_secret_parameter(pair.substr(0, eq))) {
      out.append(pair.substr(0, eq + 1));
      out += kRedacted;
    } else {
      out.append(pair);
    }
    if (end == std::string_view::npos) return;
    out += params[end];
    params.remove_prefix(end + 1);
  }
}

}  // namespace

std::string redact_url(std::string_view url) {
  std::string out;
  out.reserve(url.size());
  // 1. User info: "scheme://user:password@host" keeps the user, never the password.
  const std::size_t scheme_end = url.find("://");
  if (scheme_end != std::string_view::npos) {
    const std::size_t authority = scheme_end + 3;
    const std::size_t authority_end = url.find_first_of("/?#", authority);
    const std::string_view host_part = url.substr(authority, authority_end - authority);
    const std::size_t at = host_part.rfind('@');
    if (at != std::string_view::npos) {
      const std::string_view user_info = host_part.substr(0, at);
      out.append(url.substr(0, authority));
      out.append(user_info.substr(0, user_info.find(':')));
      if (user_info.find(':') != std::string_view::npos) {
        out += ':';
        out += kRedacted;
      }
      url.remove_prefix(authority + at);  // from the '@' on
    }
  }
  // 2. Query and fragment parameters whose names look like credentials.
  const std::size_t query = url.find_first_of("?#");
  out.append(url.substr(0, query));
  if (query == std::string_view::npos) return out;
  url.remove_prefix(query);
  const std::size_t fragment = url.find('#', 1);
  if (url.front() == '?') {
    out += '?';
    append_redacted_params(out, url.substr(1, fragment == std::string_view::npos ? fragment : fragment - 1));
    if (fragment == std::string_view::npos) return out;
    url.remove_prefix(fragment);
  }
  out += '#';
  append_redacted_params(out, url.substr(1));
  return out;
}

// ---------------------------------------------------------------------------------------
// Credentials

std::optional<api_credentials> load_api_credentials(
    const std::optional<std::filesystem::path>& auth_file) {
  // Messages name the file and the rule broken, never the content: it is a secret.
  if (auth_file) {
    const std::string where = "user index: --auth-file " + auth_file->string() + ": ";
    constexpr std::uintmax_t kMaxAuthFileBytes = 64 * 1024;
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(*auth_file, ec);
    if (ec) throw fatal_error(exit_code::user_index_error, where + ec.message());
    if (size > kMaxAuthFileBytes) {
      throw fatal_error(exit_code::user_index_error, where + "too large for one line user:secret");
    }
    std::ifstream in(*auth_file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      throw fatal_error(exit_code::user_index_error, where + "cannot read the file");
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.find_first_of("\r\n") != std::string::npos) {
      throw fatal_error(exit_code::user_index_error,
                        where + "expected one line user:secret, found more lines");
    }
    const std::size_t colon = text.find(':');
    if (colon == std::string::npos) {
      throw fatal_error(exit_code::user_index_error,
                        where + "expected one line user:secret, found no ':'");
    }
    api_credentials credentials{text.substr(0, colon), text.substr(colon + 1)};
    if (credentials.user.empty() || credentials.secret.empty()) {
      throw fatal_error(exit_code::user_index_error,
                        where + "expected one line user:secret, the user or the secret is empty");
    }
    return credentials;
  }
  const char* user = std::getenv("TIXPORT_API_USER");
  const char* token = std::getenv("TIXPORT_API_TOKEN");
  const bool has_user = user != nullptr && *user != '\0';
  const bool has_token = token != nullptr && *token != '\0';
  if (!has_user && !has_token) return std::nullopt;
  if (!has_user || !has_token) {
    throw fatal_error(exit_code::user_index_error,
                      std::string("user index: credentials: ") +
                          (has_user ? "TIXPORT_API_USER is set but TIXPORT_API_TOKEN is not"
                                    : "TIXPORT_API_TOKEN is set but TIXPORT_API_USER is not"));
  }
  api_credentials credentials{user, token};
  // RFC 7617: the user-id of basic auth cannot hold a colon.
  if (credentials.user.find(':') != std::string::npos) {
    throw fatal_error(exit_code::user_index_error,
                      "user index: credentials: TIXPORT_API_USER must not hold ':'");
  }
  return credentials;
}


}  // namespace tixport
