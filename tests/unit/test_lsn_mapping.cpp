// pgshift::LsnMapping: a source LSN is confirmed to the slot only once the
// target's WAL holding its asynchronous commit is flushed.
#include <gtest/gtest.h>

#include "applier/lsn_mapping.h"

using pgshift::Lsn;
using pgshift::LsnMapping;

namespace {

/// A commit of source transactions up to `remote`, then a reading that puts
/// it at target position `local` with the WAL flushed nowhere near it.
void commit_unflushed(LsnMapping& m, uint64_t remote, uint64_t local) {
    m.on_commit(Lsn(remote));
    m.on_wal_positions(Lsn(local), Lsn(10));
}

}  // namespace

TEST(LsnMapping, NothingIsDurableBeforeTheFlushPassesTheCommit) {
    LsnMapping m;
    m.on_commit(Lsn(1000));
    EXPECT_TRUE(m.pending());
    EXPECT_EQ(m.on_wal_positions(Lsn(50'000), Lsn(49'999)), Lsn());
    EXPECT_TRUE(m.pending());
    EXPECT_EQ(m.on_wal_positions(Lsn(50'100), Lsn(50'000)), Lsn(1000));
    EXPECT_FALSE(m.pending());
    EXPECT_EQ(m.durable_end(), Lsn(1000));
}

TEST(LsnMapping, ACommitIsNeverDurableBeforeAPositionIsReadAfterIt) {
    LsnMapping m;
    m.on_commit(Lsn(1000));
    EXPECT_EQ(m.on_wal_positions(Lsn(50'000), Lsn(50'000)), Lsn(1000));
    m.on_commit(Lsn(2000));
    EXPECT_TRUE(m.pending());
    EXPECT_EQ(m.durable_end(), Lsn(1000));
}

TEST(LsnMapping, OneReadingCoversEveryCommitBeforeIt) {
    LsnMapping m;
    m.on_commit(Lsn(1000));
    m.on_commit(Lsn(2000));
    m.on_commit(Lsn(3000));
    EXPECT_EQ(m.on_wal_positions(Lsn(70'000), Lsn(60'000)), Lsn());
    EXPECT_EQ(m.on_wal_positions(Lsn(80'000), Lsn(70'000)), Lsn(3000));
    EXPECT_FALSE(m.pending());
}

TEST(LsnMapping, AFlushReleasesThePairsAtOrBelowIt) {
    LsnMapping m;
    commit_unflushed(m, 1000, 50'000);
    commit_unflushed(m, 2000, 60'000);
    commit_unflushed(m, 3000, 70'000);
    EXPECT_EQ(m.on_wal_positions(Lsn(70'000), Lsn(65'000)), Lsn(2000));
    EXPECT_TRUE(m.pending());
    EXPECT_EQ(m.on_wal_positions(Lsn(70'000), Lsn(80'000)), Lsn(3000));
    EXPECT_FALSE(m.pending());
}

TEST(LsnMapping, AnOlderFlushPositionNeverMovesDurableBack) {
    LsnMapping m;
    m.on_commit(Lsn(1000));
    EXPECT_EQ(m.on_wal_positions(Lsn(50'000), Lsn(50'000)), Lsn(1000));
    m.on_commit(Lsn(2000));
    EXPECT_EQ(m.on_wal_positions(Lsn(60'000), Lsn(10)), Lsn(1000));
}

TEST(LsnMapping, ASkippedTransactionWaitsForTheCommitsBeforeIt) {
    LsnMapping m;
    m.on_commit(Lsn(1000));
    m.on_skip(Lsn(1500));
    EXPECT_EQ(m.on_wal_positions(Lsn(50'000), Lsn(40'000)), Lsn());
    m.on_skip(Lsn(1700));
    EXPECT_EQ(m.on_wal_positions(Lsn(50'000), Lsn(50'000)), Lsn(1700));
}

TEST(LsnMapping, ASkippedTransactionWithNothingPendingIsDurableAtOnce) {
    LsnMapping m;
    m.on_skip(Lsn(1500));
    EXPECT_FALSE(m.pending());
    EXPECT_EQ(m.durable_end(), Lsn(1500));
}

TEST(LsnMapping, ReadingsAtTheSamePositionShareOnePair) {
    LsnMapping m;
    commit_unflushed(m, 1000, 50'000);
    commit_unflushed(m, 2000, 50'000);
    EXPECT_EQ(m.on_wal_positions(Lsn(50'000), Lsn(50'000)), Lsn(2000));
    EXPECT_FALSE(m.pending());
}
