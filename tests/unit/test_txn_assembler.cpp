// TxnAssembler: the pgoutput protocol state machine (protocol.md A3, A5.4, A7).
#include "decoder/txn_assembler.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <stdexcept>
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

/// Every batch ready after the last feed(), in order (the pull half of the API).
std::vector<std::unique_ptr<TxnBatch>> drain(TxnAssembler& a) {
    std::vector<std::unique_ptr<TxnBatch>> out;
    while (auto b = a.next_batch()) {
        out.push_back(std::move(b));
    }
    return out;
}

/// Feeds one message and returns the one batch it completed, or nullptr;
/// a message completing more than one batch is a failure here.
std::unique_ptr<TxnBatch> feed1(TxnAssembler& a, Message msg) {
    a.feed(std::move(msg));
    auto out = drain(a);
    if (out.empty()) {
        return nullptr;
    }
    EXPECT_EQ(out.size(), 1u) << "one message yielded several chunks";
    EXPECT_TRUE(out.back()->last_chunk);
    return std::move(out.back());
}

/// Feeds every message; expects nullptr for all but the last, returns the last result.
std::unique_ptr<TxnBatch> feed_all(TxnAssembler& a, std::vector<Message> msgs) {
    std::unique_ptr<TxnBatch> last;
    for (size_t i = 0; i < msgs.size(); ++i) {
        last = feed1(a, std::move(msgs[i]));
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
    EXPECT_EQ(feed1(a, begin(700, 0x100, 42)), nullptr);
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
        EXPECT_EQ(feed1(a, begin(700 + i, i * 0x100)), nullptr);
        auto b = feed1(a, commit(i * 0x100, i * 0x100 + 0x28));
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
    feed1(a, begin(1, 0x10));
    feed1(a, ins("1"));
    auto small = feed1(a, commit(0x10, 0x20));
    feed1(a, begin(2, 0x30));
    feed1(a, ins(std::string(10000, 'x')));
    auto big = feed1(a, commit(0x30, 0x40));
    EXPECT_GE(big->bytes, small->bytes + 10000);
}

TEST(TxnAssembler, CommitWithoutBegin) {
    TxnAssembler a;
    expect_violation(a, commit(0x100, 0x180), "COMMIT without BEGIN");
}

TEST(TxnAssembler, CommitLsnMustMatchBegin) {
    TxnAssembler a;
    feed1(a, begin(700, 0x16B3748));
    expect_violation(a, commit(0x16B3750, 0x16B3780),
                     "incorrect commit LSN 0/16B3750 in commit message (BEGIN said 0/16B3748)");
}

TEST(TxnAssembler, CommitFlagsMustBeZero) {
    TxnAssembler a;
    feed1(a, begin(700, 0x100));
    CommitMsg c = commit(0x100, 0x180);
    c.flags = 1;
    expect_violation(a, c, "unrecognized flags 1 in commit message");
}

TEST(TxnAssembler, BeginInsideTransaction) {
    TxnAssembler a;
    feed1(a, begin(700, 0x100));
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
    feed1(a, begin(700, 0x100));
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
    feed1(a, begin(700, 0x100));
    feed1(a, ins("1"));
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
    feed1(c, sstart(800, true));
    feed1(c, ins("1", 800));
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
    EXPECT_EQ(feed1(a, lmsg(false, "pgshift", "too early")), nullptr);
    EXPECT_FALSE(a.in_transaction());
    auto b = feed_all(a, {begin(700, 0x100), commit(0x100, 0x180)});
    EXPECT_FALSE(b->barrier_nonce);
}

TEST(TxnAssembler, NonTransactionalMessageInsideTransactionIsAViolation) {
    TxnAssembler a;
    feed1(a, begin(700, 0x100));
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
    EXPECT_EQ(feed1(a, sstart(800, true)), nullptr);
    EXPECT_TRUE(a.in_stream_block());
    EXPECT_TRUE(a.in_transaction());
    feed_all(a, {rel(800), ins("1", 800), ins("2", 800), StreamStopMsg{}});
    EXPECT_FALSE(a.in_stream_block());
    EXPECT_TRUE(a.in_transaction());  // still buffered
    EXPECT_EQ(a.pending_streams(), 1u);
    // Buffered in its spool file, not in memory.
    EXPECT_EQ(a.buffered_bytes(), 0u);
    uintmax_t spooled = 0;
    for (const auto& e : std::filesystem::directory_iterator(a.spool_dir())) {
        spooled += e.file_size();
    }
    EXPECT_GT(spooled, 0u);
    feed_all(a, {sstart(800, false), ins("3", 800), StreamStopMsg{}});
    auto b = feed1(a, scommit(800, 0x300, 0x380));
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
    auto b = feed1(a, scommit(802, 0x300, 0x380));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"b1", "b2", "b3"}));
    EXPECT_TRUE(a.in_transaction());
    auto c = feed1(a, scommit(801, 0x400, 0x480));
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(ids(*c), (Ids{"a1", "a2"}));
    EXPECT_FALSE(a.in_transaction());
}

TEST(TxnAssembler, StreamAbortOfTopLevelDropsTheTransaction) {
    TxnAssembler a;
    feed_all(a, {sstart(800, true), ins("1", 800), ins("2", 801), StreamStopMsg{}});
    EXPECT_EQ(feed1(a, sabort(800, 800)), nullptr);
    EXPECT_FALSE(a.in_transaction());
    expect_violation(a, scommit(800, 1, 2), "never streamed");
}

TEST(TxnAssembler, SubxactAbortTruncatesAtItsFirstChange) {
    // BEGIN; INSERT 1; SAVEPOINT s1 (xid 811); INSERT 2; SAVEPOINT s2 (812);
    // INSERT 3; RELEASE s2; INSERT 4 (in s1); ROLLBACK TO s1; INSERT 5; COMMIT
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), ins("2", 811), StreamStopMsg{}});
    feed_all(a, {sstart(810, false), ins("3", 812), ins("4", 811), StreamStopMsg{}});
    EXPECT_EQ(feed1(a, sabort(810, 811)), nullptr);
    EXPECT_TRUE(a.in_transaction());
    feed_all(a, {sstart(810, false), ins("5", 810), StreamStopMsg{}});
    auto b = feed1(a, scommit(810, 0x500, 0x580));
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"1", "5"}));
}

TEST(TxnAssembler, InnerSubxactAbortKeepsOuterChangesBeforeIt) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), ins("2", 811), ins("3", 812), ins("4", 812),
                 StreamStopMsg{}});
    feed1(a, sabort(810, 812));  // ROLLBACK TO s2
    // s1 is still alive and makes more changes; a later abort of s1 must still
    // cut at s1's first change.
    feed_all(a, {sstart(810, false), ins("5", 811), StreamStopMsg{}});
    feed_all(a, {sstart(810, false), ins("6", 813), StreamStopMsg{}});
    feed1(a, sabort(810, 813));
    auto b = feed1(a, scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"1", "2", "5"}));
}

TEST(TxnAssembler, SubxactAbortForgetsLaterSubxacts) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 811), ins("2", 812), StreamStopMsg{}});
    feed1(a, sabort(810, 811));  // drops 811 and 812 (started later)
    // 812 is forgotten: aborting it again is a no-op, not a second truncation.
    feed_all(a, {sstart(810, false), ins("3", 810), StreamStopMsg{}});
    feed1(a, sabort(810, 812));
    auto b = feed1(a, scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"3"}));
}

TEST(TxnAssembler, UnknownSubxidAbortIsANoop) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), ins("2", 811), StreamStopMsg{}});
    EXPECT_EQ(feed1(a, sabort(810, 999)), nullptr);
    auto b = feed1(a, scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"1", "2"}));
}

TEST(TxnAssembler, SubxactAbortKeepsRelationMessages) {
    // pgoutput sends a relation's schema once per streamed top-level xid, even
    // if the subxact that triggered it aborts; the Relation must survive.
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 811), rel(811), ins("2", 811), StreamStopMsg{}});
    feed1(a, sabort(810, 811));
    feed_all(a, {sstart(810, false), ins("3", 810), StreamStopMsg{}});
    auto b = feed1(a, scommit(810, 0x500, 0x580));
    EXPECT_EQ(ids(*b), (Ids{"R", "3"}));
}

TEST(TxnAssembler, BarrierInAbortedSubxactIsDropped) {
    TxnAssembler a;
    feed_all(a, {sstart(810, true), ins("1", 810), lmsg(true, "pgshift", "dropped", 811),
                 StreamStopMsg{}});
    feed1(a, sabort(810, 811));
    auto b = feed1(a, scommit(810, 0x500, 0x580));
    EXPECT_FALSE(b->barrier_nonce);
    TxnAssembler c;
    feed_all(c, {sstart(810, true), lmsg(true, "pgshift", "kept", 810),
                 lmsg(true, "other", "x", 810), StreamStopMsg{}});
    auto d = feed1(c, scommit(810, 0x500, 0x580));
    EXPECT_EQ(d->barrier_nonce, std::optional<std::string>("kept"));
    EXPECT_TRUE(d->changes.empty());
}

TEST(TxnAssembler, StreamOrderViolations) {
    {
        TxnAssembler a;
        feed1(a, sstart(800, true));
        expect_violation(a, sstart(801, true), "duplicate STREAM START");
    }
    {
        TxnAssembler a;
        expect_violation(a, StreamStopMsg{}, "STREAM STOP message without STREAM START");
    }
    {
        TxnAssembler a;
        feed1(a, sstart(800, true));
        expect_violation(a, scommit(800, 1, 2), "STREAM COMMIT message without STREAM STOP");
    }
    {
        TxnAssembler a;
        feed1(a, sstart(800, true));
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
        feed1(a, sstart(800, true));
        expect_violation(a, begin(1, 2),
                         "BEGIN message inside the stream block of transaction 800");
    }
    {
        TxnAssembler a;
        feed1(a, sstart(800, true));
        expect_violation(a, commit(1, 2), "COMMIT message inside the stream block");
    }
    {
        TxnAssembler a;
        feed1(a, begin(700, 0x100));
        expect_violation(a, sstart(800, true), "STREAM START message inside transaction 700");
    }
    {
        TxnAssembler a;
        feed1(a, sstart(800, true));
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
    auto b = feed1(a, cprep(900, "g1", 0x300));
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
    EXPECT_EQ(feed1(a, rprep(900, "g1")), nullptr);
    EXPECT_EQ(a.pending_prepared(), 0u);
    EXPECT_FALSE(a.in_transaction());
    expect_violation(a, cprep(900, "g1", 0x300), "COMMIT PREPARED for transaction \"g1\"");
    // Unknown gid on rollback: nothing held, nothing to do.
    TxnAssembler c;
    EXPECT_EQ(feed1(c, rprep(1, "nope")), nullptr);
}

TEST(TxnAssembler, StreamPrepareThenCommitPrepared) {
    TxnAssembler a;
    feed_all(a, {sstart(950, true), ins("1", 950), ins("2", 951), StreamStopMsg{}});
    feed1(a, sabort(950, 951));
    feed_all(a, {sstart(950, false), ins("3", 950), StreamStopMsg{}});
    EXPECT_EQ(feed1(a, StreamPrepareMsg{0, Lsn(0x600), Lsn(0x620), 3000, 950, "gs"}), nullptr);
    EXPECT_EQ(a.pending_streams(), 0u);
    EXPECT_EQ(a.pending_prepared(), 1u);
    auto b = feed1(a, cprep(950, "gs", 0x700));
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
        feed1(a, bprep(900, "g", 0x100));
        expect_violation(a, prep(900, "g", 0x108), "incorrect prepare LSN 0/108");
    }
    {
        TxnAssembler a;
        feed1(a, bprep(900, "g", 0x100));
        expect_violation(a, prep(900, "other", 0x100), "PREPARE for transaction 900 \"other\"");
    }
    {
        TxnAssembler a;
        feed1(a, bprep(900, "g", 0x100));
        expect_violation(a, commit(0x100, 0x120), "expected PREPARE");
    }
    {
        TxnAssembler a;
        feed1(a, begin(900, 0x100));
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
        feed1(a, begin(1, 0x100));
        expect_violation(a, cprep(900, "g", 0x200), "COMMIT PREPARED message while transaction 1");
    }
    {
        TxnAssembler a;
        expect_violation(a, StreamPrepareMsg{0, Lsn(1), Lsn(2), 0, 5, "g"}, "never streamed");
    }
}

// --- Bounded memory: chunks and the spool -------------------------------------------

namespace fs = std::filesystem;

/// A fresh spool directory per test (removed again at the end).
class ScratchDir {
  public:
    ScratchDir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = fs::temp_directory_path() / ("pgshift-ut-" + std::to_string(::getpid()) + "-" +
                                             info->test_suite_name() + "-" + info->name());
        fs::remove_all(path_);
    }
    ~ScratchDir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }
    /// Spool files currently in the directory (0 when it does not exist).
    size_t files() const {
        if (!fs::exists(path_)) {
            return 0;
        }
        return static_cast<size_t>(
            std::distance(fs::directory_iterator(path_), fs::directory_iterator()));
    }
    /// Size of the only spool file.
    uintmax_t only_file_size() const {
        EXPECT_EQ(files(), 1u);
        for (const auto& e : fs::directory_iterator(path_)) {
            return e.file_size();
        }
        return 0;
    }

  private:
    fs::path path_;
};

TxnAssembler::Options small_chunks(const fs::path& dir, size_t max_batch_bytes) {
    TxnAssembler::Options o;
    o.max_batch_bytes = max_batch_bytes;
    o.spool_dir = dir;
    o.proto_version = 2;
    return o;
}

/// All ids of consecutive chunks, checking the chunk contract of change.h.
Ids chunk_ids(const std::vector<std::unique_ptr<TxnBatch>>& chunks) {
    Ids out;
    for (size_t i = 0; i < chunks.size(); ++i) {
        const TxnBatch& c = *chunks[i];
        const bool last = i + 1 == chunks.size();
        EXPECT_EQ(c.last_chunk, last) << "chunk " << i;
        if (!last) {
            EXPECT_FALSE(c.end_lsn.valid()) << "chunk " << i;
            EXPECT_FALSE(c.barrier_nonce) << "chunk " << i;
            EXPECT_FALSE(c.changes.empty()) << "chunk " << i;
        }
        EXPECT_EQ(c.xid, chunks[0]->xid);
        EXPECT_EQ(c.commit_lsn, chunks[0]->commit_lsn);
        EXPECT_EQ(c.commit_time, chunks[0]->commit_time);
        EXPECT_EQ(c.origin, chunks[0]->origin);
        for (auto& id : ids(c)) {
            out.push_back(std::move(id));
        }
    }
    return out;
}

Ids numbered(size_t n, size_t from = 0) {
    Ids out;
    for (size_t i = from; i < from + n; ++i) {
        out.push_back(std::to_string(i));
    }
    return out;
}

TEST(TxnAssemblerChunks, LargeTransactionIsHandedOutInChunksBeforeCommit) {
    ScratchDir dir;
    const size_t one = approx_message_bytes(Message(ins("0")));
    const size_t max = 10 * one;
    TxnAssembler a(small_chunks(dir.path(), max));
    EXPECT_EQ(feed1(a, begin(700, 0x100, 42)), nullptr);
    EXPECT_EQ(feed1(a, OriginMsg{Lsn(9), "o1"}), nullptr);
    EXPECT_EQ(feed1(a, rel()), nullptr);
    std::vector<std::unique_ptr<TxnBatch>> chunks;
    for (size_t i = 0; i < 100; ++i) {
        a.feed(ins(std::to_string(i)));
        for (auto& c : drain(a)) {
            EXPECT_LE(c->bytes, max);
            EXPECT_FALSE(c->last_chunk);
            chunks.push_back(std::move(c));
        }
        EXPECT_LE(a.buffered_bytes(), max);
        EXPECT_TRUE(a.in_transaction());
        if (i == 50) {
            a.feed(lmsg(true, "pgshift", "nonce-7"));  // mid-transaction barrier
            EXPECT_TRUE(drain(a).empty());
        }
    }
    EXPECT_GE(chunks.size(), 9u) << "chunks must go out before the commit";
    a.feed(commit(0x100, 0x180, 43));
    auto rest = drain(a);
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_EQ(rest[0]->end_lsn, Lsn(0x180));
    EXPECT_EQ(rest[0]->commit_time, 43);
    EXPECT_EQ(rest[0]->barrier_nonce, std::optional<std::string>("nonce-7"));
    chunks.push_back(std::move(rest[0]));
    EXPECT_FALSE(a.in_transaction());
    for (auto& c : chunks) {
        EXPECT_EQ(c->xid, 700u);
        EXPECT_EQ(c->commit_lsn, Lsn(0x100));  // Begin.final_lsn, on every chunk
        EXPECT_EQ(c->origin, std::optional<std::string>("o1"));
        c->commit_time = 43;  // Begin's time on the early chunks, Commit's on the last
    }
    Ids want{"R"};
    for (auto& id : numbered(100)) {
        want.push_back(id);
    }
    EXPECT_EQ(chunk_ids(chunks), want);
    EXPECT_EQ(dir.files(), 0u) << "B..C never touches the spool";
}

TEST(TxnAssemblerChunks, NoChunkBeforeTheFirstDataChangeSoOriginReachesEveryChunk) {
    ScratchDir dir;
    TxnAssembler a(small_chunks(dir.path(), 1));  // every change its own chunk
    for (Message m : std::vector<Message>{
             begin(700, 0x100), rel(), TypeMsg{std::nullopt, 1, "", "t"}, OriginMsg{Lsn(1), "o"}}) {
        a.feed(std::move(m));
        EXPECT_TRUE(drain(a).empty());
    }
    std::vector<std::unique_ptr<TxnBatch>> chunks;
    for (Message m : std::vector<Message>{ins("1"), ins("2"), commit(0x100, 0x180)}) {
        a.feed(std::move(m));
        for (auto& c : drain(a)) {
            chunks.push_back(std::move(c));
        }
    }
    ASSERT_EQ(chunks.size(), 3u);
    EXPECT_EQ(chunk_ids(chunks), (Ids{"R", "Y", "1", "2"}));
    EXPECT_EQ(ids(*chunks[0]), (Ids{"R", "Y"}));
    EXPECT_EQ(chunks[0]->origin, std::optional<std::string>("o"));
}

TEST(TxnAssemblerChunks, SmallAndEmptyTransactionsStayOneBatch) {
    ScratchDir dir;
    TxnAssembler a(small_chunks(dir.path(), 1 << 20));
    auto b = feed_all(a, {begin(1, 0x10), ins("1"), ins("2"), commit(0x10, 0x20)});
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(b->last_chunk);
    EXPECT_EQ(ids(*b), (Ids{"1", "2"}));
    auto e = feed_all(a, {begin(2, 0x30), commit(0x30, 0x40)});
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(e->last_chunk);
    EXPECT_TRUE(e->changes.empty());
    EXPECT_EQ(e->end_lsn, Lsn(0x40));
    // An empty streamed transaction is one empty batch too.
    auto s = feed_all(a, {sstart(3, true), StreamStopMsg{}, scommit(3, 0x50, 0x60)});
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->changes.empty());
    EXPECT_EQ(s->end_lsn, Lsn(0x60));
}

TEST(TxnAssemblerChunks, PreparedTransactionsAreNotChunked) {
    ScratchDir dir;
    TxnAssembler a(small_chunks(dir.path(), 1));
    for (Message m :
         std::vector<Message>{BeginPrepareMsg{Lsn(0x100), Lsn(0x120), 3000, 900, "g"}, ins("1"),
                              ins("2"), PrepareMsg{0, Lsn(0x100), Lsn(0x120), 3000, 900, "g"}}) {
        a.feed(std::move(m));
        EXPECT_TRUE(drain(a).empty());
    }
    auto b = feed1(a, CommitPreparedMsg{0, Lsn(0x300), Lsn(0x330), 4000, 900, "g"});
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"1", "2"}));
}

TEST(TxnAssemblerChunks, FeedBeforeDrainingIsALogicError) {
    ScratchDir dir;
    TxnAssembler a(small_chunks(dir.path(), 1 << 20));
    a.feed(begin(1, 0x10));
    a.feed(commit(0x10, 0x20));
    EXPECT_THROW(a.feed(begin(2, 0x30)), std::logic_error);
    EXPECT_TRUE(a.in_transaction());  // the batch is still waiting
    EXPECT_NE(a.next_batch(), nullptr);
    EXPECT_FALSE(a.in_transaction());
}

TEST(TxnAssemblerSpool, LongStreamIsSpooledAndReplayedInBoundedChunks) {
    ScratchDir dir;
    const size_t max = 64 << 10;
    constexpr size_t kRows = 100000;
    constexpr size_t kPerBlock = 1000;
    TxnAssembler a(small_chunks(dir.path(), max));
    size_t peak = 0;
    auto feed_none = [&](Message m) {
        a.feed(std::move(m));
        EXPECT_EQ(a.next_batch(), nullptr);
        peak = std::max(peak, a.buffered_bytes());
    };
    for (size_t block = 0; block < kRows / kPerBlock; ++block) {
        feed_none(sstart(800, block == 0));
        if (block == 0) {
            feed_none(OriginMsg{Lsn(3), "o2"});
            feed_none(rel(800));
        }
        for (size_t i = block * kPerBlock; i < (block + 1) * kPerBlock; ++i) {
            feed_none(ins(std::to_string(i), i % 2 == 0 ? 800 : 801));  // a released subxact
        }
        if (block == 37) {
            feed_none(lmsg(true, "pgshift", "nonce-s", 800));
        }
        feed_none(StreamStopMsg{});
        EXPECT_EQ(a.buffered_bytes(), 0u) << "an idle spool holds no buffer";
        // An ordinary transaction between blocks is not held up.
        auto plain = feed_all(a, {begin(900 + block, 0x10), ins("p"), commit(0x10, 0x20)});
        ASSERT_NE(plain, nullptr);
        EXPECT_EQ(ids(*plain), (Ids{"p"}));
    }
    EXPECT_LE(peak, max);
    EXPECT_EQ(a.pending_streams(), 1u);
    EXPECT_GT(dir.only_file_size(), kRows * 8) << "the rows are on disk, not in memory";

    a.feed(scommit(800, 0x300, 0x380));
    EXPECT_EQ(a.pending_streams(), 0u);
    std::vector<std::unique_ptr<TxnBatch>> chunks;
    while (auto c = a.next_batch()) {
        EXPECT_LE(c->bytes, max);
        EXPECT_LE(a.buffered_bytes(), max);
        if (!c->last_chunk) {
            EXPECT_TRUE(a.in_transaction());
        }
        chunks.push_back(std::move(c));
    }
    EXPECT_GT(chunks.size(), 10u);
    EXPECT_FALSE(a.in_transaction());
    EXPECT_EQ(dir.files(), 0u) << "the spool file is removed once replayed";
    const TxnBatch& last = *chunks.back();
    EXPECT_EQ(last.end_lsn, Lsn(0x380));
    EXPECT_EQ(last.barrier_nonce, std::optional<std::string>("nonce-s"));
    EXPECT_EQ(chunks.front()->xid, 800u);
    EXPECT_EQ(chunks.front()->commit_lsn, Lsn(0x300));
    EXPECT_EQ(chunks.front()->commit_time, 2000);
    EXPECT_EQ(chunks.front()->origin, std::optional<std::string>("o2"));
    Ids want{"R"};
    for (auto& id : numbered(kRows)) {
        want.push_back(id);
    }
    EXPECT_EQ(chunk_ids(chunks), want);
    // The (sub)xid a change was streamed with survives the spool.
    const auto& second = std::get<InsertMsg>(chunks.front()->changes.at(2));
    EXPECT_EQ(second.xid, std::optional<uint32_t>(801));
}

TEST(TxnAssemblerSpool, SubxactAbortTruncatesTheFileAndKeepsSchema) {
    ScratchDir dir;
    TxnAssembler a(small_chunks(dir.path(), 1 << 20));
    feed_all(a, {sstart(810, true), ins("1", 810), StreamStopMsg{}});
    const uintmax_t before = dir.only_file_size();
    a.feed(sstart(810, false));
    for (int i = 0; i < 5000; ++i) {
        a.feed(ins("x" + std::to_string(i), i < 2500 ? 811 : 812));
        if (i == 3000) {
            a.feed(rel(812));  // schema first sent inside the aborted subxacts
        }
    }
    a.feed(StreamStopMsg{});
    const uintmax_t grown = dir.only_file_size();
    EXPECT_GT(grown, before + 5000 * 8);
    EXPECT_EQ(feed1(a, sabort(810, 811)), nullptr);  // cuts 811 and the later 812
    const uintmax_t cut = dir.only_file_size();
    EXPECT_GT(cut, before);                          // the Relation record came back
    EXPECT_LT(cut, before + 200);                    // and nothing else
    EXPECT_EQ(feed1(a, sabort(810, 812)), nullptr);  // forgotten: no-op
    EXPECT_EQ(dir.only_file_size(), cut);
    feed_all(a, {sstart(810, false), ins("2", 813), StreamStopMsg{}});
    a.feed(sabort(810, 813));
    auto b = feed_all(
        a, {sstart(810, false), ins("4", 810), StreamStopMsg{}, scommit(810, 0x500, 0x580)});
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"1", "R", "4"}));
    EXPECT_EQ(dir.files(), 0u);
}

TEST(TxnAssemblerSpool, WholeAbortDeletesTheFile) {
    ScratchDir dir;
    TxnAssembler a(small_chunks(dir.path(), 1 << 20));
    feed_all(a, {sstart(800, true), ins("1", 800), StreamStopMsg{}});
    feed_all(a, {sstart(801, true), ins("2", 801), StreamStopMsg{}});
    EXPECT_EQ(dir.files(), 2u);
    EXPECT_EQ(feed1(a, sabort(800, 800)), nullptr);
    EXPECT_EQ(dir.files(), 1u);
    EXPECT_EQ(feed1(a, sabort(801, 801)), nullptr);
    EXPECT_EQ(dir.files(), 0u);
    EXPECT_FALSE(a.in_transaction());
}

TEST(TxnAssemblerSpool, StreamPrepareReadsTheSpoolBackAndRemovesIt) {
    ScratchDir dir;
    TxnAssembler a(small_chunks(dir.path(), 1));
    feed_all(a, {sstart(950, true), ins("1", 950), ins("2", 950), StreamStopMsg{}});
    EXPECT_EQ(feed1(a, StreamPrepareMsg{0, Lsn(0x600), Lsn(0x620), 3000, 950, "gs"}), nullptr);
    EXPECT_EQ(dir.files(), 0u);
    auto b = feed1(a, CommitPreparedMsg{0, Lsn(0x700), Lsn(0x730), 4000, 950, "gs"});
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(ids(*b), (Ids{"1", "2"}));
}

TEST(TxnAssemblerSpool, DirectoryIsCreatedOnDemandPrivateAndRemovedByTheDestructor) {
    ScratchDir dir;
    {
        TxnAssembler a(small_chunks(dir.path(), 1 << 20));
        feed_all(a, {begin(1, 0x10), ins("1"), commit(0x10, 0x20)});
        EXPECT_FALSE(fs::exists(dir.path())) << "not created before a stream needs it";
        feed_all(a, {sstart(800, true), ins("1", 800), StreamStopMsg{}});
        feed_all(a, {sstart(801, true), ins("1", 801)});  // still inside a block
        ASSERT_TRUE(fs::is_directory(dir.path()));
        EXPECT_EQ(fs::status(dir.path()).permissions() & fs::perms::all, fs::perms::owner_all);
        EXPECT_EQ(dir.files(), 2u);
    }
    EXPECT_FALSE(fs::exists(dir.path())) << "open streams' files and the directory are removed";

    // A directory that already existed is left in place, only our files go;
    // two assemblers sharing one directory never collide on an xid.
    fs::create_directories(dir.path());
    {
        TxnAssembler a(small_chunks(dir.path(), 1 << 20));
        TxnAssembler b(small_chunks(dir.path(), 1 << 20));
        feed_all(a, {sstart(800, true), ins("a", 800), StreamStopMsg{}});
        feed_all(b, {sstart(800, true), ins("b", 800), StreamStopMsg{}});
        EXPECT_EQ(dir.files(), 2u);
        auto ca = feed1(a, scommit(800, 0x10, 0x20));
        ASSERT_NE(ca, nullptr);
        EXPECT_EQ(ids(*ca), (Ids{"a"}));
        EXPECT_EQ(dir.files(), 1u);
    }
    EXPECT_TRUE(fs::is_directory(dir.path()));
    EXPECT_EQ(dir.files(), 0u);
}

TEST(TxnAssemblerSpool, DefaultDirectoryIsPerProcessAndCleanedUp) {
    const fs::path def = default_spool_dir();
    EXPECT_EQ(def.parent_path(), fs::temp_directory_path());
    EXPECT_EQ(def.filename().string(), "pgshift-spool-" + std::to_string(::getpid()));
    {
        TxnAssembler a;
        EXPECT_EQ(a.spool_dir(), def);
        feed_all(a, {sstart(800, true), ins("1", 800), StreamStopMsg{}});
        EXPECT_TRUE(fs::is_directory(def));
    }
    EXPECT_FALSE(fs::exists(def));
    // Shared by two assemblers: whichever goes last removes it, even if the
    // other one created it.
    {
        auto first = std::make_unique<TxnAssembler>();
        TxnAssembler second;
        feed_all(*first, {sstart(800, true), ins("1", 800), StreamStopMsg{}});
        feed_all(second, {sstart(800, true), ins("2", 800), StreamStopMsg{}});
        first.reset();
        EXPECT_TRUE(fs::is_directory(def));
    }
    EXPECT_FALSE(fs::exists(def));
}

}  // namespace
}  // namespace pgshift
