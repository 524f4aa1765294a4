#include "replication_stream.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "decoder/copyboth.h"
#include "server_features.h"

namespace pgshift {

ReplicationStream::ReplicationStream(const std::string& conninfo,
                                     const std::string& application_name) {
    pg::ConnectOptions opts;
    opts.application_name = application_name;
    opts.replication = "database";
    conn_ = pg::Connection::open(conninfo, opts);
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (getsockname(PQsocket(conn_.raw()), reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
        local.ss_family == AF_UNIX) {
        link_ = ReadPacer::Link::Unix;
    }
}

CreatedSlot ReplicationStream::create_slot(const std::string& slot_name) {
    auto features = ServerFeatures::for_version(conn_.server_version());
    auto r = conn_.exec(features.create_slot_command(conn_.ident(slot_name)));
    CreatedSlot slot;
    slot.name = r.str(0, 0);
    auto lsn = Lsn::parse(r.view(0, 1));
    if (!lsn)
        throw pg::PgError("CREATE_REPLICATION_SLOT returned a malformed LSN", "");
    slot.consistent_point = *lsn;
    slot.snapshot_name = r.str(0, 2);
    return slot;
}

void ReplicationStream::start(const std::string& slot_name, Lsn start,
                              const std::vector<std::pair<std::string, std::string>>& options) {
    std::string cmd =
        "START_REPLICATION SLOT " + conn_.ident(slot_name) + " LOGICAL " + start.str() + " (";
    for (size_t i = 0; i < options.size(); ++i) {
        cmd += (i ? ", " : "") + options[i].first + " " + options[i].second;
    }
    conn_.start_copy(cmd + ")", PGRES_COPY_BOTH);
}

void ReplicationStream::wait_readable(std::chrono::milliseconds timeout) {
    pollfd pfd{PQsocket(conn_.raw()), POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    if (rc < 0 && errno != EINTR)
        conn_.throw_error("poll on the replication connection failed");
    if (rc > 0)
        consume_input();
}

std::optional<std::string_view> ReplicationStream::take_frame() {
    char* buf = nullptr;
    int n = PQgetCopyData(conn_.raw(), &buf, /*async=*/1);
    if (n > 0) {
        frame_.reset(buf);
        return std::string_view(buf, static_cast<size_t>(n));
    }
    if (n == -1) {
        conn_.finish_copy_out();
        // pgshift never asks the walsender to end: its session is over.
        throw pg::PgError("the server ended the replication stream", "08006");
    }
    if (n == -2)
        conn_.throw_error("replication stream failed", PQgetResult(conn_.raw()));
    return std::nullopt;
}

std::optional<std::string_view> ReplicationStream::buffered_frame() {
    frame_.reset();
    if (auto frame = take_frame())
        return frame;
    consume_input();
    return take_frame();
}

std::optional<std::string_view> ReplicationStream::wait_frame(std::chrono::milliseconds timeout) {
    frame_.reset();
    wait_readable(timeout);
    return take_frame();
}

SocketFill ReplicationStream::nap(std::chrono::microseconds length) {
    std::this_thread::sleep_for(length);
    int fd = PQsocket(conn_.raw());
    int queued = 0;
    int buffer = 0;
    socklen_t len = sizeof buffer;
    if (ioctl(fd, FIONREAD, &queued) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, &len) != 0) {
        throw pg::PgError(std::string("cannot query the replication connection's socket "
                                      "(FIONREAD / SO_RCVBUF): ") +
                              std::strerror(errno) +
                              "; the stream stops here and resumes from the job's replication "
                              "origin on a new connection",
                          "08006");  // the socket is unusable: a lost connection
    }
    return {static_cast<size_t>(queued), static_cast<size_t>(buffer)};
}

void ReplicationStream::consume_input() {
    if (PQconsumeInput(conn_.raw()) == 0)
        conn_.throw_error("replication connection lost");
}

void ReplicationStream::send_status(Lsn write, Lsn flush, Lsn apply, bool reply_requested) {
    auto now = to_pg_timestamp(std::chrono::system_clock::now());
    std::string msg = copyboth::build_standby_status(write, flush, apply, now, reply_requested);
    if (PQputCopyData(conn_.raw(), msg.data(), static_cast<int>(msg.size())) != 1 ||
        PQflush(conn_.raw()) != 0) {
        conn_.throw_error("could not send a standby status update");
    }
}

}  // namespace pgshift
