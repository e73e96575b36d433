// File: csv_scan_generic_internal.hpp
//
// The fast scanner, written once and compiled once per instruction set, each in
// its own translation unit (csv_scan_portable.cpp, csv_scan_sse2.cpp, and
// csv_scan_avx2.cpp under `#pragma GCC target`): each includes this file inside
// its ISA namespace, after defining there
//   void build_masks(const char* p, std::size_t nblocks, raw_masks* out) noexcept;
//   std::ptrdiff_t unescape_pairs(const char* src, std::size_t n, char* out, const char* src_end) noexcept;
//   std::uint64_t quote_regions(std::uint64_t quotes) noexcept;  // prefix_xor(quotes)
// (src_end: bytes up to it may be read; out has n + kUnescapeSlack bytes of room)
// so that the whole walker, not only the mask kernel, is compiled with the
// ISA's instructions (popcnt, tzcnt) and the kernel inlines into it. No include
// guard and no #include on purpose; everything it uses comes from the includer.
//
//   namespace avx2_isa { void build_masks(...) {...}  #include "csv/csv_scan_generic_internal.hpp" }

// Masks for the bytes [pos, limit) in 64-byte blocks starting at pos, at most kBatchBlocks of
// them; bytes at or past `limit` read as zero (no bit set), so nothing past the data is touched.
// Returns the number of blocks filled (>= 1 when pos < limit).
// `max_blocks` (<= kBatchBlocks) is smaller for a walk over one record.
std::size_t fill_masks(const char* data, std::uint64_t pos, std::uint64_t limit, raw_masks* out,
                       std::size_t max_blocks = kBatchBlocks) noexcept {
  const std::uint64_t avail = limit - pos;
  const std::size_t full = static_cast<std::size_t>(std::min<std::uint64_t>(max_blocks, avail / kBlockBytes));
  if (full != 0) build_masks(data + pos, full, out);
  if (full == max_blocks) return full;
  const std::size_t tail = static_cast<std::size_t>(avail - full * kBlockBytes);
  if (tail == 0) return full;
  alignas(kBlockBytes) char pad[kBlockBytes] = {};
  std::memcpy(pad, data + pos + full * kBlockBytes, tail);
  build_masks(pad, 1, out + full);
  return full + 1;
}

// Emit field [s, i) (i = its separator, LF or EOF) holding `quotes` quote bytes, if it follows the
// pandas rules under the quote-parity reading. False: leave it to the exact parser.
// `index`: the field's place in its record.
template <class Sink>
[[gnu::always_inline]] inline bool emit_fast_field(const char* data, std::uint64_t size, std::uint64_t s,
                                                  std::uint64_t i, std::uint64_t quotes, field_end end,
                                                  std::uint32_t index, Sink& sink) {
  if (quotes == 0) {
    std::uint64_t e = i;
    if (end == field_end::lf && e > s && data[e - 1] == kCr) --e;
    sink.field({data + s, static_cast<std::size_t>(e - s)});
    return true;
  }
  if (data[s] != kQuote) return false;  // a quote inside an unquoted field: parity is wrong from there on
  std::uint64_t t = i;                  // one past the closing quote
  if (t - s >= 2 && data[t - 1] == kQuote) {
    // closing quote right before the separator
  } else if (end == field_end::lf && t - s >= 3 && data[t - 1] == kCr && data[t - 2] == kQuote) {
    --t;  // closing quote, then CRLF
  } else {
    return false;  // bytes after the closing quote: pandas appends them
  }
  const std::uint64_t cb = s + 1;
  const std::uint64_t ce = t - 1;
  if (quotes == 2) {
    sink.field({data + cb, static_cast<std::size_t>(ce - cb)});
    return true;
  }
  // Inner quotes must all be `""` pairs; unescape while checking.
  const auto length = static_cast<std::size_t>(ce - cb);
  if constexpr (requires { sink.keeps_escaped(index); }) {
    if (sink.keeps_escaped(index)) {
      if (!quotes_paired(data + cb, length)) return false;
      sink.escaped_field({data + cb, length});
      return true;
    }
  }
  const std::ptrdiff_t written = unescape_pairs(data + cb, length, sink.reserve(length + kUnescapeSlack), data + size);
  if (written < 0) return false;
  sink.commit(static_cast<std::size_t>(written));
  return true;
}

// Walk records from `start` (a record start outside quotes) while they start before stop_at,
// until EOF or a record the fast path cannot take. A sink with done() (some fields of one
// record) ends the walk as soon as it has them; the position returned then is not a record start.
template <class Sink>
fast_run walk_fast(const char* data, std::uint64_t size, position start, std::uint64_t stop_at, Sink& sink) {
  constexpr bool kStopsEarly = requires { sink.done(); };
  // One record is a few hundred bytes: masks for 256 of them at a time, not 1 KiB.
  constexpr std::size_t kBlocksPerFill = kStopsEarly ? 4 : kBatchBlocks;
  std::uint64_t rs = start.offset;    // current record start
  std::uint64_t rs_line = start.line;
  std::uint64_t fs = rs;              // current field start
  std::uint64_t quotes_before = 0;    // quote bytes in [fs, current block base)
  std::uint32_t field_count = 0;
  std::size_t mark = sink.mark();
  std::uint64_t in_quote_carry = 0;   // all ones when the previous block ended inside quotes
  std::uint64_t block_line = rs_line; // physical line at the current block's first byte
  raw_masks masks[kBatchBlocks];

  for (std::uint64_t batch = rs; batch < size;) {
    const std::size_t blocks = fill_masks(data, batch, size, masks, kBlocksPerFill);
    for (std::size_t bi = 0; bi < blocks; ++bi) {
      const std::uint64_t base = batch + bi * kBlockBytes;
      const raw_masks& m = masks[bi];
      const std::uint64_t in_quote = quote_regions(m.quote) ^ in_quote_carry;
      in_quote_carry = static_cast<std::uint64_t>(static_cast<std::int64_t>(in_quote) >> 63);
      std::uint64_t separators = (m.comma | m.lf) & ~in_quote;
      while (separators != 0) {
        const unsigned k = static_cast<unsigned>(std::countr_zero(separators));
        separators &= separators - 1;
        const std::uint64_t i = base + k;
        const std::uint64_t fs_bit = fs > base ? fs - base : 0;
        const std::uint64_t quotes =
            quotes_before + static_cast<std::uint64_t>(std::popcount(m.quote & bits_below(k) & bits_from(fs_bit)));
        const bool is_lf = ((m.lf >> k) & 1) != 0;
        if (!emit_fast_field(data, size, fs, i, quotes, is_lf ? field_end::lf : field_end::comma, field_count, sink)) {
          sink.rollback(mark);
          return {{rs, rs_line}, true};
        }
        ++field_count;
        if constexpr (kStopsEarly) {
          if (sink.done()) return {{i + 1, rs_line}, false};
        }
        fs = i + 1;
        quotes_before = 0;
        if (!is_lf) continue;
        // Record ends at i. One empty field ending in LF or CRLF is a blank line.
        if (field_count == 1 && (i == rs || (i == rs + 1 && data[rs] == kCr))) {
          sink.blank(mark);
        } else {
          sink.record(rs, rs_line, field_count, mark, false);
        }
        rs = i + 1;
        rs_line = block_line + static_cast<std::uint64_t>(std::popcount(m.lf & bits_through(k)));
        field_count = 0;
        mark = sink.mark();
        if (rs >= stop_at) return {{rs, rs_line}, false};
      }
      const std::uint64_t fs_bit = fs > base ? fs - base : 0;
      quotes_before += static_cast<std::uint64_t>(std::popcount(m.quote & bits_from(fs_bit)));
      block_line += static_cast<std::uint64_t>(std::popcount(m.lf));
      // A record this long is rare; it is likely a stray quote that hid the separators. Bound
      // the look-ahead so one bad quote per chunk cannot make the scan quadratic.
      if (base + kBlockBytes - rs > kMaxSpeculativeRecord) {
        sink.rollback(mark);
        return {{rs, rs_line}, true};
      }
    }
    batch += blocks * kBlockBytes;
  }
  // EOF. A last record without a line end may be open in [rs, size).
  if (rs >= size) return {{rs, rs_line}, false};
  if (in_quote_carry != 0 || !emit_fast_field(data, size, fs, size, quotes_before, field_end::eof, field_count, sink)) {
    sink.rollback(mark);
    return {{rs, rs_line}, true};
  }
  sink.record(rs, rs_line, field_count + 1, mark, false);
  return {{size, block_line}, false};
}

std::optional<start_candidate> find_record_start(const char* data, std::uint64_t b, std::uint64_t e,
                                                 std::uint64_t data_begin, bool entry_in_quote) {
  if (b == data_begin || (!entry_in_quote && data[b - 1] == kLf)) return start_candidate{b, 0};
  if (e - b < 2) return std::nullopt;
  const std::uint64_t limit = e - 1;
  std::uint64_t carry = entry_in_quote ? ~std::uint64_t{0} : 0;
  std::uint64_t lfs = 0;
  raw_masks masks[kBatchBlocks];
  for (std::uint64_t batch = b; batch < limit;) {
    const std::size_t blocks = fill_masks(data, batch, limit, masks);
    for (std::size_t bi = 0; bi < blocks; ++bi) {
      const raw_masks& m = masks[bi];
      const std::uint64_t in_quote = quote_regions(m.quote) ^ carry;
      carry = static_cast<std::uint64_t>(static_cast<std::int64_t>(in_quote) >> 63);
      const std::uint64_t ends = m.lf & ~in_quote;
      if (ends != 0) {
        const unsigned k = static_cast<unsigned>(std::countr_zero(ends));
        return start_candidate{batch + bi * kBlockBytes + k + 1,
                               lfs + static_cast<std::uint64_t>(std::popcount(m.lf & bits_through(k)))};
      }
      lfs += static_cast<std::uint64_t>(std::popcount(m.lf));
    }
    batch += blocks * kBlockBytes;
  }
  return std::nullopt;
}

quote_lf_counts count_range(const char* data, std::uint64_t begin, std::uint64_t end) noexcept {
  quote_lf_counts counts;
  raw_masks masks[kBatchBlocks];
  for (std::uint64_t batch = begin; batch < end;) {
    const std::size_t blocks = fill_masks(data, batch, end, masks);
    for (std::size_t bi = 0; bi < blocks; ++bi) {
      counts.quotes += static_cast<std::uint64_t>(std::popcount(masks[bi].quote));
      counts.commas += static_cast<std::uint64_t>(std::popcount(masks[bi].comma));
      counts.lfs += static_cast<std::uint64_t>(std::popcount(masks[bi].lf));
    }
    batch += blocks * kBlockBytes;
  }
  return counts;
}

// The entry points csv_reader.cpp dispatches to.
inline fast_run walk_chunk(const char* data, std::uint64_t size, position start, std::uint64_t stop_at,
                           chunk_sink& sink) {
  return walk_fast(data, size, start, stop_at, sink);
}
inline fast_run walk_counting(const char* data, std::uint64_t size, position start, std::uint64_t stop_at,
                              counting_sink& sink) {
  return walk_fast(data, size, start, stop_at, sink);
}
inline fast_run walk_fields(const char* data, std::uint64_t size, position start, std::uint64_t stop_at,
                            wanted_fields_sink& sink) {
  return walk_fast(data, size, start, stop_at, sink);
}
constexpr scan_kernels kKernels{walk_chunk, walk_counting, walk_fields, find_record_start, count_range};
