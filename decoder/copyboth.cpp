#include "decoder/copyboth.h"

#include <cstdio>

namespace pgshift::copyboth {

ServerFrame parse_server_frame(std::string_view bytes) {
    ByteReader r(bytes, "CopyBoth frame");
    uint8_t type = r.u8("frame type");
    switch (type) {
        case 'w': {
            r.set_context("CopyBoth XLogData");
            XLogData x;
            x.data_start = Lsn(r.u64("dataStart"));
            x.wal_end = Lsn(r.u64("walEnd"));
            x.send_time = r.i64("sendTime");
            x.payload = r.bytes(r.remaining());
            return x;
        }
        case 'k': {
            r.set_context("CopyBoth Keepalive");
            Keepalive k;
            k.wal_end = Lsn(r.u64("walEnd"));
            k.send_time = r.i64("sendTime");
            size_t at = r.offset();
            uint8_t reply = r.u8("replyRequested");
            if (reply > 1) {
                r.fail_at("replyRequested must be 0 or 1, got " + std::to_string(reply), at);
            }
            k.reply_requested = reply == 1;
            r.expect_end();
            return k;
        }
        default: {
            char shown[8];
            if (type >= 0x20 && type < 0x7f) {
                std::snprintf(shown, sizeof shown, "%c", type);
            } else {
                std::snprintf(shown, sizeof shown, "\\x%02x", type);
            }
            r.fail_at(
                std::string("unknown server frame type '") + shown + "' (expected 'w' or 'k')", 0);
        }
    }
}

std::string build_standby_status(Lsn write, Lsn flush, Lsn apply, int64_t client_time_pg_micros,
                                 bool reply_requested) {
    ByteWriter w(kStandbyStatusSize);
    w.put_u8('r');
    w.put_u64(write.value());
    w.put_u64(flush.value());
    w.put_u64(apply.value());
    w.put_i64(client_time_pg_micros);
    w.put_u8(reply_requested ? 1 : 0);
    return w.take();
}

std::string encode_xlogdata(Lsn data_start, Lsn wal_end, int64_t send_time,
                            std::string_view payload) {
    ByteWriter w(kXLogDataHeaderSize + payload.size());
    w.put_u8('w');
    w.put_u64(data_start.value());
    w.put_u64(wal_end.value());
    w.put_i64(send_time);
    w.put_bytes(payload);
    return w.take();
}

std::string encode_keepalive(Lsn wal_end, int64_t send_time, bool reply_requested) {
    ByteWriter w(kKeepaliveSize);
    w.put_u8('k');
    w.put_u64(wal_end.value());
    w.put_i64(send_time);
    w.put_u8(reply_requested ? 1 : 0);
    return w.take();
}

}  // namespace pgshift::copyboth
