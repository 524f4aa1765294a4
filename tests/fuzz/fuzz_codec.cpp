// Fuzz target for the pgoutput codec and the CopyBoth frame parser.
//
// Input layout: byte 0 selects the CodecContext, the rest is the message.
//   bits 0-1: proto_version - 1 (1..4)
//   bit 2:    in_stream_block (forces proto_version >= 2)
//   bit 3:    streaming_parallel (forces proto_version 4)
// The rest is decoded as a pgoutput message and also parsed as a server
// CopyBoth frame (whose XLogData payload is then decoded too). Whatever is
// accepted must re-encode to exactly the same bytes and decode again to an
// equal message; anything else aborts. Rejection must be a ProtocolError.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "decoder/copyboth.h"
#include "decoder/pgoutput_codec.h"

namespace {

using pgshift::ProtocolError;
using namespace pgshift::pgoutput;
namespace copyboth = pgshift::copyboth;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_codec: %s\n", what);
    std::abort();
}

CodecContext context_from(uint8_t selector) {
    CodecContext ctx;
    ctx.proto_version = 1 + (selector & 3);
    ctx.in_stream_block = (selector & 4) != 0;
    ctx.streaming_parallel = (selector & 8) != 0;
    if (ctx.in_stream_block && ctx.proto_version < 2)
        ctx.proto_version = 2;
    if (ctx.streaming_parallel)
        ctx.proto_version = 4;
    return ctx;
}

void check_message(std::string_view bytes, const CodecContext& ctx) {
    Message msg;
    try {
        msg = decode(bytes, ctx);
    } catch (const ProtocolError& e) {
        if (e.offset() > bytes.size())
            die("ProtocolError offset beyond input");
        return;
    }
    std::string again = encode(msg, ctx);
    if (again != bytes)
        die("encode(decode(x)) != x");
    Message msg2 = decode(again, ctx);
    if (!(msg2 == msg))
        die("decode(encode(m)) != m");
    if (static_cast<uint8_t>(again[0]) != static_cast<uint8_t>(message_type(msg))) {
        die("message_type does not match the type byte");
    }
}

void check_frame(std::string_view bytes, const CodecContext& ctx) {
    copyboth::ServerFrame frame;
    try {
        frame = copyboth::parse_server_frame(bytes);
    } catch (const ProtocolError& e) {
        if (e.offset() > bytes.size())
            die("ProtocolError offset beyond frame");
        return;
    }
    if (const auto* x = std::get_if<copyboth::XLogData>(&frame)) {
        if (copyboth::encode_xlogdata(x->data_start, x->wal_end, x->send_time, x->payload) !=
            bytes) {
            die("XLogData round trip");
        }
        check_message(x->payload, ctx);
    } else {
        const auto& k = std::get<copyboth::Keepalive>(frame);
        if (copyboth::encode_keepalive(k.wal_end, k.send_time, k.reply_requested) != bytes) {
            die("Keepalive round trip");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0)
        return 0;
    CodecContext ctx = context_from(data[0]);
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    check_message(rest, ctx);
    check_frame(rest, ctx);
    return 0;
}
