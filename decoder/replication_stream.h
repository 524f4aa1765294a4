// The logical walsender connection: slot creation with an exported snapshot,
// START_REPLICATION, non-blocking receipt of CopyData frames and standby
// status updates.
//
// Protocol: docs "Streaming Replication Protocol" and "Logical Streaming
// Replication Parameters"; the same libpq calls as PostgreSQL's own
// libpqwalreceiver.c (PQgetCopyData async + poll on PQsocket, PQputCopyData +
// PQflush). A replication=database connection accepts only the simple query
// protocol, so every command here is sent with PQexec.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decoder/read_pacer.h"
#include "lsn.h"
#include "pg/connection.h"

namespace pgshift {

/// A socket's receive queue after a nap (FIONREAD) and its receive buffer
/// (SO_RCVBUF), both in bytes.
struct SocketFill {
    size_t queued = 0;
    size_t buffer = 0;
};

struct CreatedSlot {
    std::string name;
    Lsn consistent_point;       ///< streaming must start here; the snapshot sees all before it
    std::string snapshot_name;  ///< valid while this connection stays idle
};

class ReplicationStream {
  public:
    /// Opens a replication=database connection. application_name names the
    /// job so that DBAs (and `pgshift abort`) can find it in pg_stat_activity.
    ReplicationStream(const std::string& conninfo, const std::string& application_name);

    /// CREATE_REPLICATION_SLOT ... LOGICAL pgoutput with an exported snapshot
    /// (syntax chosen by ServerFeatures). Keep this connection idle until every
    /// copy worker has imported the snapshot: any further command on it ends
    /// the snapshot. Blocks until the slot is consistent (waits for running
    /// transactions). Throws pg::PgError.
    CreatedSlot create_slot(const std::string& slot_name);

    /// START_REPLICATION SLOT ... LOGICAL start (options...). start is where
    /// decoding resumes: the server skips transactions whose commit record
    /// starts before max(start, confirmed_flush_lsn). Throws pg::PgError.
    void start(const std::string& slot_name, Lsn start,
               const std::vector<std::pair<std::string, std::string>>& options);

    /// The next CopyData frame that needs no waiting: one libpq has
    /// buffered, else one from what the socket already holds (a
    /// non-blocking read; libpq reads about 16 kB per call, so a busy
    /// stream must be drained here rather than napped on). Its bytes are
    /// valid until the next call; nullopt when the socket is empty. Throws
    /// pg::PgError when the server ends the stream or reports an error.
    std::optional<std::string_view> buffered_frame();

    /// After buffered_frame() found nothing: waits up to `timeout` for one
    /// frame (same validity and errors).
    std::optional<std::string_view> wait_frame(std::chrono::milliseconds timeout);

    /// Sleeps `length` without polling, so that a busy stream fills the
    /// socket meanwhile and is read in one gulp (see ReadPacer for why), and
    /// returns what the socket then holds. Throws pg::PgError if the socket
    /// cannot be queried.
    SocketFill nap(std::chrono::microseconds length);

    /// Whether the connection runs over TCP or a Unix-domain socket.
    ReadPacer::Link link() const { return link_; }

    /// Sends a standby status update ('r'); only `flush` moves a logical
    /// slot's confirmed_flush_lsn. Throws pg::PgError if the send fails.
    void send_status(Lsn write, Lsn flush, Lsn apply, bool reply_requested);

    pg::Connection& connection() { return conn_; }

  private:
    void wait_readable(std::chrono::milliseconds timeout);
    void consume_input();
    std::optional<std::string_view> take_frame();

    pg::Connection conn_;
    ReadPacer::Link link_ = ReadPacer::Link::Tcp;
    std::unique_ptr<char, void (*)(void*)> frame_{nullptr, &PQfreemem};
};

}  // namespace pgshift
