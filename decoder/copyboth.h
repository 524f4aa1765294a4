// CopyBoth framing of the streaming replication protocol (docs: "Streaming
// Replication Protocol", START_REPLICATION; walsender.c). Every CopyData
// payload starts with one type byte; all integers are big-endian and times
// are Int64 microseconds since 2000-01-01 UTC.
//
// Server -> client:
//   'w' XLogData:  Int64 dataStart, Int64 walEnd, Int64 sendTime, Byte[n]
//                  (25-byte header; for a logical slot n is exactly one
//                  pgoutput message). In logical mode dataStart == walEnd and
//                  the value is neither unique nor monotonic (Relation/Type
//                  carry 0/0), so never use it for progress or dedup.
//   'k' Keepalive: Int64 walEnd, Int64 sendTime, Byte1 replyRequested
//                  (exactly 18 bytes; reply at once when requested).
// Client -> server:
//   'r' Standby status update: Int64 write, flush, apply, Int64 clientTime,
//                  Byte1 replyRequested (exactly 34 bytes). Only flush
//                  matters for a logical slot (becomes confirmed_flush_lsn).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "decoder/byte_reader.h"
#include "lsn.h"

namespace pgshift::copyboth {

inline constexpr size_t kXLogDataHeaderSize = 25;
inline constexpr size_t kKeepaliveSize = 18;
inline constexpr size_t kStandbyStatusSize = 34;

struct XLogData {
    Lsn data_start;
    Lsn wal_end;
    int64_t send_time = 0;     ///< microseconds since 2000-01-01 UTC
    std::string_view payload;  ///< points into the parsed buffer; not owned
    bool operator==(const XLogData&) const = default;
};

struct Keepalive {
    Lsn wal_end;
    int64_t send_time = 0;
    bool reply_requested = false;
    bool operator==(const Keepalive&) const = default;
};

using ServerFrame = std::variant<XLogData, Keepalive>;

/// Parses one CopyData payload from the walsender. Throws ProtocolError on an
/// empty or unknown frame, a 'w' shorter than 25 bytes, a 'k' that is not
/// exactly 18 bytes, or a replyRequested byte other than 0/1.
ServerFrame parse_server_frame(std::string_view bytes);

/// Builds the 34-byte 'r' standby status update.
std::string build_standby_status(Lsn write, Lsn flush, Lsn apply, int64_t client_time_pg_micros,
                                 bool reply_requested);

/// Builds a 'w' frame (tests and fuzzing).
std::string encode_xlogdata(Lsn data_start, Lsn wal_end, int64_t send_time,
                            std::string_view payload);

/// Builds a 'k' frame (tests and fuzzing).
std::string encode_keepalive(Lsn wal_end, int64_t send_time, bool reply_requested);

}  // namespace pgshift::copyboth
