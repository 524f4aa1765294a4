// TxnAssembler: the pgoutput protocol state machine (protocol.md A3, A5.4, A7).
#include "decoder/txn_assembler.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "decoder/byte_reader.h"

namespace pgshift {
namespace {

using namespace pgoutput;

constexpr uint32_t kRel = 16384;

BeginMsg begin(uint32_t xid, uint64_t final_lsn, int64_t ts = 1000) {
    return BeginMsg{Lsn(final_lsn), ts, xid};
}
CommitMsg commit(uint64_t commit_lsn, uint64_t end_lsn, int64_t ts = 1000) {
    return CommitMsg{0, Lsn(commit_lsn), Lsn(end_lsn), ts};
}
InsertMsg ins(const std::string& id, std::optional<uint32_t> xid = std::nullopt) {
    InsertMsg m;
    m.xid = xid;
    m.relid = kRel;
    m.new_tuple = {ColumnValue{ColumnKind::Text, id}};
    return m;
}
RelationMsg rel(std::optional<uint32_t> xid = std::nullopt) {
    RelationMsg r;
    r.xid = xid;
    r.relid = kRel;
    r.nspname = "public";
    r.relname = "t";
    r.columns = {RelationColumn{1, "id", 23, -1}};
    return r;
}
LogicalMsg lmsg(bool transactional, const std::string& prefix, const std::string& content,
                std::optional<uint32_t> xid = std::nullopt) {
    LogicalMsg m;
    m.xid = xid;
    m.flags = transactional ? 1 : 0;
    m.lsn = Lsn(0x500);
    m.prefix = prefix;
    m.content = content;
    return m;
}
StreamStartMsg sstart(uint32_t xid, bool first) {
    return StreamStartMsg{xid, uint8_t(first)};
}
StreamCommitMsg scommit(uint32_t xid, uint64_t commit_lsn, uint64_t end_lsn) {
    return StreamCommitMsg{xid, 0, Lsn(commit_lsn), Lsn(end_lsn), 2000};
}
StreamAbortMsg sabort(uint32_t xid, uint32_t subxid) {
    return StreamAbortMsg{xid, subxid, std::nullopt, std::nullopt};
}

/// Inserted ids of a batch, in order (other changes as their kind letter).
std::vector<std::string> ids(const TxnBatch& b) {
    std::vector<std::string> out;
    for (const Message& m : b.changes) {
        if (auto* i = std::get_if<InsertMsg>(&m)) {
            out.push_back(i->new_tuple.at(0).data);
        } else if (std::holds_alternative<RelationMsg>(m)) {
            out.push_back("R");
        } else if (std::holds_alternative<TypeMsg>(m)) {
            out.push_back("Y");
        } else if (std::holds_alternative<UpdateMsg>(m)) {
            out.push_back("U");
        } else if (std::holds_alternative<DeleteMsg>(m)) {
            out.push_back("D");
        } else if (std::holds_alternative<TruncateMsg>(m)) {
            out.push_back("T");
        } else {
            out.push_back("?");
        }
    }
    return out;
}

using Ids = std::vector<std::string>;

/// Feeds every message; expects nullptr for all but the last, returns the last result.
std::unique_ptr<TxnBatch> feed_all(TxnAssembler& a, std::vector<Message> msgs) {
    std::unique_ptr<TxnBatch> last;
    for (size_t i = 0; i < msgs.size(); ++i) {
        last = a.feed(std::move(msgs[i]));
        if (i + 1 < msgs.size()) {
            EXPECT_EQ(last, nullptr) << "message " << i << " completed a transaction early";
        }
    }
    return last;
}

/// Expects feed(msg) to throw ProtocolError whose what() contains `needle`.
void expect_violation(TxnAssembler& a, Message msg, const std::string& needle) {
    try {
        a.feed(std::move(msg));
        ADD_FAILURE() << "expected ProtocolError containing \"" << needle << "\"";
    } catch (const ProtocolError& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

// --- B..C -----------------------------------------------------------------------

TEST(TxnAssembler, PlainTransactionKeepsChangesInOrder) {
    TxnAssembler a;
    EXPECT_FALSE(a.in_transaction());
    EXPECT_EQ(a.feed(begin(700, 0x100, 42)), nullptr);
    EXPECT_TRUE(a.in_transaction());
    EXPECT_FALSE(a.in_stream_block());
    UpdateMsg u;
    u.relid = kRel;
    u.new_tuple = {ColumnValue{ColumnKind::Text, "1"}};
    DeleteMsg d;
    d.relid = kRel;
    d.old_tuple = {ColumnValue{ColumnKind::Text, "1"}};
    TruncateMsg t;
    t.flags = TruncateMsg::kCascade;
    t.relids = {kRel};
    TypeMsg y;
    y.type_oid = 16500;
    y.typname = "mood";
    auto b = feed_all(a, {TypeMsg(y), rel(), ins("1"), u, d, t, commit(0x100, 0x180, 43)});
    ASSERT_NE(b, nullptr);
    EXPECT_FALSE(a.in_transaction());
    EXPECT_EQ(b->xid, 700u);
    EXPECT_EQ(b->commit_lsn, Lsn(0x100));
    EXPECT_EQ(b->end_lsn, Lsn(0x180));
    EXPECT_EQ(b->commit_time, 43);
    EXPECT_EQ(ids(*b), (Ids{"Y", "R", "1", "U", "D", "T"}));
    EXPECT_EQ(std::get<TruncateMsg>(b->changes[5]), t);
    EXPECT_FALSE(b->barrier_nonce);
    EXPECT_FALSE(b->origin);
    EXPECT_GT(b->bytes, 6 * sizeof(Message) - 1);
}

TEST(TxnAssembler, EmptyTransactionsAreReturnedForTheirEndLsn) {
    // PG14 sends B/C for every transaction in the database.
    TxnAssembler a;
    for (uint64_t i = 1; i <= 3; ++i) {
        EXPECT_EQ(a.feed(begin(700 + i, i * 0x100)), nullptr);
        auto b = a.feed(commit(i * 0x100, i * 0x100 + 0x28));
        ASSERT_NE(b, nullptr);
        EXPECT_TRUE(b->changes.empty());
        EXPECT_EQ(b->bytes, 0u);
        EXPECT_EQ(b->xid, 700 + i);
        EXPECT_EQ(b->end_lsn, Lsn(i * 0x100 + 0x28));
    }
    EXPECT_FALSE(a.in_transaction());
}

TEST(TxnAssembler, BytesGrowWithTupleSize) {
    TxnAssembler a;
    a.feed(begin(1, 0x10));
    a.feed(ins("1"));
    auto small = a.feed(commit(0x10, 0x20));
    a.feed(begin(2, 0x30));
    a.feed(ins(std::string(10000, 'x')));
    auto big = a.feed(commit(0x30, 0x40));
    EXPECT_GE(big->bytes, small->bytes + 10000);
}

TEST(TxnAssembler, CommitWithoutBegin) {
    TxnAssembler a;
    expect_violation(a, commit(0x100, 0x180), "COMMIT without BEGIN");
}

TEST(TxnAssembler, CommitLsnMustMatchBegin) {
    TxnAssembler a;
    a.feed(begin(700, 0x16B3748));
    expect_violation(a, commit(0x16B3750, 0x16B3780),
                     "incorrect commit LSN 0/16B3750 in commit message (BEGIN said 0/16B3748)");
}

TEST(TxnAssembler, CommitFlagsMustBeZero) {
    TxnAssembler a;
    a.feed(begin(700, 0x100));
    CommitMsg c = commit(0x100, 0x180);
    c.flags = 1;
    expect_violation(a, c, "unrecognized flags 1 in commit message");
}

TEST(TxnAssembler, BeginInsideTransaction) {
    TxnAssembler a;
    a.feed(begin(700, 0x100));
    expect_violation(a, begin(701, 0x200), "BEGIN message while transaction 700 is still open");
}

TEST(TxnAssembler, ChangeOutsideTransaction) {
    TxnAssembler a;
    expect_violation(a, ins("1"), "INSERT message outside a transaction");
    TxnAssembler b;
    expect_violation(b, rel(), "RELATION message outside a transaction");
}

TEST(TxnAssembler, StreamingXidOutsideStreamBlockIsMisframing) {
    TxnAssembler a;
    a.feed(begin(700, 0x100));
    expect_violation(a, ins("1", 700), "INSERT message carries a streaming xid (700)");
}

// --- Origin ----------------------------------------------------------------------

TEST(TxnAssembler, OriginAfterBeginNamesTheBatch) {
    TxnAssembler a;
    auto b = feed_all(a, {begin(700, 0x100), OriginMsg{Lsn(0x1234ABCD), "mig_fwd_1"}, rel(),
                          ins("1"), commit(0x100, 0x180)});
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->origin, std::optional<std::string>("mig_fwd_1"));
    EXPECT_EQ(ids(*b), (Ids{"R", "1"}));
}

TEST(TxnAssembler, OriginAfterAChangeIsOutOfOrder) {
    TxnAssembler a;
    a.feed(begin(700, 0x100));
    a.feed(ins("1"));
    expect_violation(a, OriginMsg{Lsn(1), "x"}, "ORIGIN message sent out of order");
}

TEST(TxnAssembler, OriginOutsideTransactionIsOutOfOrder) {
    TxnAssembler a;
    expect_violation(a, OriginMsg{Lsn(1), "x"}, "ORIGIN message sent out of order");
}

TEST(TxnAssembler, OriginInFirstStreamBlock) {
    TxnAssembler a;
    auto b = feed_all(a, {sstart(800, true), OriginMsg{Lsn(7), "mig_rev_1"}, ins("1", 800),
                          StreamStopMsg{}, scommit(800, 0x300, 0x380)});
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->origin, std::optional<std::string>("mig_rev_1"));
    TxnAssembler c;
    c.feed(sstart(800, true));
    c.feed(ins("1", 800));
    expect_violation(c, OriginMsg{Lsn(7), "x"}, "ORIGIN message sent out of order");
}

// --- Logical messages and the barrier ---------------------------------------------

TEST(TxnAssembler, BarrierMessageSetsNonceAndIsNotAChange) {
    TxnAssembler a;
    auto b = feed_all(a, {begin(700, 0x100), ins("1"), lmsg(true, "other", "ignored"),
                          lmsg(true, "pgshift", "mig1:nonce-42"), commit(0x100, 0x180)});
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->barrier_nonce, std::optional<std::string>("mig1:nonce-42"));
    EXPECT_EQ(ids(*b), (Ids{"1"}));
}

TEST(TxnAssembler, BarrierOnlyTransaction) {
    TxnAssembler a;
    auto b = feed_all(a, {begin(701, 0x200), lmsg(true, "pgshift", "n-43"), commit(0x200, 0x280)});
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(b->changes.empty());
    EXPECT_EQ(b->barrier_nonce, std::optional<std::string>("n-43"));
}

TEST(TxnAssembler, BarrierPrefixIsConfigurable) {
    TxnAssembler a(TxnAssembler::Options{"custom"});
    auto b = feed_all(a, {begin(700, 0x100), lmsg(true, "pgshift", "not ours"),
                          lmsg(true, "custom", "ours"), commit(0x100, 0x180)});
    EXPECT_EQ(b->barrier_nonce, std::optional<std::string>("ours"));
}

TEST(TxnAssembler, NonTransactionalMessageOutsideTransactionIsIgnored) {
    TxnAssembler a;
    EXPECT_EQ(a.feed(lmsg(false, "pgshift", "too early")), nullptr);
    EXPECT_FALSE(a.in_transaction());
    auto b = feed_all(a, {begin(700, 0x100), commit(0x100, 0x180)});
    EXPECT_FALSE(b->barrier_nonce);
}

TEST(TxnAssembler, NonTransactionalMessageInsideTransactionIsAViolation) {
    TxnAssembler a;
    a.feed(begin(700, 0x100));
    expect_violation(a, lmsg(false, "x", "y"), "non-transactional MESSAGE");
}

TEST(TxnAssembler, TransactionalMessageOutsideTransactionIsAViolation) {
    TxnAssembler a;
    expect_violation(a, lmsg(true, "x", "y"), "transactional MESSAGE (prefix \"x\") outside");
    TxnAssembler b;
    expect_violation(b, lmsg(true, "pgshift", "y"),
                     "transactional MESSAGE (prefix \"pgshift\") outside a transaction");
}

// --- Streaming ----------------------------------------------------------------------

TEST(TxnAssembler, StreamedTransactionIsReturnedAtStreamCommit) {
    TxnAssembler a;
    EXPECT_EQ(a.feed(sstart(800, true)), nullptr);
    EXPECT_TRUE(a.in_stream_block());
    EXPECT_TRUE(a.in_transaction());
    feed_all(a, {rel(800), ins("1", 800), ins("2", 800), StreamStopMsg{}});
    EXPECT_FALSE(a.in_stream_block());
    EXPECT_TRUE(a.in_transaction());  // still buffered
    EXPECT_EQ(a.pending_streams(), 1u);
    EXPECT_GT(a.buffered_bytes(), 0u);
    feed_all(a, {sstart(800, false), ins("3", 800), StreamStopMsg{}});
    auto b = a.feed(scommit(800, 0x300, 0x380));
    ASSERT_NE(b, nullptr);
    EXPECT_FALSE(a.in_transaction());
    EXPECT_EQ(a.pending_streams(), 0u);
    EXPECT_EQ(b->xid, 800u);
    EXPECT_EQ(b->commit_lsn, Lsn(0x300));
    EXPECT_EQ(b->end_lsn, Lsn(0x380));
    EXPECT_EQ(b->commit_time, 2000);
    EXPECT_EQ(ids(*b), (Ids{"R", "1", "2", "3"}));
    EXPECT_GT(b->bytes, 0u);
}

TEST(TxnAssembler, InterleavedStreamsAndOrdinaryTransactions) {
    TxnAssembler a;
    feed_all(a, {sstart(801, true), ins("a1", 801), StreamStopMsg{}});
    feed_all(a, {sstart(802, true), ins("b1", 802), ins("b2", 802), StreamStopMsg{}});
    // An ordinary transaction between stream blocks completes on its own.
    auto plain = feed_all(a, {begin(803, 0x200), ins("c1"), commit(0x200, 0x280)});
    ASSERT_NE(plain, nullptr);
    EXPECT_EQ(ids(*plain), (Ids{"c1"}));
    EXPECT_TRUE(a.in_transaction());
    feed_all(a, {sstart(801, false), ins("a2", 801), StreamStopMsg{}});
    feed_all(a, {sstart(802, false), ins("b3", 802), StreamStopMsg{}});
    auto b = a.feed(scommit(802, 0x300, 0x380));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"b1", "b2", "b3"}));
    EXPECT_TRUE(a.in_transaction());
    auto c = a.feed(scommit(801, 0x400, 0x480));
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(ids(*c), (Ids{"a1", "a2"}));
    EXPECT_FALSE(a.in_transaction());
}

TEST(TxnAssembler, StreamAbortOfTopLevelDropsTheTransaction) {
    TxnAssembler a;
    feed_all(a, {sstart(800, true), ins("1", 800), ins("2", 801), StreamStopMsg{}});
    EXPECT_EQ(a.feed(sabort(800, 800)), nullptr);
    EXPECT_FALSE(a.in_transaction());
    expect_violation(a, scommit(800, 1, 2), "never streamed");
}

TEST(TxnAssembler, SubxactAbortTruncatesAtItsFirstChange) {
    // BEGIN; INSERT 1; SAVEPOINT s1 (xid 811); INSERT 2; SAVEPOINT s2 (812);
    // INSERT 3; RELEASE s2; INSERT 4 (in s1); ROLLBACK TO s1; INSERT 5; COMMIT
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), ins("2", 811), StreamStopMsg{}});
    feed_all(a, {sstart(810, false), ins("3", 812), ins("4", 811), StreamStopMsg{}});
    EXPECT_EQ(a.feed(sabort(810, 811)), nullptr);
    EXPECT_TRUE(a.in_transaction());
    feed_all(a, {sstart(810, false), ins("5", 810), StreamStopMsg{}});
    auto b = a.feed(scommit(810, 0x500, 0x580));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"1", "5"}));
}

TEST(TxnAssembler, InnerSubxactAbortKeepsOuterChangesBeforeIt) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), ins("2", 811), ins("3", 812), ins("4", 812),
                 StreamStopMsg{}});
    a.feed(sabort(810, 812));  // ROLLBACK TO s2
    // s1 is still alive and makes more changes; a later abort of s1 must still
    // cut at s1's first change.
    feed_all(a, {sstart(810, false), ins("5", 811), StreamStopMsg{}});
    feed_all(a, {sstart(810, false), ins("6", 813), StreamStopMsg{}});
    a.feed(sabort(810, 813));
    auto b = a.feed(scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"1", "2", "5"}));
}

TEST(TxnAssembler, SubxactAbortForgetsLaterSubxacts) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 811), ins("2", 812), StreamStopMsg{}});
    a.feed(sabort(810, 811));  // drops 811 and 812 (started later)
    // 812 is forgotten: aborting it again is a no-op, not a second truncation.
    feed_all(a, {sstart(810, false), ins("3", 810), StreamStopMsg{}});
    a.feed(sabort(810, 812));
    auto b = a.feed(scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"3"}));
}

TEST(TxnAssembler, UnknownSubxidAbortIsANoop) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), ins("2", 811), StreamStopMsg{}});
    EXPECT_EQ(a.feed(sabort(810, 999)), nullptr);
    auto b = a.feed(scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"1", "2"}));
}

TEST(TxnAssembler, SubxactAbortKeepsRelationMessages) {
    // pgoutput sends a relation's schema once per streamed top-level xid, even
    // if the subxact that triggered it aborts; the Relation must survive.
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 811), rel(811), ins("2", 811), StreamStopMsg{}});
    a.feed(sabort(810, 811));
    feed_all(a, {sstart(810, false), ins("3", 810), StreamStopMsg{}});
    auto b = a.feed(scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"R", "3"}));
}

TEST(TxnAssembler, BarrierInAbortedSubxactIsDropped) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), lmsg(true, "pgshift", "dropped", 811),
                 StreamStopMsg{}});
    a.feed(sabort(810, 811));
    auto b = a.feed(scommit(810, 0x500, 0x580));
    EXPECT_FALSE(b->barrier_nonce);
    TxnAssembler c;
    feed_all(c, {sstart(810, true), lmsg(true, "pgshift", "kept", 810),
                 lmsg(true, "other", "x", 810), StreamStopMsg{}});
    auto d = c.feed(scommit(810, 0x500, 0x580));
    EXPECT_EQ(d->barrier_nonce, std::optional<std::string>("kept"));
    EXPECT_TRUE(d->changes.empty());
}

TEST(TxnAssembler, StreamOrderViolations) {
    {
        TxnAssembler a;
        a.feed(sstart(800, true));
        expect_violation(a, sstart(801, true), "duplicate STREAM START");
    }
    {
        TxnAssembler a;
        expect_violation(a, StreamStopMsg{}, "STREAM STOP message without STREAM START");
    }
    {
        TxnAssembler a;
        a.feed(sstart(800, true));
        expect_violation(a, scommit(800, 1, 2), "STREAM COMMIT message without STREAM STOP");
    }
    {
        TxnAssembler a;
        a.feed(sstart(800, true));
        expect_violation(a, sabort(800, 800), "STREAM ABORT message without STREAM STOP");
    }
    {
        TxnAssembler a;
        expect_violation(a, sstart(800, false), "without its first segment");
    }
    {
        TxnAssembler a;
        feed_all(a, {sstart(800, true), StreamStopMsg{}});
        expect_violation(a, sstart(800, true), "already being streamed");
    }
    {
        TxnAssembler a;
        a.feed(sstart(800, true));
        expect_violation(a, begin(1, 2),
                         "BEGIN message inside the stream block of transaction 800");
    }
    {
        TxnAssembler a;
        a.feed(sstart(800, true));
        expect_violation(a, commit(1, 2), "COMMIT message inside the stream block");
    }
    {
        TxnAssembler a;
        a.feed(begin(700, 0x100));
        expect_violation(a, sstart(800, true), "STREAM START message inside transaction 700");
    }
    {
        TxnAssembler a;
        a.feed(sstart(800, true));
        expect_violation(a, ins("1"), "INSERT message without xid inside the stream block");
    }
    {
        TxnAssembler a;
        expect_violation(a, scommit(800, 1, 2), "STREAM COMMIT for transaction 800");
    }
    {
        TxnAssembler a;
        expect_violation(a, sabort(800, 801), "STREAM ABORT for transaction 800");
    }
    {
        TxnAssembler a;
        feed_all(a, {sstart(800, true), StreamStopMsg{}});
        StreamCommitMsg c = scommit(800, 1, 2);
        c.flags = 2;
        expect_violation(a, c, "unrecognized flags 2 in stream commit message");
    }
}

// --- Two-phase ------------------------------------------------------------------------

BeginPrepareMsg bprep(uint32_t xid, const std::string& gid, uint64_t prepare_lsn) {
    return BeginPrepareMsg{Lsn(prepare_lsn), Lsn(prepare_lsn + 0x20), 3000, xid, gid};
}
PrepareMsg prep(uint32_t xid, const std::string& gid, uint64_t prepare_lsn) {
    return PrepareMsg{0, Lsn(prepare_lsn), Lsn(prepare_lsn + 0x20), 3000, xid, gid};
}
CommitPreparedMsg cprep(uint32_t xid, const std::string& gid, uint64_t commit_lsn) {
    return CommitPreparedMsg{0, Lsn(commit_lsn), Lsn(commit_lsn + 0x30), 4000, xid, gid};
}
RollbackPreparedMsg rprep(uint32_t xid, const std::string& gid) {
    return RollbackPreparedMsg{0, Lsn(0x120), Lsn(0x900), 3000, 5000, xid, gid};
}

TEST(TxnAssembler, PreparedTransactionIsHeldUntilCommitPrepared) {
    TxnAssembler a;
    EXPECT_EQ(feed_all(a, {bprep(900, "g1", 0x100), OriginMsg{Lsn(5), "o"}, rel(), ins("1"),
                           prep(900, "g1", 0x100)}),
              nullptr);
    EXPECT_EQ(a.pending_prepared(), 1u);
    EXPECT_TRUE(a.in_transaction());  // a held PREPARE pins the flush position
    // Other transactions go by in the meantime.
    auto plain = feed_all(a, {begin(901, 0x200), ins("2"), commit(0x200, 0x280)});
    EXPECT_EQ(ids(*plain), (Ids{"2"}));
    auto b = a.feed(cprep(900, "g1", 0x300));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->xid, 900u);
    EXPECT_EQ(b->commit_lsn, Lsn(0x300));
    EXPECT_EQ(b->end_lsn, Lsn(0x330));
    EXPECT_EQ(b->commit_time, 4000);
    EXPECT_EQ(b->origin, std::optional<std::string>("o"));
    EXPECT_EQ(ids(*b), (Ids{"R", "1"}));
    EXPECT_FALSE(a.in_transaction());
}

TEST(TxnAssembler, RollbackPreparedDropsIt) {
    TxnAssembler a;
    feed_all(a, {bprep(900, "g1", 0x100), ins("1"), prep(900, "g1", 0x100)});
    EXPECT_EQ(a.feed(rprep(900, "g1")), nullptr);
    EXPECT_EQ(a.pending_prepared(), 0u);
    EXPECT_FALSE(a.in_transaction());
    expect_violation(a, cprep(900, "g1", 0x300), "COMMIT PREPARED for transaction \"g1\"");
    // Unknown gid on rollback: nothing held, nothing to do.
    TxnAssembler c;
    EXPECT_EQ(c.feed(rprep(1, "nope")), nullptr);
}

TEST(TxnAssembler, StreamPrepareThenCommitPrepared) {
    TxnAssembler a;
    feed_all(a, {sstart(950, true), ins("1", 950), ins("2", 951), StreamStopMsg{}});
    a.feed(sabort(950, 951));
    feed_all(a, {sstart(950, false), ins("3", 950), StreamStopMsg{}});
    EXPECT_EQ(a.feed(StreamPrepareMsg{0, Lsn(0x600), Lsn(0x620), 3000, 950, "gs"}), nullptr);
    EXPECT_EQ(a.pending_streams(), 0u);
    EXPECT_EQ(a.pending_prepared(), 1u);
    auto b = a.feed(cprep(950, "gs", 0x700));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"1", "3"}));
    EXPECT_EQ(b->end_lsn, Lsn(0x730));
}

TEST(TxnAssembler, TwoPhaseOrderViolations) {
    {
        TxnAssembler a;
        expect_violation(a, prep(900, "g", 0x100), "PREPARE without BEGIN PREPARE");
    }
    {
        TxnAssembler a;
        a.feed(bprep(900, "g", 0x100));
        expect_violation(a, prep(900, "g", 0x108), "incorrect prepare LSN 0/108");
    }
    {
        TxnAssembler a;
        a.feed(bprep(900, "g", 0x100));
        expect_violation(a, prep(900, "other", 0x100), "PREPARE for transaction 900 \"other\"");
    }
    {
        TxnAssembler a;
        a.feed(bprep(900, "g", 0x100));
        expect_violation(a, commit(0x100, 0x120), "expected PREPARE");
    }
    {
        TxnAssembler a;
        a.feed(begin(900, 0x100));
        expect_violation(a, prep(900, "g", 0x100), "PREPARE without BEGIN PREPARE");
    }
    {
        TxnAssembler a;
        expect_violation(a, cprep(900, "g", 0x100), "was not received in this session");
    }
    {
        TxnAssembler a;
        feed_all(a, {bprep(900, "g", 0x100), prep(900, "g", 0x100)});
        expect_violation(a, cprep(901, "g", 0x200), "names xid 901");
    }
    {
        TxnAssembler a;
        feed_all(a, {bprep(900, "g", 0x100), prep(900, "g", 0x100)});
        expect_violation(a, bprep(901, "g", 0x200), "already prepared");
    }
    {
        TxnAssembler a;
        a.feed(begin(1, 0x100));
        expect_violation(a, cprep(900, "g", 0x200), "COMMIT PREPARED message while transaction 1");
    }
    {
        TxnAssembler a;
        expect_violation(a, StreamPrepareMsg{0, Lsn(1), Lsn(2), 0, 5, "g"}, "never streamed");
    }
}

}  // namespace
}  // namespace pgshift
