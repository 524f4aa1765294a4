// pgshift::ReadPacer: the decoder's nap between reads of a busy replication
// socket (long only while catching up over TCP, bounded by the receive buffer).
#include <gtest/gtest.h>

#include <chrono>

#include "decoder/read_pacer.h"

using pgshift::ReadPacer;
using std::chrono::microseconds;

namespace {

constexpr int64_t kCommit = 800'000'000'000;  // microseconds since 2000-01-01
constexpr size_t kBuffer = 2 << 20;

/// A pacer whose last transaction was sent `behind` after its commit.
ReadPacer pacer_behind(ReadPacer::Link link, microseconds behind) {
    ReadPacer p(link);
    p.on_transaction(kCommit, kCommit + behind.count());
    return p;
}

/// Takes naps that leave `queued` bytes in a kBuffer socket, `rounds` times.
void take_naps(ReadPacer& p, size_t queued, int rounds) {
    for (int i = 0; i < rounds; ++i)
        p.after_nap(p.nap(), queued, kBuffer);
}

}  // namespace

TEST(ReadPacerTest, CaughtUpStreamNapsTheBaseLength) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Tcp, microseconds(2000));
    take_naps(p, 0, 20);
    EXPECT_EQ(p.nap(), ReadPacer::kBaseNap);
}

TEST(ReadPacerTest, CatchingUpOverTcpGrowsTheNapToTheMaximum) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Tcp, ReadPacer::kCatchUpLag);
    EXPECT_EQ(p.nap(), ReadPacer::kBaseNap);
    p.after_nap(p.nap(), kBuffer / 16, kBuffer);
    EXPECT_EQ(p.nap(), 2 * ReadPacer::kBaseNap);
    take_naps(p, kBuffer / 16, 20);
    EXPECT_EQ(p.nap(), ReadPacer::kMaxNap);
}

TEST(ReadPacerTest, AFillingBufferHalvesTheNapDownToTheBase) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Tcp, std::chrono::seconds(30));
    take_naps(p, 0, 20);
    p.after_nap(p.nap(), kBuffer / 4 + 1, kBuffer);
    EXPECT_EQ(p.nap(), ReadPacer::kMaxNap / 2);
    take_naps(p, kBuffer, 20);
    EXPECT_EQ(p.nap(), ReadPacer::kBaseNap);
}

TEST(ReadPacerTest, AModerateFillKeepsTheNap) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Tcp, std::chrono::seconds(1));
    take_naps(p, 0, 3);
    microseconds nap = p.nap();
    take_naps(p, kBuffer / 5, 10);
    EXPECT_EQ(p.nap(), nap);
}

TEST(ReadPacerTest, CaughtUpAgainTheNapIsTheBaseAndTheLongOneIsKept) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Tcp, std::chrono::seconds(5));
    take_naps(p, 0, 20);
    p.on_transaction(kCommit, kCommit + 500);
    EXPECT_EQ(p.nap(), ReadPacer::kBaseNap);
    take_naps(p, kBuffer, 5);  // a base-length nap tells nothing of the long one
    p.on_transaction(kCommit, kCommit + ReadPacer::kCatchUpLag.count() * 10);
    EXPECT_EQ(p.nap(), ReadPacer::kMaxNap);
}

TEST(ReadPacerTest, UnixSocketAlwaysNapsTheBaseLength) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Unix, std::chrono::seconds(30));
    take_naps(p, 0, 20);
    EXPECT_EQ(p.nap(), ReadPacer::kBaseNap);
}

TEST(ReadPacerTest, AnUnknownBufferSizeChangesNothing) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Tcp, std::chrono::seconds(30));
    for (int i = 0; i < 5; ++i)
        p.after_nap(p.nap(), 0, 0);
    EXPECT_EQ(p.nap(), ReadPacer::kBaseNap);
}

TEST(ReadPacerTest, ASendTimeBeforeTheCommitIsNotCatchingUp) {
    ReadPacer p = pacer_behind(ReadPacer::Link::Tcp, microseconds(-5'000'000));
    take_naps(p, 0, 20);
    EXPECT_EQ(p.nap(), ReadPacer::kBaseNap);
}
