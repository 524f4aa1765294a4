// How long the decoder lets an empty replication socket fill before reading
// it again while the stream is busy. Pure: fed what the decoder observes,
// it answers with the next nap, so the policy is unit-tested without a server.
//
// Why naps at all: each pgoutput message is one send() in the walsender
// (walsender.c WalSndWriteData flushes per message). A reader that wakes per
// message, or drains a TCP socket every millisecond, makes each ~300-byte
// message cross the loopback TCP stack on its own inside the walsender's
// send(); measured on PostgreSQL 15 (docs/benchmarks.md, "Applier"), the
// walsender then spends 26-31 us per change instead of 16-18 us, and on two
// cores it becomes the limit of the whole catch-up. Reading in large gulps
// (tens of milliseconds apart) lets the messages queue in the receive buffer
// and be read at once: the walsender's cost fell to 16-18 us per change and
// pgshift's own to about half.
//
// Why the nap adapts, and to three things:
//  - Latency: a long nap delays every change by up to its length, and the
//    cutover's barrier is waited for under the ACCESS EXCLUSIVE lock. So the
//    long nap is used only while the walsender is behind by at least
//    kCatchUpLag, measured on the server's own clock as the send time of a
//    transaction's last frame minus its commit time (no clock skew between
//    hosts enters). Caught up, the nap is kBaseNap.
//  - The receive buffer: while the reader naps the walsender must not block
//    on a full socket, or the nap caps the throughput at buffer/nap. After
//    each nap the bytes queued are compared with the socket's receive buffer
//    (SO_RCVBUF, which TCP autotuning grows up to net.ipv4.tcp_rmem's max):
//    more than a quarter (about half the advertised window, tcp_adv_win_scale)
//    halves the nap, less than an eighth doubles it, up to kMaxNap.
//  - The link: a Unix-domain socket queues each message as its own skb,
//    charged to the walsender's send buffer (net.core.wmem_default, about
//    208 kB including per-skb overhead), so it holds only a few hundred
//    messages: the walsender blocks within a couple of milliseconds. Measured:
//    a 4 ms nap there cut the catch-up rate to a third. On a Unix socket the
//    nap stays kBaseNap.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace pgshift {

class ReadPacer {
  public:
    enum class Link { Tcp, Unix };

    static constexpr std::chrono::microseconds kBaseNap{1000};
    static constexpr std::chrono::microseconds kMaxNap{64000};
    /// Behind by this much or more (server clock), the stream is catching up.
    static constexpr std::chrono::microseconds kCatchUpLag{100000};

    explicit ReadPacer(Link link) : link_(link) {}

    /// The nap before the next read of an empty socket while frames keep
    /// coming: kBaseNap unless catching up over TCP, then the adapted nap.
    std::chrono::microseconds nap() const;

    /// A whole transaction was received: its commit time and the send time
    /// of its last frame, both microseconds since 2000-01-01 on the server.
    void on_transaction(int64_t commit_time, int64_t send_time);

    /// After a nap of `taken`: bytes the socket held (FIONREAD) and its
    /// receive buffer size in bytes (SO_RCVBUF). Adapts the catch-up nap.
    void after_nap(std::chrono::microseconds taken, size_t queued, size_t buffer);

  private:
    Link link_;
    bool catching_up_ = false;
    std::chrono::microseconds catch_up_nap_{kBaseNap};
};

}  // namespace pgshift
