// Decoding and encoding of pgoutput logical replication messages, protocol
// versions 1-4, byte for byte as in the PostgreSQL docs, section "Logical
// Replication Message Formats", and src/backend/replication/logical/proto.c
// (logicalrep_read_* / logicalrep_write_*). Pure functions, no I/O: the input
// is the payload of one XLogData frame, which for a logical stream is exactly
// one pgoutput message.
//
// Why the codec looks the way it does:
//
// * Context-dependent layout. Inside a Stream Start .. Stream Stop block
//   (proto >= 2) Relation, Type, Insert, Update, Delete, Truncate and Message
//   carry an extra Int32 xid right after the type byte: proto.c writes it with
//   `if (TransactionIdIsValid(xid)) pq_sendint32(out, xid);` and the apply
//   worker reads it only while in a streamed transaction
//   (worker.c: handle_streamed_transaction). Nothing in the bytes says whether
//   it is there, so the caller must track the block state and pass it in
//   CodecContext::in_stream_block. The xid is that of the (sub)transaction
//   that made the change, not necessarily the top-level one. Likewise Stream
//   Abort carries abort_lsn/abort_time only when the subscription negotiated
//   streaming = parallel (pgoutput.c: pgoutput_stream_abort,
//   write_abort_info), not merely protocol version 4.
// * 'K' placeholders. A 'K' (replica identity key) old tuple still has one
//   entry per published column; non-key columns are 'n' placeholders
//   (heapam.c: ExtractReplicaIdentity), so they are not NULL values. The
//   codec keeps the wire form; consumers must consult RelationColumn::is_key.
// * 'u' is never a value. It marks an unchanged out-of-line TOAST datum whose
//   bytes were not sent (proto.c: logicalrep_write_tuple). It is decoded as
//   ColumnKind::Unchanged with empty data and must never be written to a
//   target. The codec does not reject 'u' anywhere (proto.c does not either):
//   it is normal in an Update's new tuple and can even reach an Insert when a
//   PG15+ row filter turns an UPDATE into an INSERT; policy is the applier's.
// * The XLogData header LSN is not unique (several changes of one multi-insert
//   record share it, Relation/Type carry 0/0) nor monotonic, so nothing here
//   depends on it; progress is tracked per transaction with Commit end_lsn.
// * 'K' is also the Commit Prepared type byte at top level; the old-tuple
//   marker is only read inside Update/Delete, so there is no ambiguity.
//
// Validation is strict, mirroring proto.c/worker.c: Commit, Stream Commit and
// the two-phase messages must have flags 0; Begin/prepare LSNs that proto.c
// checks ("... not set in ... message") must be valid; unknown message types,
// tuple kinds and old-tuple markers, negative counts and lengths, truncated
// input and trailing bytes are errors; streaming messages need proto >= 2,
// two-phase messages proto >= 3; the stream-block placement rules of worker.c
// are enforced (Stream Stop only inside a block; Stream Start, Stream
// Commit/Abort/Prepare and transaction boundary messages only outside one); a
// stream-block xid must be valid (non-zero). Unused flag bits of Relation
// columns, Truncate and Message are rejected, as are first_segment values
// other than 0/1 and replident values other than d/n/f/i. Every failure is a
// ProtocolError whose what() names the message and field and gives the byte
// offset.
//
// encode() is the exact inverse of decode(): for any input that decode()
// accepts, encode(decode(b, ctx), ctx) == b. It writes field values as given
// (flags, LSNs and protocol version are not checked, so tests can build
// invalid input) but throws std::invalid_argument for messages that cannot be
// represented unambiguously in ctx (xid presence not matching
// ctx.in_stream_block, Stream Abort parallel fields not matching
// ctx.streaming_parallel, invalid enum values, data on 'n'/'u' columns, NUL in
// strings, counts that do not fit the wire type).
#pragma once

#include <string>
#include <string_view>

#include "decoder/byte_reader.h"
#include "decoder/pgoutput_messages.h"

namespace pgshift::pgoutput {

/// Negotiated options and stream state needed to interpret a message.
struct CodecContext {
    int proto_version = 1;            ///< 1-4 (PG14: 2, PG15: 3, PG16+: 4)
    bool in_stream_block = false;     ///< between Stream Start and Stream Stop (needs proto >= 2)
    bool streaming_parallel = false;  ///< streaming = parallel was negotiated (needs proto >= 4)
};

/// Decodes one pgoutput message. Throws ProtocolError on malformed input and
/// std::invalid_argument on an impossible ctx (version outside 1-4,
/// in_stream_block below v2, streaming_parallel below v4).
Message decode(std::string_view bytes, const CodecContext& ctx);

/// Same as `out = decode(bytes, ctx)`, but reuses the heap storage already
/// held by `out` (strings, tuple vectors) when it holds the same message kind,
/// so a decoder loop that keeps one Message stops allocating once the
/// capacities have grown. On ProtocolError `out` holds an unspecified but valid
/// message.
void decode_into(std::string_view bytes, const CodecContext& ctx, Message& out);

/// Encodes one message; the exact inverse of decode() (see above).
std::string encode(const Message& msg, const CodecContext& ctx);

/// The message type byte: 'B', 'C', 'O', 'R', 'Y', 'I', 'U', 'D', 'T', 'M',
/// 'S', 'E', 'c', 'A', 'b', 'P', 'K', 'r' or 'p'.
char message_type(const Message& msg);

/// Human-readable name of a message type byte ("Begin", "Stream Abort", ...),
/// or nullptr when the byte is not a pgoutput message type.
const char* message_type_name(char type);

}  // namespace pgshift::pgoutput
