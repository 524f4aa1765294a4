// pgoutput codec: one read_* and one write_* function per message, in the
// order and with the checks of src/backend/replication/logical/proto.c. See
// pgoutput_codec.h for the rules and why they exist.
#include "decoder/pgoutput_codec.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace pgshift::pgoutput {
namespace {

constexpr int kMinProtoVersion = 1;
constexpr int kMaxProtoVersion = 4;
constexpr int kStreamingVersion = 2;  // LOGICALREP_PROTO_STREAM_VERSION_NUM
constexpr int kTwoPhaseVersion = 3;   // LOGICALREP_PROTO_TWOPHASE_VERSION_NUM
constexpr int kParallelVersion = 4;   // LOGICALREP_PROTO_STREAM_PARALLEL_VERSION_NUM

constexpr uint8_t kRelColumnFlagsMask = 1;                 // LOGICALREP_IS_REPLICA_IDENTITY
constexpr uint8_t kMessageFlagsMask = 1;                   // MESSAGE_TRANSACTIONAL
constexpr uint8_t kTruncateFlagsMask = 1 | 2;              // CASCADE | RESTART_SEQS
constexpr size_t kMinRelationColumnBytes = 1 + 1 + 4 + 4;  // flags, "" name, type, typmod

/// Where a message may appear relative to a Stream Start .. Stream Stop block.
enum class Placement : uint8_t {
    Anywhere,     // Origin; R/Y/I/U/D/T/M (with the xid prefix inside a block)
    InsideOnly,   // Stream Stop
    OutsideOnly,  // transaction boundaries, Stream Start/Commit/Abort/Prepare
};

struct TypeInfo {
    char type;
    const char* name;
    const char* context;  // ByteReader context, prefixed to error messages
    int min_version;
    Placement placement;
};

// Order matches the Message variant alternatives: message_type() indexes it
// with Message::index(), and decode() / decode_into() pick the alternative to
// construct by the position of the type byte here (kNewReaders, kReuseReaders).
constexpr TypeInfo kTypes[] = {
    {'B', "Begin", "pgoutput Begin", 1, Placement::OutsideOnly},
    {'C', "Commit", "pgoutput Commit", 1, Placement::OutsideOnly},
    {'O', "Origin", "pgoutput Origin", 1, Placement::Anywhere},
    {'R', "Relation", "pgoutput Relation", 1, Placement::Anywhere},
    {'Y', "Type", "pgoutput Type", 1, Placement::Anywhere},
    {'I', "Insert", "pgoutput Insert", 1, Placement::Anywhere},
    {'U', "Update", "pgoutput Update", 1, Placement::Anywhere},
    {'D', "Delete", "pgoutput Delete", 1, Placement::Anywhere},
    {'T', "Truncate", "pgoutput Truncate", 1, Placement::Anywhere},
    {'M', "Message", "pgoutput Message", 1, Placement::Anywhere},
    {'S', "Stream Start", "pgoutput Stream Start", kStreamingVersion, Placement::OutsideOnly},
    {'E', "Stream Stop", "pgoutput Stream Stop", kStreamingVersion, Placement::InsideOnly},
    {'c', "Stream Commit", "pgoutput Stream Commit", kStreamingVersion, Placement::OutsideOnly},
    {'A', "Stream Abort", "pgoutput Stream Abort", kStreamingVersion, Placement::OutsideOnly},
    {'b', "Begin Prepare", "pgoutput Begin Prepare", kTwoPhaseVersion, Placement::OutsideOnly},
    {'P', "Prepare", "pgoutput Prepare", kTwoPhaseVersion, Placement::OutsideOnly},
    {'K', "Commit Prepared", "pgoutput Commit Prepared", kTwoPhaseVersion, Placement::OutsideOnly},
    {'r', "Rollback Prepared", "pgoutput Rollback Prepared", kTwoPhaseVersion,
     Placement::OutsideOnly},
    {'p', "Stream Prepare", "pgoutput Stream Prepare", kTwoPhaseVersion, Placement::OutsideOnly},
};
constexpr size_t kNumTypes = sizeof kTypes / sizeof kTypes[0];
static_assert(kNumTypes == std::variant_size_v<Message>);

/// Type byte -> index into kTypes, or -1.
constexpr std::array<int8_t, 256> kTypeIndex = [] {
    std::array<int8_t, 256> idx{};
    idx.fill(-1);
    for (size_t i = 0; i < kNumTypes; ++i) {
        idx[static_cast<uint8_t>(kTypes[i].type)] = static_cast<int8_t>(i);
    }
    return idx;
}();

std::string quote_byte(uint8_t b) {
    if (b >= 0x20 && b < 0x7f)
        return std::string("'") + static_cast<char>(b) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "'\\x%02x'", b);
    return buf;
}

void check_context(const CodecContext& ctx) {
    if (ctx.proto_version < kMinProtoVersion || ctx.proto_version > kMaxProtoVersion) {
        throw std::invalid_argument("pgoutput CodecContext: unsupported proto_version " +
                                    std::to_string(ctx.proto_version) + " (supported: 1-4)");
    }
    if (ctx.in_stream_block && ctx.proto_version < kStreamingVersion) {
        throw std::invalid_argument(
            "pgoutput CodecContext: in_stream_block requires proto_version >= 2");
    }
    if (ctx.streaming_parallel && ctx.proto_version < kParallelVersion) {
        throw std::invalid_argument(
            "pgoutput CodecContext: streaming_parallel requires proto_version >= 4");
    }
}

// ---------------------------------------------------------------------------
// Field readers

inline Lsn read_lsn(ByteReader& r, const char* field) {
    return Lsn(r.u64(field));
}

/// An LSN that proto.c requires to be valid ("... not set in ... message").
inline Lsn read_set_lsn(ByteReader& r, const char* field) {
    size_t at = r.offset();
    Lsn v(r.u64(field));
    if (!v.valid())
        r.fail_at(std::string(field) + " is not set (0/0)", at);
    return v;
}

/// A flags byte that must be 0 (Commit, Stream Commit, two-phase messages).
inline uint8_t read_zero_flags(ByteReader& r) {
    size_t at = r.offset();
    uint8_t flags = r.u8("flags");
    if (flags != 0)
        r.fail_at("unrecognized flags " + std::to_string(flags) + " (must be 0)", at);
    return flags;
}

/// A flags byte whose bits must all be in `mask`.
inline uint8_t read_flag_bits(ByteReader& r, uint8_t mask, const char* field) {
    size_t at = r.offset();
    uint8_t flags = r.u8(field);
    if ((flags & ~mask) != 0) {
        r.fail_at(std::string("unrecognized bits in ") + field + " " + std::to_string(flags), at);
    }
    return flags;
}

/// The (sub)xid that R/Y/I/U/D/T/M carry right after the type byte inside a
/// stream block. worker.c rejects an invalid one.
inline std::optional<uint32_t> read_stream_xid(ByteReader& r, const CodecContext& ctx) {
    if (!ctx.in_stream_block)
        return std::nullopt;
    size_t at = r.offset();
    uint32_t xid = r.u32("stream xid");
    if (xid == 0)
        r.fail_at("invalid transaction ID 0 in stream block", at);
    return xid;
}

/// A non-negative Int16 or Int32 count/length.
template <typename Int>
Int read_count(ByteReader& r, const char* field) {
    size_t at = r.offset();
    Int n;
    if constexpr (sizeof(Int) == 2) {
        n = r.i16(field);
    } else {
        n = r.i32(field);
    }
    if (n < 0)
        r.fail_at(std::string("negative ") + field + " " + std::to_string(n), at);
    return n;
}

[[noreturn]] [[gnu::cold]] void fail_column(ByteReader& r, size_t at, const char* which, int col,
                                            const std::string& what) {
    r.fail_at(std::string(which) + " column " + std::to_string(col) + ": " + what, at);
}

/// TupleData (proto.c: logicalrep_read_tuple), checking every step: the
/// reference reader, used by read_tuple() to report malformed input. `which`
/// is "new tuple" or "old tuple", for error messages.
[[gnu::cold]] [[gnu::noinline]] void read_tuple_checked(ByteReader& r, TupleData& out,
                                                        const char* which) {
    size_t at = r.offset();
    int16_t natts = r.i16("tuple column count");
    if (natts < 0) {
        r.fail_at(std::string(which) + ": negative column count " + std::to_string(natts), at);
    }
    // Every column takes at least one byte; do not trust the count for reserve().
    out.clear();
    out.reserve(std::min(static_cast<size_t>(natts), r.remaining()));
    for (int i = 0; i < natts; ++i) {
        size_t kind_at = r.offset();
        if (r.remaining() < 1)
            fail_column(r, kind_at, which, i, "truncated before kind byte");
        uint8_t kind = r.u8();
        switch (kind) {
            case 'n':
                out.emplace_back();
                break;
            case 'u':
                out.push_back(ColumnValue{ColumnKind::Unchanged, {}});
                break;
            case 't':
            case 'b': {
                size_t len_at = r.offset();
                if (r.remaining() < 4) {
                    fail_column(r, len_at, which, i, "truncated reading value length");
                }
                int32_t len = r.i32();
                if (len < 0) {
                    fail_column(r, len_at, which, i,
                                "negative value length " + std::to_string(len));
                }
                if (static_cast<size_t>(len) > r.remaining()) {
                    fail_column(r, r.offset(), which, i,
                                "truncated value (length " + std::to_string(len) + ", " +
                                    std::to_string(r.remaining()) + " bytes remaining)");
                }
                ColumnValue& c = out.emplace_back();
                c.kind = static_cast<ColumnKind>(kind);
                c.data.assign(r.bytes(static_cast<size_t>(len)));
                break;
            }
            default:
                fail_column(r, kind_at, which, i, "unknown tuple column kind " + quote_byte(kind));
        }
    }
}

/// TupleData (proto.c: logicalrep_read_tuple), the hot path of decoding: it
/// parses with local pointers (one bounds check per field, the position in a
/// register), and refills `out` in place so that decode_into() reuses the
/// column strings' capacity. On any malformed input it rewinds and lets
/// read_tuple_checked() throw, so errors are reported exactly as before.
inline void read_tuple(ByteReader& r, TupleData& out, const char* which) {
    const size_t start = r.offset();
    const char* const begin = r.data().data() + start;
    const char* const end = r.data().data() + r.data().size();
    const char* p = begin;
    if (end - p < 2) [[unlikely]]
        goto malformed;
    {
        int16_t natts = static_cast<int16_t>(detail::load_be<uint16_t>(p));
        p += 2;
        if (natts < 0) [[unlikely]]
            goto malformed;
        const size_t n = static_cast<size_t>(natts);
        // Every column takes at least one byte; do not trust the count for reserve().
        if (out.capacity() < n)
            out.reserve(std::min(n, static_cast<size_t>(end - p)));
        // Elements below `have` are reused (decode_into), the others appended.
        const size_t have = out.size();
        for (size_t i = 0; i < n; ++i) {
            if (p == end) [[unlikely]]
                goto malformed;
            const char kind = *p++;
            if (kind == 't' || kind == 'b') {
                if (end - p < 4) [[unlikely]]
                    goto malformed;
                const uint32_t len = detail::load_be<uint32_t>(p);
                p += 4;
                // A negative Int32 length is > INT32_MAX as uint32_t.
                if (len > static_cast<uint32_t>(std::numeric_limits<int32_t>::max()) ||
                    len > static_cast<size_t>(end - p)) [[unlikely]] {
                    goto malformed;
                }
                if (i < have) {
                    // Reuse (decode_into): clear() + append() copies in place
                    // when the capacity suffices (assign() would go through
                    // the general _M_replace, with its aliasing checks).
                    ColumnValue& c = out[i];
                    c.kind = static_cast<ColumnKind>(kind);
                    c.data.clear();
                    c.data.append(p, len);
                } else {
                    // Fresh: copy into the inline (SSO) buffer when it fits,
                    // else construct with one exactly sized allocation.
                    ColumnValue& c = out.emplace_back();
                    c.kind = static_cast<ColumnKind>(kind);
                    if (len <= c.data.capacity()) {
                        c.data.append(p, len);
                    } else {
                        c.data = std::string(p, len);
                    }
                }
                p += len;
            } else if (kind == 'n' || kind == 'u') {
                if (i < have) {
                    out[i].kind = static_cast<ColumnKind>(kind);
                    out[i].data.clear();
                } else {
                    out.emplace_back().kind = static_cast<ColumnKind>(kind);
                }
            } else [[unlikely]] {
                goto malformed;
            }
        }
        if (out.size() > n)
            out.erase(out.begin() + static_cast<std::ptrdiff_t>(n), out.end());
        r.bytes(static_cast<size_t>(p - begin));
        return;
    }
malformed:
    // A fresh reader at the tuple's start: same offsets and context.
    ByteReader again(r.data(), r.context());
    again.bytes(start);
    read_tuple_checked(again, out, which);
    // Not reached: read_tuple_checked() accepts only what the loop above accepts.
    r.fail_at(std::string(which) + ": internal error: tuple parsers disagree", start);
}

// ---------------------------------------------------------------------------
// Message readers (proto.c: logicalrep_read_*)

void read_msg(ByteReader& r, const CodecContext&, BeginMsg& m) {
    m.final_lsn = read_set_lsn(r, "final_lsn");
    m.commit_time = r.i64("commit_time");
    m.xid = r.u32("xid");
}

void read_msg(ByteReader& r, const CodecContext&, CommitMsg& m) {
    m.flags = read_zero_flags(r);
    m.commit_lsn = read_lsn(r, "commit_lsn");
    m.end_lsn = read_lsn(r, "end_lsn");
    m.commit_time = r.i64("commit_time");
}

void read_msg(ByteReader& r, const CodecContext&, OriginMsg& m) {
    m.origin_lsn = read_lsn(r, "origin_lsn");
    m.name.assign(r.cstring("origin name"));
}

void read_msg(ByteReader& r, const CodecContext& ctx, RelationMsg& m) {
    m.xid = read_stream_xid(r, ctx);
    m.relid = r.u32("relid");
    m.nspname.assign(r.cstring("nspname"));
    m.relname.assign(r.cstring("relname"));
    size_t ri_at = r.offset();
    uint8_t ri = r.u8("replident");
    if (ri != 'd' && ri != 'n' && ri != 'f' && ri != 'i') {
        r.fail_at("unknown replica identity " + quote_byte(ri), ri_at);
    }
    m.replident = static_cast<char>(ri);
    int16_t natts = read_count<int16_t>(r, "column count");
    const size_t n = static_cast<size_t>(natts);
    // Refilled in place (decode_into reuses the names' capacity).
    if (m.columns.capacity() < n)
        m.columns.reserve(std::min(n, r.remaining() / kMinRelationColumnBytes));
    for (size_t i = 0; i < n; ++i) {
        RelationColumn& c = i < m.columns.size() ? m.columns[i] : m.columns.emplace_back();
        c.flags = read_flag_bits(r, kRelColumnFlagsMask, "column flags");
        c.name.assign(r.cstring("column name"));
        c.type_oid = r.u32("column type oid");
        c.type_mod = r.i32("column type modifier");
    }
    if (m.columns.size() > n)
        m.columns.erase(m.columns.begin() + static_cast<std::ptrdiff_t>(n), m.columns.end());
}

void read_msg(ByteReader& r, const CodecContext& ctx, TypeMsg& m) {
    m.xid = read_stream_xid(r, ctx);
    m.type_oid = r.u32("type oid");
    m.nspname.assign(r.cstring("nspname"));
    m.typname.assign(r.cstring("typname"));
}

void read_msg(ByteReader& r, const CodecContext& ctx, InsertMsg& m) {
    m.xid = read_stream_xid(r, ctx);
    m.relid = r.u32("relid");
    size_t at = r.offset();
    uint8_t action = r.u8("tuple marker");
    if (action != 'N')
        r.fail_at("expected new tuple marker 'N', got " + quote_byte(action), at);
    read_tuple(r, m.new_tuple, "new tuple");
}

void read_msg(ByteReader& r, const CodecContext& ctx, UpdateMsg& m) {
    m.xid = read_stream_xid(r, ctx);
    m.relid = r.u32("relid");
    size_t at = r.offset();
    uint8_t action = r.u8("tuple marker");
    if (action != 'K' && action != 'O' && action != 'N') {
        r.fail_at("expected tuple marker 'K', 'O' or 'N', got " + quote_byte(action), at);
    }
    if (action == 'K' || action == 'O') {
        m.old_kind = static_cast<OldTupleKind>(action);
        read_tuple(r, m.old_tuple, "old tuple");
        at = r.offset();
        action = r.u8("new tuple marker");
        if (action != 'N') {
            r.fail_at("expected new tuple marker 'N' after old tuple, got " + quote_byte(action),
                      at);
        }
    } else {
        m.old_kind = OldTupleKind::None;
        m.old_tuple.clear();
    }
    read_tuple(r, m.new_tuple, "new tuple");
}

void read_msg(ByteReader& r, const CodecContext& ctx, DeleteMsg& m) {
    m.xid = read_stream_xid(r, ctx);
    m.relid = r.u32("relid");
    size_t at = r.offset();
    uint8_t action = r.u8("old tuple marker");
    if (action != 'K' && action != 'O') {
        r.fail_at("expected old tuple marker 'K' or 'O', got " + quote_byte(action), at);
    }
    m.old_kind = static_cast<OldTupleKind>(action);
    read_tuple(r, m.old_tuple, "old tuple");
}

void read_msg(ByteReader& r, const CodecContext& ctx, TruncateMsg& m) {
    m.xid = read_stream_xid(r, ctx);
    int32_t nrelids = read_count<int32_t>(r, "relation count");
    m.flags = read_flag_bits(r, kTruncateFlagsMask, "truncate flags");
    m.relids.clear();
    m.relids.reserve(std::min(static_cast<size_t>(nrelids), r.remaining() / 4));
    for (int32_t i = 0; i < nrelids; ++i)
        m.relids.push_back(r.u32("relid"));
}

void read_msg(ByteReader& r, const CodecContext& ctx, LogicalMsg& m) {
    m.xid = read_stream_xid(r, ctx);
    m.flags = read_flag_bits(r, kMessageFlagsMask, "message flags");
    m.lsn = read_lsn(r, "lsn");
    m.prefix.assign(r.cstring("prefix"));
    int32_t len = read_count<int32_t>(r, "content length");
    m.content.assign(r.bytes(static_cast<size_t>(len), "content"));
}

void read_msg(ByteReader& r, const CodecContext&, StreamStartMsg& m) {
    size_t at = r.offset();
    m.xid = r.u32("xid");
    // worker.c: apply_handle_stream_start
    if (m.xid == 0)
        r.fail_at("invalid transaction ID 0", at);
    at = r.offset();
    m.first_segment = r.u8("first_segment");
    if (m.first_segment > 1) {
        r.fail_at("first_segment must be 0 or 1, got " + std::to_string(m.first_segment), at);
    }
}

void read_msg(ByteReader&, const CodecContext&, StreamStopMsg&) {}

void read_msg(ByteReader& r, const CodecContext&, StreamCommitMsg& m) {
    m.xid = r.u32("xid");
    m.flags = read_zero_flags(r);
    m.commit_lsn = read_lsn(r, "commit_lsn");
    m.end_lsn = read_lsn(r, "end_lsn");
    m.commit_time = r.i64("commit_time");
}

void read_msg(ByteReader& r, const CodecContext& ctx, StreamAbortMsg& m) {
    m.xid = r.u32("xid");
    m.subxid = r.u32("subxid");
    if (ctx.streaming_parallel) {
        m.abort_lsn = read_lsn(r, "abort_lsn");
        m.abort_time = r.i64("abort_time");
    } else {
        m.abort_lsn.reset();
        m.abort_time.reset();
    }
}

void read_msg(ByteReader& r, const CodecContext&, BeginPrepareMsg& m) {
    m.prepare_lsn = read_set_lsn(r, "prepare_lsn");
    m.end_lsn = read_set_lsn(r, "end_lsn");
    m.prepare_time = r.i64("prepare_time");
    m.xid = r.u32("xid");
    m.gid.assign(r.cstring("gid"));
}

/// proto.c: logicalrep_read_prepare_common (Prepare and Stream Prepare).
template <typename PrepareLike>
void read_prepare_common(ByteReader& r, PrepareLike& m) {
    m.flags = read_zero_flags(r);
    m.prepare_lsn = read_set_lsn(r, "prepare_lsn");
    m.end_lsn = read_set_lsn(r, "end_lsn");
    m.prepare_time = r.i64("prepare_time");
    size_t at = r.offset();
    m.xid = r.u32("xid");
    if (m.xid == 0)
        r.fail_at("invalid two-phase transaction ID 0", at);
    m.gid.assign(r.cstring("gid"));
}

void read_msg(ByteReader& r, const CodecContext&, PrepareMsg& m) {
    read_prepare_common(r, m);
}

void read_msg(ByteReader& r, const CodecContext&, CommitPreparedMsg& m) {
    m.flags = read_zero_flags(r);
    m.commit_lsn = read_set_lsn(r, "commit_lsn");
    m.end_lsn = read_set_lsn(r, "end_lsn");
    m.commit_time = r.i64("commit_time");
    m.xid = r.u32("xid");
    m.gid.assign(r.cstring("gid"));
}

void read_msg(ByteReader& r, const CodecContext&, RollbackPreparedMsg& m) {
    m.flags = read_zero_flags(r);
    m.prepare_end_lsn = read_set_lsn(r, "prepare_end_lsn");
    m.rollback_end_lsn = read_set_lsn(r, "rollback_end_lsn");
    m.prepare_time = r.i64("prepare_time");
    m.rollback_time = r.i64("rollback_time");
    m.xid = r.u32("xid");
    m.gid.assign(r.cstring("gid"));
}

void read_msg(ByteReader& r, const CodecContext&, StreamPrepareMsg& m) {
    read_prepare_common(r, m);
}

/// decode(): the message is constructed in place and returned (NRVO).
template <typename T>
Message read_new(ByteReader& r, const CodecContext& ctx) {
    Message msg(std::in_place_type<T>);
    read_msg(r, ctx, *std::get_if<T>(&msg));
    r.expect_end();
    return msg;
}

/// decode_into(): reads into `out`, reusing its storage when it already holds
/// a T. Every read_msg overload assigns every field, so nothing stale remains.
template <typename T>
void read_reuse(ByteReader& r, const CodecContext& ctx, Message& out) {
    T* m = std::get_if<T>(&out);
    if (m == nullptr)
        m = &out.template emplace<T>();
    read_msg(r, ctx, *m);
    r.expect_end();
}

/// Readers indexed like kTypes, i.e. by Message::index().
using NewReader = Message (*)(ByteReader&, const CodecContext&);
using ReuseReader = void (*)(ByteReader&, const CodecContext&, Message&);

template <size_t... I>
constexpr std::array<NewReader, sizeof...(I)> new_readers(std::index_sequence<I...>) {
    return {&read_new<std::variant_alternative_t<I, Message>>...};
}
template <size_t... I>
constexpr std::array<ReuseReader, sizeof...(I)> reuse_readers(std::index_sequence<I...>) {
    return {&read_reuse<std::variant_alternative_t<I, Message>>...};
}
constexpr auto kNewReaders = new_readers(std::make_index_sequence<kNumTypes>{});
constexpr auto kReuseReaders = reuse_readers(std::make_index_sequence<kNumTypes>{});

[[noreturn]] [[gnu::cold]] void fail_header(ByteReader& r, const CodecContext& ctx, uint8_t type) {
    int idx = kTypeIndex[type];
    if (idx < 0)
        r.fail_at("unknown pgoutput message type " + quote_byte(type), 0);
    const TypeInfo& info = kTypes[idx];
    r.set_context(info.context);
    if (ctx.proto_version < info.min_version) {
        r.fail_at(std::string("message requires protocol version ") +
                      std::to_string(info.min_version) + " or later, negotiated " +
                      std::to_string(ctx.proto_version),
                  0);
    }
    if (ctx.in_stream_block && info.placement == Placement::OutsideOnly) {
        r.fail_at(info.type == 'S' ? "duplicate Stream Start inside a stream block"
                                   : "message not allowed inside a stream block (missing Stream "
                                     "Stop)",
                  0);
    }
    r.fail_at("Stream Stop without Stream Start", 0);
}

/// Validates ctx and the type byte against the version and the stream-block
/// placement; returns the index into kTypes (== the Message alternative).
inline size_t read_header(ByteReader& r, const CodecContext& ctx) {
    if (ctx.proto_version < kMinProtoVersion || ctx.proto_version > kMaxProtoVersion ||
        (ctx.in_stream_block && ctx.proto_version < kStreamingVersion) ||
        (ctx.streaming_parallel && ctx.proto_version < kParallelVersion)) [[unlikely]] {
        check_context(ctx);
    }
    uint8_t type = r.u8("message type");
    int idx = kTypeIndex[type];
    if (idx < 0) [[unlikely]]
        fail_header(r, ctx, type);
    const TypeInfo& info = kTypes[idx];
    r.set_context(info.context);
    if (ctx.proto_version < info.min_version ||
        (ctx.in_stream_block ? info.placement == Placement::OutsideOnly
                             : info.placement == Placement::InsideOnly)) [[unlikely]] {
        fail_header(r, ctx, type);
    }
    return static_cast<size_t>(idx);
}

// ---------------------------------------------------------------------------
// Field writers

[[noreturn]] [[gnu::cold]] void fail_encode(const char* message_name, const std::string& what) {
    throw std::invalid_argument(std::string("pgoutput encode ") + message_name + ": " + what);
}

void write_lsn(ByteWriter& w, Lsn lsn) {
    w.put_u64(lsn.value());
}

void write_stream_xid(ByteWriter& w, const std::optional<uint32_t>& xid, const CodecContext& ctx,
                      const char* name) {
    if (xid.has_value() != ctx.in_stream_block) {
        fail_encode(name, ctx.in_stream_block ? "xid is required inside a stream block"
                                              : "xid must be absent outside a stream block");
    }
    if (xid)
        w.put_u32(*xid);
}

void write_cstring(ByteWriter& w, const std::string& s, const char* name, const char* field) {
    if (s.find('\0') != std::string::npos) {
        fail_encode(name, std::string(field) + " contains a NUL byte");
    }
    w.put_cstring(s);
}

size_t tuple_wire_size(const TupleData& t) {
    size_t n = 2;
    for (const ColumnValue& c : t)
        n += 5 + c.data.size();
    return n;
}

void write_tuple(ByteWriter& w, const TupleData& t, const char* name) {
    if (t.size() > static_cast<size_t>(std::numeric_limits<int16_t>::max())) {
        fail_encode(name, "tuple has more than 32767 columns");
    }
    w.put_i16(static_cast<int16_t>(t.size()));
    for (const ColumnValue& c : t) {
        switch (c.kind) {
            case ColumnKind::Null:
            case ColumnKind::Unchanged:
                if (!c.data.empty())
                    fail_encode(name, "'n'/'u' column must not carry data");
                w.put_u8(static_cast<uint8_t>(c.kind));
                break;
            case ColumnKind::Text:
            case ColumnKind::Binary:
                if (c.data.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
                    fail_encode(name, "column value longer than 2^31-1 bytes");
                }
                w.put_u8(static_cast<uint8_t>(c.kind));
                w.put_i32(static_cast<int32_t>(c.data.size()));
                w.put_bytes(c.data);
                break;
            default:
                fail_encode(name, "invalid ColumnKind " + quote_byte(static_cast<uint8_t>(c.kind)));
        }
    }
}

// ---------------------------------------------------------------------------
// Message writers (proto.c: logicalrep_write_*)

void write_msg(ByteWriter& w, const BeginMsg& m, const CodecContext&) {
    w.put_u8('B');
    write_lsn(w, m.final_lsn);
    w.put_i64(m.commit_time);
    w.put_u32(m.xid);
}

void write_msg(ByteWriter& w, const CommitMsg& m, const CodecContext&) {
    w.put_u8('C');
    w.put_u8(m.flags);
    write_lsn(w, m.commit_lsn);
    write_lsn(w, m.end_lsn);
    w.put_i64(m.commit_time);
}

void write_msg(ByteWriter& w, const OriginMsg& m, const CodecContext&) {
    w.put_u8('O');
    write_lsn(w, m.origin_lsn);
    write_cstring(w, m.name, "Origin", "name");
}

void write_msg(ByteWriter& w, const RelationMsg& m, const CodecContext& ctx) {
    w.put_u8('R');
    write_stream_xid(w, m.xid, ctx, "Relation");
    w.put_u32(m.relid);
    write_cstring(w, m.nspname, "Relation", "nspname");
    write_cstring(w, m.relname, "Relation", "relname");
    w.put_u8(static_cast<uint8_t>(m.replident));
    if (m.columns.size() > static_cast<size_t>(std::numeric_limits<int16_t>::max())) {
        fail_encode("Relation", "more than 32767 columns");
    }
    w.put_i16(static_cast<int16_t>(m.columns.size()));
    for (const RelationColumn& c : m.columns) {
        w.put_u8(c.flags);
        write_cstring(w, c.name, "Relation", "column name");
        w.put_u32(c.type_oid);
        w.put_i32(c.type_mod);
    }
}

void write_msg(ByteWriter& w, const TypeMsg& m, const CodecContext& ctx) {
    w.put_u8('Y');
    write_stream_xid(w, m.xid, ctx, "Type");
    w.put_u32(m.type_oid);
    write_cstring(w, m.nspname, "Type", "nspname");
    write_cstring(w, m.typname, "Type", "typname");
}

void write_msg(ByteWriter& w, const InsertMsg& m, const CodecContext& ctx) {
    w.put_u8('I');
    write_stream_xid(w, m.xid, ctx, "Insert");
    w.put_u32(m.relid);
    w.put_u8('N');
    write_tuple(w, m.new_tuple, "Insert");
}

void write_msg(ByteWriter& w, const UpdateMsg& m, const CodecContext& ctx) {
    w.put_u8('U');
    write_stream_xid(w, m.xid, ctx, "Update");
    w.put_u32(m.relid);
    switch (m.old_kind) {
        case OldTupleKind::None:
            if (!m.old_tuple.empty())
                fail_encode("Update", "old_tuple set but old_kind is None");
            break;
        case OldTupleKind::Key:
        case OldTupleKind::Full:
            w.put_u8(static_cast<uint8_t>(m.old_kind));
            write_tuple(w, m.old_tuple, "Update");
            break;
        default:
            fail_encode("Update", "invalid OldTupleKind");
    }
    w.put_u8('N');
    write_tuple(w, m.new_tuple, "Update");
}

void write_msg(ByteWriter& w, const DeleteMsg& m, const CodecContext& ctx) {
    w.put_u8('D');
    write_stream_xid(w, m.xid, ctx, "Delete");
    w.put_u32(m.relid);
    if (m.old_kind != OldTupleKind::Key && m.old_kind != OldTupleKind::Full) {
        fail_encode("Delete", "old_kind must be Key or Full");
    }
    w.put_u8(static_cast<uint8_t>(m.old_kind));
    write_tuple(w, m.old_tuple, "Delete");
}

void write_msg(ByteWriter& w, const TruncateMsg& m, const CodecContext& ctx) {
    w.put_u8('T');
    write_stream_xid(w, m.xid, ctx, "Truncate");
    if (m.relids.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        fail_encode("Truncate", "too many relids");
    }
    w.put_i32(static_cast<int32_t>(m.relids.size()));
    w.put_u8(m.flags);
    for (uint32_t relid : m.relids)
        w.put_u32(relid);
}

void write_msg(ByteWriter& w, const LogicalMsg& m, const CodecContext& ctx) {
    w.put_u8('M');
    write_stream_xid(w, m.xid, ctx, "Message");
    w.put_u8(m.flags);
    write_lsn(w, m.lsn);
    write_cstring(w, m.prefix, "Message", "prefix");
    if (m.content.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        fail_encode("Message", "content longer than 2^31-1 bytes");
    }
    w.put_i32(static_cast<int32_t>(m.content.size()));
    w.put_bytes(m.content);
}

void write_msg(ByteWriter& w, const StreamStartMsg& m, const CodecContext&) {
    w.put_u8('S');
    w.put_u32(m.xid);
    w.put_u8(m.first_segment);
}

void write_msg(ByteWriter& w, const StreamStopMsg&, const CodecContext&) {
    w.put_u8('E');
}

void write_msg(ByteWriter& w, const StreamCommitMsg& m, const CodecContext&) {
    w.put_u8('c');
    w.put_u32(m.xid);
    w.put_u8(m.flags);
    write_lsn(w, m.commit_lsn);
    write_lsn(w, m.end_lsn);
    w.put_i64(m.commit_time);
}

void write_msg(ByteWriter& w, const StreamAbortMsg& m, const CodecContext& ctx) {
    if (m.abort_lsn.has_value() != m.abort_time.has_value()) {
        fail_encode("Stream Abort", "abort_lsn and abort_time must be both set or both absent");
    }
    if (m.abort_lsn.has_value() != ctx.streaming_parallel) {
        fail_encode("Stream Abort",
                    ctx.streaming_parallel
                        ? "abort_lsn/abort_time required with streaming_parallel"
                        : "abort_lsn/abort_time only exist with streaming_parallel");
    }
    w.put_u8('A');
    w.put_u32(m.xid);
    w.put_u32(m.subxid);
    if (m.abort_lsn) {
        write_lsn(w, *m.abort_lsn);
        w.put_i64(*m.abort_time);
    }
}

void write_msg(ByteWriter& w, const BeginPrepareMsg& m, const CodecContext&) {
    w.put_u8('b');
    write_lsn(w, m.prepare_lsn);
    write_lsn(w, m.end_lsn);
    w.put_i64(m.prepare_time);
    w.put_u32(m.xid);
    write_cstring(w, m.gid, "Begin Prepare", "gid");
}

/// proto.c: logicalrep_write_prepare_common (Prepare and Stream Prepare).
template <typename PrepareLike>
void write_prepare_common(ByteWriter& w, char type, const PrepareLike& m, const char* name) {
    w.put_u8(static_cast<uint8_t>(type));
    w.put_u8(m.flags);
    write_lsn(w, m.prepare_lsn);
    write_lsn(w, m.end_lsn);
    w.put_i64(m.prepare_time);
    w.put_u32(m.xid);
    write_cstring(w, m.gid, name, "gid");
}

void write_msg(ByteWriter& w, const PrepareMsg& m, const CodecContext&) {
    write_prepare_common(w, 'P', m, "Prepare");
}

void write_msg(ByteWriter& w, const CommitPreparedMsg& m, const CodecContext&) {
    w.put_u8('K');
    w.put_u8(m.flags);
    write_lsn(w, m.commit_lsn);
    write_lsn(w, m.end_lsn);
    w.put_i64(m.commit_time);
    w.put_u32(m.xid);
    write_cstring(w, m.gid, "Commit Prepared", "gid");
}

void write_msg(ByteWriter& w, const RollbackPreparedMsg& m, const CodecContext&) {
    w.put_u8('r');
    w.put_u8(m.flags);
    write_lsn(w, m.prepare_end_lsn);
    write_lsn(w, m.rollback_end_lsn);
    w.put_i64(m.prepare_time);
    w.put_i64(m.rollback_time);
    w.put_u32(m.xid);
    write_cstring(w, m.gid, "Rollback Prepared", "gid");
}

void write_msg(ByteWriter& w, const StreamPrepareMsg& m, const CodecContext&) {
    write_prepare_common(w, 'p', m, "Stream Prepare");
}

/// Rough encoded size, so encode() allocates once.
size_t size_hint(const Message& msg) {
    constexpr size_t kFixed = 64;
    return std::visit(
        [](const auto& m) -> size_t {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, InsertMsg>) {
                return kFixed + tuple_wire_size(m.new_tuple);
            } else if constexpr (std::is_same_v<T, UpdateMsg>) {
                return kFixed + tuple_wire_size(m.old_tuple) + tuple_wire_size(m.new_tuple);
            } else if constexpr (std::is_same_v<T, DeleteMsg>) {
                return kFixed + tuple_wire_size(m.old_tuple);
            } else if constexpr (std::is_same_v<T, RelationMsg>) {
                size_t n = kFixed + m.nspname.size() + m.relname.size();
                for (const auto& c : m.columns)
                    n += kMinRelationColumnBytes + c.name.size();
                return n;
            } else if constexpr (std::is_same_v<T, TruncateMsg>) {
                return kFixed + 4 * m.relids.size();
            } else if constexpr (std::is_same_v<T, LogicalMsg>) {
                return kFixed + m.prefix.size() + m.content.size();
            } else {
                return kFixed;
            }
        },
        msg);
}

}  // namespace

Message decode(std::string_view bytes, const CodecContext& ctx) {
    ByteReader r(bytes, "pgoutput");
    size_t idx = read_header(r, ctx);
    return kNewReaders[idx](r, ctx);
}

void decode_into(std::string_view bytes, const CodecContext& ctx, Message& out) {
    ByteReader r(bytes, "pgoutput");
    size_t idx = read_header(r, ctx);
    kReuseReaders[idx](r, ctx, out);
}

std::string encode(const Message& msg, const CodecContext& ctx) {
    check_context(ctx);
    ByteWriter w(size_hint(msg));
    std::visit([&](const auto& m) { write_msg(w, m, ctx); }, msg);
    return w.take();
}

char message_type(const Message& msg) {
    return kTypes[msg.index()].type;
}

const char* message_type_name(char type) {
    int idx = kTypeIndex[static_cast<uint8_t>(type)];
    return idx < 0 ? nullptr : kTypes[idx].name;
}

}  // namespace pgshift::pgoutput
