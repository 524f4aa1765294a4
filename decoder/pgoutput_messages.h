// The pgoutput logical replication messages, protocol versions 1-4
// (PostgreSQL 14-17), as plain value types.
//
// Layouts follow docs "Logical Replication Message Formats" and
// src/backend/replication/logical/proto.c. One struct per message, in the
// style of proto.c's logicalrep_read_* / logicalrep_write_* pairs. The codec
// (pgoutput_codec.h) turns bytes into these and back, without any I/O.
//
// Field conventions: LSNs are WAL byte positions; *_time fields are
// microseconds since 2000-01-01 UTC; xids are 32-bit transaction ids that are
// only meaningful within one replication session.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lsn.h"

namespace pgshift::pgoutput {

/// How one column of a TupleData is sent (proto.c: logicalrep_write_tuple).
enum class ColumnKind : char {
    Null = 'n',       ///< SQL NULL, or a placeholder for a non-key column of a 'K' old tuple
    Unchanged = 'u',  ///< unchanged TOASTed value; the value is NOT sent and must never be written
    Text = 't',       ///< the type's text output representation
    Binary = 'b',     ///< the type's binary send representation (binary mode only)
};

struct ColumnValue {
    ColumnKind kind = ColumnKind::Null;
    std::string data;  ///< bytes of the value for Text/Binary, empty otherwise
    bool operator==(const ColumnValue&) const = default;
};

/// One tuple: a value per *published* column, in Relation column order
/// (dropped and generated columns are absent; not indexed by attnum).
using TupleData = std::vector<ColumnValue>;

/// Old-tuple marker of Update/Delete: none, 'K' (replica identity key columns,
/// other columns are 'n' placeholders) or 'O' (whole old row, RI FULL).
enum class OldTupleKind : char { None = 0, Key = 'K', Full = 'O' };

struct BeginMsg {
    Lsn final_lsn;  ///< LSN of the commit record; must equal CommitMsg::commit_lsn
    int64_t commit_time = 0;
    uint32_t xid = 0;
    bool operator==(const BeginMsg&) const = default;
};

struct CommitMsg {
    uint8_t flags = 0;  ///< always 0; anything else is a protocol violation
    Lsn commit_lsn;
    Lsn end_lsn;  ///< end of the commit record: the position to confirm / record as progress
    int64_t commit_time = 0;
    bool operator==(const CommitMsg&) const = default;
};

struct OriginMsg {
    Lsn origin_lsn;  ///< commit LSN on the origin node
    std::string name;
    bool operator==(const OriginMsg&) const = default;
};

struct RelationColumn {
    uint8_t flags = 0;  ///< bit 0: part of the replica identity key
    std::string name;
    uint32_t type_oid = 0;
    int32_t type_mod = -1;
    bool is_key() const { return (flags & 1) != 0; }
    bool operator==(const RelationColumn&) const = default;
};

struct RelationMsg {
    std::optional<uint32_t> xid;  ///< present only inside a stream block (v2+)
    uint32_t relid = 0;
    std::string nspname;  ///< empty means pg_catalog
    std::string relname;
    char replident = 'd';  ///< pg_class.relreplident: d, n, f or i
    std::vector<RelationColumn> columns;
    bool operator==(const RelationMsg&) const = default;
};

struct TypeMsg {
    std::optional<uint32_t> xid;
    uint32_t type_oid = 0;
    std::string nspname;  ///< empty means pg_catalog
    std::string typname;
    bool operator==(const TypeMsg&) const = default;
};

struct InsertMsg {
    std::optional<uint32_t> xid;
    uint32_t relid = 0;
    TupleData new_tuple;
    bool operator==(const InsertMsg&) const = default;
};

struct UpdateMsg {
    std::optional<uint32_t> xid;
    uint32_t relid = 0;
    OldTupleKind old_kind = OldTupleKind::None;
    TupleData old_tuple;  ///< empty when old_kind is None
    TupleData new_tuple;
    bool operator==(const UpdateMsg&) const = default;
};

struct DeleteMsg {
    std::optional<uint32_t> xid;
    uint32_t relid = 0;
    OldTupleKind old_kind = OldTupleKind::Key;  ///< 'K' or 'O'
    TupleData old_tuple;
    bool operator==(const DeleteMsg&) const = default;
};

struct TruncateMsg {
    static constexpr uint8_t kCascade = 1;
    static constexpr uint8_t kRestartIdentity = 2;
    std::optional<uint32_t> xid;
    uint8_t flags = 0;
    std::vector<uint32_t> relids;
    bool operator==(const TruncateMsg&) const = default;
};

/// pg_logical_emit_message() output ('M'); needs the `messages` option.
struct LogicalMsg {
    std::optional<uint32_t> xid;
    uint8_t flags = 0;  ///< bit 0: transactional
    Lsn lsn;            ///< end of the message record (the function's return value)
    std::string prefix;
    std::string content;
    bool transactional() const { return (flags & 1) != 0; }
    bool operator==(const LogicalMsg&) const = default;
};

struct StreamStartMsg {
    uint32_t xid = 0;
    uint8_t first_segment = 0;
    bool operator==(const StreamStartMsg&) const = default;
};

struct StreamStopMsg {
    bool operator==(const StreamStopMsg&) const = default;
};

struct StreamCommitMsg {
    uint32_t xid = 0;
    uint8_t flags = 0;
    Lsn commit_lsn;
    Lsn end_lsn;
    int64_t commit_time = 0;
    bool operator==(const StreamCommitMsg&) const = default;
};

struct StreamAbortMsg {
    uint32_t xid = 0;
    uint32_t subxid = 0;           ///< == xid when the whole transaction aborts
    std::optional<Lsn> abort_lsn;  ///< only with streaming = parallel (v4)
    std::optional<int64_t> abort_time;
    bool operator==(const StreamAbortMsg&) const = default;
};

struct BeginPrepareMsg {
    Lsn prepare_lsn;
    Lsn end_lsn;
    int64_t prepare_time = 0;
    uint32_t xid = 0;
    std::string gid;
    bool operator==(const BeginPrepareMsg&) const = default;
};

struct PrepareMsg {
    uint8_t flags = 0;
    Lsn prepare_lsn;
    Lsn end_lsn;
    int64_t prepare_time = 0;
    uint32_t xid = 0;
    std::string gid;
    bool operator==(const PrepareMsg&) const = default;
};

struct CommitPreparedMsg {
    uint8_t flags = 0;
    Lsn commit_lsn;
    Lsn end_lsn;
    int64_t commit_time = 0;
    uint32_t xid = 0;
    std::string gid;
    bool operator==(const CommitPreparedMsg&) const = default;
};

struct RollbackPreparedMsg {
    uint8_t flags = 0;
    Lsn prepare_end_lsn;
    Lsn rollback_end_lsn;
    int64_t prepare_time = 0;
    int64_t rollback_time = 0;
    uint32_t xid = 0;
    std::string gid;
    bool operator==(const RollbackPreparedMsg&) const = default;
};

struct StreamPrepareMsg {
    uint8_t flags = 0;
    Lsn prepare_lsn;
    Lsn end_lsn;
    int64_t prepare_time = 0;
    uint32_t xid = 0;
    std::string gid;
    bool operator==(const StreamPrepareMsg&) const = default;
};

using Message = std::variant<BeginMsg, CommitMsg, OriginMsg, RelationMsg, TypeMsg, InsertMsg,
                             UpdateMsg, DeleteMsg, TruncateMsg, LogicalMsg, StreamStartMsg,
                             StreamStopMsg, StreamCommitMsg, StreamAbortMsg, BeginPrepareMsg,
                             PrepareMsg, CommitPreparedMsg, RollbackPreparedMsg, StreamPrepareMsg>;

}  // namespace pgshift::pgoutput
