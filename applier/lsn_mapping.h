// Which applied source transactions are durable on the target. Pure: fed the
// applier's commits and the target's WAL positions, it answers with the
// source LSN that may be confirmed to the slot.
//
// Why: the applier commits with synchronous_commit = off, as PostgreSQL's own
// apply worker does (the subscription option synchronous_commit defaults to
// off), so its commits do not wait for, or force, a WAL flush of their own on
// a server that is also the source. But an asynchronous commit may be lost in
// a crash of the target server, and the origin's progress with it, while a
// slot that was already told "flushed" has released those changes. So, as in
// worker.c (lsn_mapping, get_flush_position), commits are paired with a
// target WAL position at or after their commit record, and a source LSN is
// confirmed only once the target's WAL is flushed past its pair.
//
// The applier reads that position (pg_current_wal_insert_lsn) at most every
// few milliseconds rather than after each commit, so commits are first held
// "unmapped": one reading after them covers all of them.
#pragma once

#include <deque>

#include "lsn.h"

namespace pgshift {

class LsnMapping {
  public:
    /// Every source transaction up to `remote_end` (source end LSN) is
    /// committed on the target; its target WAL position is not yet known.
    void on_commit(Lsn remote_end);
    /// A source transaction ending at `remote_end` needed no target write:
    /// it is durable together with the commits before it.
    void on_skip(Lsn remote_end);
    /// Target WAL positions read after the last on_commit: `local_insert`
    /// (pg_current_wal_insert_lsn, at or past every commit record so far)
    /// and `local_flush` (pg_current_wal_flush_lsn). Returns durable_end().
    Lsn on_wal_positions(Lsn local_insert, Lsn local_flush);
    /// Some commit is not yet known to be flushed.
    bool pending() const { return unmapped_.valid() || !pairs_.empty(); }
    /// The highest source end LSN known durable (0/0 until one is).
    Lsn durable_end() const { return durable_; }

  private:
    struct Pair {
        Lsn remote_end;
        Lsn local_end;
    };
    Lsn unmapped_;  ///< highest committed source end LSN not yet paired
    std::deque<Pair> pairs_;
    Lsn durable_;
};

}  // namespace pgshift
