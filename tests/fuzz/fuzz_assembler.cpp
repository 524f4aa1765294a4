// Fuzz target for the pgoutput codec and the transaction assembler together:
// a stream of messages through decode() / decode_into() and a TxnAssembler,
// the way the decoder thread drives them.
//
// Input layout:
//   byte 0: options
//     bits 0-1: proto_version - 1 (1..4)
//     bit 2:    streaming_parallel (forces proto_version 4)
//     bits 3-4: TxnAssembler max_batch_bytes: 64, 1 KiB, 16 KiB or 8 MiB
//   then messages, each a big-endian UInt16 length and that many bytes (the
//   last one takes what is left if the length runs past the end).
//
// Each message is decoded with CodecContext::in_stream_block taken from the
// assembler, exactly like the decoder thread. A message the codec rejects
// (ProtocolError) is skipped; the first ProtocolError from the assembler ends
// the stream (it must not be used after a throw). Any other exception, or a
// broken invariant, aborts:
//   * decode_into() into a reused Message (one per type byte) gives the same
//     message as decode(), or fails with the same ProtocolError;
//   * after every feed(), next_batch() is pulled until nullptr; chunks of one
//     source transaction are consecutive and agree on xid, commit_lsn and
//     origin (and all but the last on commit_time); only the last chunk has
//     a valid end_lsn or a barrier nonce; a chunk holds only change
//     messages; the data changes of a chunk that is not the last stay within
//     max_batch_bytes unless there is only one.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "change.h"
#include "decoder/pgoutput_codec.h"
#include "decoder/txn_assembler.h"

namespace {

using pgshift::ProtocolError;
using pgshift::TxnAssembler;
using pgshift::TxnBatch;
using namespace pgshift::pgoutput;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_assembler: %s\n", what);
    std::abort();
}

constexpr size_t kBatchBytes[] = {64, 1024, 16 << 10, 8 << 20};

/// Decodes with both entry points and checks they agree. Returns false when
/// the codec rejects the message.
bool decode_both(std::string_view bytes, const CodecContext& ctx, Message& reused, Message& out) {
    std::optional<std::string> error_new;
    std::optional<std::string> error_reuse;
    try {
        out = decode(bytes, ctx);
    } catch (const ProtocolError& e) {
        if (e.offset() > bytes.size())
            die("ProtocolError offset beyond input");
        error_new = e.what();
    }
    try {
        decode_into(bytes, ctx, reused);
    } catch (const ProtocolError& e) {
        error_reuse = e.what();
    }
    if (error_new != error_reuse)
        die("decode_into() and decode() disagree on rejecting the message");
    if (error_new)
        return false;
    if (!(reused == out))
        die("decode_into() into a reused Message differs from decode()");
    return true;
}

bool is_change(const Message& m) {
    return std::holds_alternative<RelationMsg>(m) || std::holds_alternative<TypeMsg>(m) ||
           std::holds_alternative<InsertMsg>(m) || std::holds_alternative<UpdateMsg>(m) ||
           std::holds_alternative<DeleteMsg>(m) || std::holds_alternative<TruncateMsg>(m) ||
           std::holds_alternative<LogicalMsg>(m);
}

/// Invariants across the chunks handed out by one assembler.
class ChunkChecker {
  public:
    explicit ChunkChecker(size_t max_batch_bytes) : max_(max_batch_bytes) {}

    void check(const TxnBatch& b) {
        if (open_) {
            const TxnBatch& p = *open_;
            if (b.xid != p.xid || b.commit_lsn != p.commit_lsn || b.origin != p.origin)
                die("chunks of one transaction disagree on xid/commit_lsn/origin");
            // The last chunk takes commit_time from the Commit message, the
            // others from Begin; the assembler does not check that they are
            // equal (pgoutput always sends the same value, worker.c does not
            // check it either), so only the earlier chunks must agree.
            if (!b.last_chunk && b.commit_time != p.commit_time)
                die("chunks of one transaction disagree on commit_time");
        }
        if (!b.last_chunk) {
            if (b.end_lsn.valid())
                die("a chunk that is not the last has a valid end_lsn");
            if (b.barrier_nonce)
                die("a chunk that is not the last carries the barrier nonce");
            if (b.changes.empty())
                die("an empty chunk that is not the last");
        }
        if (!b.last_chunk) {
            // Bounded memory: a chunk is handed out before its data changes
            // exceed max_batch_bytes, unless one change alone does. (Schema
            // messages before the first data change, and prepared
            // transactions, which are held whole, are not bounded.)
            size_t data_bytes = 0;
            size_t data_changes = 0;
            for (const Message& m : b.changes) {
                if (!std::holds_alternative<RelationMsg>(m) &&
                    !std::holds_alternative<TypeMsg>(m)) {
                    data_bytes += pgshift::approx_message_bytes(m);
                    ++data_changes;
                }
            }
            if (data_changes > 1 && data_bytes > max_)
                die("a chunk that is not the last exceeds max_batch_bytes with its data changes");
        }
        for (const Message& m : b.changes) {
            if (!is_change(m))
                die("a chunk holds a message that is not a change");
        }
        if (b.last_chunk) {
            open_.reset();
        } else {
            open_ = std::make_unique<TxnBatch>();
            open_->xid = b.xid;
            open_->commit_lsn = b.commit_lsn;
            open_->commit_time = b.commit_time;
            open_->origin = b.origin;
        }
    }

  private:
    size_t max_;
    std::unique_ptr<TxnBatch> open_;  ///< header of the transaction being chunked
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0)
        return 0;
    const uint8_t sel = data[0];
    CodecContext ctx;
    ctx.proto_version = 1 + (sel & 3);
    ctx.streaming_parallel = (sel & 4) != 0;
    if (ctx.streaming_parallel)
        ctx.proto_version = 4;

    TxnAssembler::Options opts;
    opts.max_batch_bytes = kBatchBytes[(sel >> 3) & 3];
    opts.proto_version = ctx.proto_version;
    TxnAssembler assembler(opts);
    ChunkChecker checker(opts.max_batch_bytes);
    std::array<Message, 256> reused;  // one per type byte, as a decoder loop would keep

    size_t pos = 1;
    while (pos < size) {
        size_t len = size - pos >= 2 ? (size_t{data[pos]} << 8 | data[pos + 1]) : 0;
        pos += std::min<size_t>(2, size - pos);
        len = std::min(len, size - pos);
        std::string_view bytes(reinterpret_cast<const char*>(data) + pos, len);
        pos += len;

        ctx.in_stream_block = assembler.in_stream_block();
        if (ctx.in_stream_block && ctx.proto_version < 2)
            die("assembler in a stream block below protocol version 2");
        Message msg;
        Message& slot = reused[bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0])];
        if (!decode_both(bytes, ctx, slot, msg))
            continue;
        try {
            assembler.feed(std::move(msg));
            while (std::unique_ptr<TxnBatch> b = assembler.next_batch())
                checker.check(*b);
        } catch (const ProtocolError& e) {
            if (e.offset() != 0)
                die("assembler ProtocolError with a non-zero offset");
            break;  // the assembler must not be used after a throw
        }
    }
    return 0;
}
