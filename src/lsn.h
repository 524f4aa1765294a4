// Log sequence numbers (XLogRecPtr) and PostgreSQL timestamps.
//
// An LSN is a 64-bit byte position in the WAL, printed by PostgreSQL as two
// hex halves "%X/%X" (src/include/access/xlogdefs.h, LSN_FORMAT_ARGS).
// Timestamps on the replication protocol are signed 64-bit microseconds since
// 2000-01-01 00:00:00 UTC (docs: "Streaming Replication Protocol").
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgshift {

/// A WAL position in bytes. 0 is InvalidXLogRecPtr ("0/0").
class Lsn {
  public:
    constexpr Lsn() = default;
    constexpr explicit Lsn(uint64_t value) : value_(value) {}

    constexpr uint64_t value() const { return value_; }
    constexpr bool valid() const { return value_ != 0; }
    constexpr auto operator<=>(const Lsn&) const = default;

    /// Formats as "%X/%X", e.g. "16/B374D848".
    std::string str() const;

    /// Parses "%X/%X" (1-8 hex digits per half). Returns nullopt on any
    /// malformed input; never throws.
    static std::optional<Lsn> parse(std::string_view text);

  private:
    uint64_t value_ = 0;
};

/// Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01 UTC).
inline constexpr int64_t kPgEpochOffsetMicros = 946'684'800LL * 1'000'000LL;

/// Converts a system clock time to microseconds since 2000-01-01 UTC.
inline int64_t to_pg_timestamp(std::chrono::system_clock::time_point tp) {
    return std::chrono::duration_cast<std::chrono::microseconds>(tp.time_since_epoch()).count() -
           kPgEpochOffsetMicros;
}

/// Converts microseconds since 2000-01-01 UTC to a system clock time.
inline std::chrono::system_clock::time_point from_pg_timestamp(int64_t pg_micros) {
    return std::chrono::system_clock::time_point(
        std::chrono::microseconds(pg_micros + kPgEpochOffsetMicros));
}

}  // namespace pgshift
