// Golden fixtures captured from a real PostgreSQL 15 server by
// scripts/capture_fixtures.sh (tests/fixtures/pg15_v<N>_<scenario>.hex, one
// pgoutput message per line, next to the pg15_<scenario>.sql that produced
// it). Every message must decode, re-encode to the same bytes and run through
// TxnAssembler (with the codec's stream-block state taken from the
// assembler); then the assembled transactions are checked for content.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "change.h"
#include "decoder/pgoutput_codec.h"
#include "decoder/relation_cache.h"
#include "decoder/txn_assembler.h"

#ifndef PGSHIFT_FIXTURES_DIR
#error "PGSHIFT_FIXTURES_DIR must be defined by the build"
#endif

namespace pgshift {
namespace {

using namespace pgoutput;

const std::vector<std::string> kScenarios = {"dml",    "truncate", "messages", "origin",
                                             "stream", "twophase", "ddl"};
constexpr int kMaxProto = 3;  // PostgreSQL 15

std::string unhex(const std::string& hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    if (hex.size() % 2 != 0) {
        ADD_FAILURE() << "odd-length hex line";
        return out;
    }
    for (size_t i = 0; i < hex.size(); i += 2) {
        int hi = nibble(hex[i]);
        int lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            ADD_FAILURE() << "bad hex digit in line";
            return out;
        }
        out.push_back(static_cast<char>(hi << 4 | lo));
    }
    return out;
}

/// One fixture file, decoded and assembled.
struct Capture {
    int version = 0;
    std::vector<Message> msgs;  ///< as decoded, in stream order
    std::vector<std::unique_ptr<TxnBatch>> batches;
    bool idle_at_end = false;

    size_t count(char type) const {
        return std::count_if(msgs.begin(), msgs.end(),
                             [&](const Message& m) { return message_type(m) == type; });
    }
    template <typename T>
    std::vector<const T*> all() const {
        std::vector<const T*> out;
        for (const Message& m : msgs) {
            if (auto* p = std::get_if<T>(&m))
                out.push_back(p);
        }
        return out;
    }
    uint32_t relid(const std::string& relname) const {
        for (const RelationMsg* r : all<RelationMsg>()) {
            if (r->relname == relname)
                return r->relid;
        }
        ADD_FAILURE() << "no Relation message for " << relname;
        return 0;
    }
};

std::string fixture_path(int version, const std::string& scenario) {
    return std::string(PGSHIFT_FIXTURES_DIR) + "/pg15_v" + std::to_string(version) + "_" +
           scenario + ".hex";
}

/// Loads a fixture through a TxnAssembler. With max_batch_bytes set, large
/// transactions come out as several chunks; they are merged back here (and
/// the chunk contract of change.h is checked), so every assertion below holds
/// whatever the chunk size.
Capture load(int version, const std::string& scenario,
             std::optional<size_t> max_batch_bytes = std::nullopt, size_t* chunk_count = nullptr) {
    Capture cap;
    cap.version = version;
    std::ifstream in(fixture_path(version, scenario));
    if (!in) {
        ADD_FAILURE() << "cannot open " << fixture_path(version, scenario);
        return cap;
    }
    TxnAssembler::Options opts;
    opts.proto_version = version;
    if (max_batch_bytes) {
        opts.max_batch_bytes = *max_batch_bytes;
    }
    TxnAssembler assembler(opts);
    std::unique_ptr<TxnBatch> partial;  // chunks of a transaction not yet complete
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty() || line[0] == '#')
            continue;
        const std::string bytes = unhex(line);
        CodecContext ctx{version, assembler.in_stream_block(), false};
        SCOPED_TRACE(fixture_path(version, scenario) + ":" + std::to_string(lineno));
        try {
            Message msg = decode(bytes, ctx);
            EXPECT_EQ(encode(msg, ctx), bytes) << "decode -> encode changed the bytes";
            cap.msgs.push_back(msg);
            assembler.feed(std::move(msg));
            while (auto batch = assembler.next_batch()) {
                if (chunk_count) {
                    ++*chunk_count;
                }
                if (!partial) {
                    partial = std::move(batch);
                } else {
                    EXPECT_EQ(batch->xid, partial->xid);
                    EXPECT_EQ(batch->commit_lsn, partial->commit_lsn);
                    EXPECT_EQ(batch->origin, partial->origin);
                    EXPECT_FALSE(partial->barrier_nonce) << "barrier before the last chunk";
                    for (Message& m : batch->changes) {
                        partial->changes.push_back(std::move(m));
                    }
                    partial->bytes += batch->bytes;
                    partial->end_lsn = batch->end_lsn;
                    partial->commit_time = batch->commit_time;
                    partial->barrier_nonce = std::move(batch->barrier_nonce);
                    partial->last_chunk = batch->last_chunk;
                }
                if (partial->last_chunk) {
                    cap.batches.push_back(std::move(partial));
                } else {
                    EXPECT_FALSE(partial->end_lsn.valid()) << "end_lsn before the last chunk";
                }
            }
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
            return cap;
        }
    }
    EXPECT_FALSE(partial) << "chunks of an unfinished transaction";
    cap.idle_at_end = !assembler.in_transaction() && !assembler.in_stream_block();
    return cap;
}

/// First-column values of the Inserts into relid, in order.
std::vector<std::string> inserted(const TxnBatch& b, uint32_t relid) {
    std::vector<std::string> out;
    for (const Message& m : b.changes) {
        if (auto* i = std::get_if<InsertMsg>(&m); i && i->relid == relid) {
            out.push_back(i->new_tuple.at(0).data);
        }
    }
    return out;
}

std::vector<std::string> range(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i)
        out.push_back(std::to_string(i));
    return out;
}

std::vector<std::string> concat(std::vector<std::vector<std::string>> parts) {
    std::vector<std::string> out;
    for (auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

ColumnValue text(const std::string& s) {
    return ColumnValue{ColumnKind::Text, s};
}
const ColumnValue kNull{ColumnKind::Null, ""};
const ColumnValue kUnchanged{ColumnKind::Unchanged, ""};

/// A protocol-version independent description of an assembled transaction:
/// its LSNs, xid, origin, barrier and data changes (Relation/Type messages are
/// re-sent per stream, so they are left out; streaming xids are cleared).
std::string normalized(const TxnBatch& b) {
    std::ostringstream os;
    os << "xid=" << b.xid << " commit=" << b.commit_lsn.str() << " end=" << b.end_lsn.str()
       << " ts=" << b.commit_time << " origin=" << b.origin.value_or("-")
       << " barrier=" << b.barrier_nonce.value_or("-") << " changes:";
    for (const Message& m : b.changes) {
        if (std::holds_alternative<RelationMsg>(m) || std::holds_alternative<TypeMsg>(m)) {
            continue;
        }
        Message copy = m;
        std::visit(
            [](auto& v) {
                if constexpr (requires { v.xid.reset(); }) {
                    v.xid.reset();
                }
            },
            copy);
        const std::string bytes = encode(copy, CodecContext{1, false, false});
        os << ' ' << bytes.size() << ':' << std::hash<std::string>{}(bytes);
    }
    return os.str();
}

// --- Every file: decode, re-encode, assemble ------------------------------------------

class GoldenFile : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(GoldenFile, DecodesReencodesAndAssembles) {
    auto [version, scenario] = GetParam();
    Capture cap = load(version, scenario);
    EXPECT_FALSE(cap.msgs.empty());
    EXPECT_FALSE(cap.batches.empty());
    EXPECT_TRUE(cap.idle_at_end) << "stream ended inside a transaction";
    // Streaming and two-phase messages only where negotiated.
    if (version < 2) {
        EXPECT_EQ(cap.count('S') + cap.count('E') + cap.count('c') + cap.count('A'), 0u);
    }
    if (version < 3) {
        EXPECT_EQ(
            cap.count('b') + cap.count('P') + cap.count('K') + cap.count('r') + cap.count('p'), 0u);
    }
    // Commit order: end_lsn strictly increases.
    for (size_t i = 1; i < cap.batches.size(); ++i) {
        EXPECT_LT(cap.batches[i - 1]->end_lsn, cap.batches[i]->end_lsn);
    }
}

INSTANTIATE_TEST_SUITE_P(Pg15, GoldenFile,
                         ::testing::Combine(::testing::Range(1, kMaxProto + 1),
                                            ::testing::ValuesIn(kScenarios)),
                         [](const auto& info) {
                             return "v" + std::to_string(std::get<0>(info.param)) + "_" +
                                    std::get<1>(info.param);
                         });

// --- Same committed transactions whatever the protocol version ------------------------

class GoldenScenario : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenScenario, EveryProtocolVersionAssemblesTheSameTransactions) {
    std::vector<std::string> reference;
    for (int v = 1; v <= kMaxProto; ++v) {
        Capture cap = load(v, GetParam());
        std::vector<std::string> got;
        for (const auto& b : cap.batches)
            got.push_back(normalized(*b));
        if (v == 1) {
            reference = got;
        } else {
            EXPECT_EQ(got, reference) << "proto_version " << v << " differs from 1";
        }
    }
}

TEST_P(GoldenScenario, TinyChunksAssembleTheSameTransactions) {
    // max_batch_bytes = 1: every change travels in its own chunk (B..C ones
    // early, streamed ones replayed from the spool file), yet merged back the
    // transactions are exactly those of the one-batch run.
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture whole = load(v, GetParam());
        size_t chunks = 0;
        Capture tiny = load(v, GetParam(), 1, &chunks);
        ASSERT_EQ(tiny.batches.size(), whole.batches.size());
        for (size_t i = 0; i < whole.batches.size(); ++i) {
            EXPECT_EQ(normalized(*tiny.batches[i]), normalized(*whole.batches[i])) << i;
            EXPECT_EQ(tiny.batches[i]->barrier_nonce, whole.batches[i]->barrier_nonce) << i;
        }
        size_t multi_change = 0;
        for (const auto& b : whole.batches) {
            multi_change += b->changes.size() > 1 ? 1 : 0;
        }
        // Prepared transactions (two-phase, v3) are held whole, not chunked.
        const bool prepared = GetParam() == "twophase" && v >= 3;
        if (multi_change > 0 && !prepared) {
            EXPECT_GT(chunks, whole.batches.size());
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Pg15, GoldenScenario, ::testing::ValuesIn(kScenarios),
                         [](const auto& info) { return info.param; });

// --- Content ---------------------------------------------------------------------------

TEST(GoldenFixtures, DmlTupleKindsToastAndTypes) {
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture cap = load(v, "dml");
        // INSERT into an unpublished table produces nothing on PG15.
        ASSERT_EQ(cap.batches.size(), 8u);

        auto types = cap.all<TypeMsg>();
        ASSERT_EQ(types.size(), 1u);
        EXPECT_EQ(types[0]->nspname, "public");
        EXPECT_EQ(types[0]->typname, "mood");

        const uint32_t events = cap.relid("events");
        const RelationMsg* rel = cap.all<RelationMsg>().at(0);
        ASSERT_EQ(rel->relid, events);
        ASSERT_EQ(rel->columns.size(), 4u);  // generated payload_len is not published
        EXPECT_EQ(rel->columns[0].name, "id");
        EXPECT_TRUE(rel->columns[0].is_key());
        EXPECT_EQ(rel->columns[0].type_oid, 20u);
        EXPECT_EQ(rel->columns[1].name, "kind");
        EXPECT_EQ(rel->columns[1].type_oid, types[0]->type_oid);
        EXPECT_EQ(rel->columns[3].name, "big");
        EXPECT_EQ(rel->replident, 'd');

        // 1: insert with an 8000-char TOASTed value.
        const auto& ins = std::get<InsertMsg>(cap.batches[0]->changes.back());
        EXPECT_EQ(ins.new_tuple.at(0), text("1"));
        EXPECT_EQ(ins.new_tuple.at(1), text("happy"));
        EXPECT_EQ(ins.new_tuple.at(3).data.size(), 8000u);
        // 3: UPDATE payload: big is unchanged TOAST, no old tuple.
        const auto& upd = std::get<UpdateMsg>(cap.batches[2]->changes.at(0));
        EXPECT_EQ(upd.old_kind, OldTupleKind::None);
        EXPECT_EQ(upd.new_tuple,
                  (TupleData{text("1"), text("happy"), text("changed"), kUnchanged}));
        // 4: key change: 'K' old tuple with placeholders for non-key columns.
        const auto& key = std::get<UpdateMsg>(cap.batches[3]->changes.at(0));
        EXPECT_EQ(key.old_kind, OldTupleKind::Key);
        EXPECT_EQ(key.old_tuple, (TupleData{text("2"), kNull, kNull, kNull}));
        EXPECT_EQ(key.new_tuple, (TupleData{text("10"), text("sad"), kNull, kNull}));
        // 5: delete by key.
        const auto& del = std::get<DeleteMsg>(cap.batches[4]->changes.at(0));
        EXPECT_EQ(del.old_kind, OldTupleKind::Key);
        EXPECT_EQ(del.old_tuple, (TupleData{text("10"), kNull, kNull, kNull}));

        // 6-8: RI FULL table sends whole old rows ('O').
        const uint32_t accounts = cap.relid("accounts");
        EXPECT_EQ(inserted(*cap.batches[5], accounts), (std::vector<std::string>{"1", "2"}));
        const auto& full_upd = std::get<UpdateMsg>(cap.batches[6]->changes.at(0));
        EXPECT_EQ(full_upd.relid, accounts);
        EXPECT_EQ(full_upd.old_kind, OldTupleKind::Full);
        EXPECT_EQ(full_upd.old_tuple, (TupleData{text("1"), text("alice"), text("10.50")}));
        EXPECT_EQ(full_upd.new_tuple, (TupleData{text("1"), text("alice"), text("11.50")}));
        const auto& full_del = std::get<DeleteMsg>(cap.batches[7]->changes.at(0));
        EXPECT_EQ(full_del.old_kind, OldTupleKind::Full);
        EXPECT_EQ(full_del.old_tuple, (TupleData{text("2"), text("bob"), text("0.00")}));
    }
}

TEST(GoldenFixtures, TruncateFlagsAndRelids) {
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture cap = load(v, "truncate");
        auto truncs = cap.all<TruncateMsg>();
        ASSERT_EQ(truncs.size(), 3u);
        const uint32_t parent = cap.relid("parent");
        const uint32_t child = cap.relid("child");
        const uint32_t bulk = cap.relid("bulk");
        EXPECT_EQ(truncs[0]->flags, TruncateMsg::kCascade | TruncateMsg::kRestartIdentity);
        EXPECT_EQ(std::set<uint32_t>(truncs[0]->relids.begin(), truncs[0]->relids.end()),
                  (std::set<uint32_t>{parent, child}));
        EXPECT_EQ(truncs[1]->flags, 0);
        EXPECT_EQ(truncs[1]->relids, (std::vector<uint32_t>{bulk}));
        EXPECT_EQ(truncs[2]->flags, TruncateMsg::kCascade);
        EXPECT_EQ(truncs[2]->relids, (std::vector<uint32_t>{child}));
        // Each TRUNCATE is a change of its transaction.
        size_t in_batches = 0;
        for (const auto& b : cap.batches) {
            for (const Message& m : b->changes) {
                in_batches += std::holds_alternative<TruncateMsg>(m) ? 1 : 0;
            }
        }
        EXPECT_EQ(in_batches, 3u);
    }
}

TEST(GoldenFixtures, LogicalMessagesAndBarrier) {
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture cap = load(v, "messages");
        std::vector<std::string> nontx;
        size_t transactional = 0;
        for (const LogicalMsg* m : cap.all<LogicalMsg>()) {
            EXPECT_TRUE(m->lsn.valid());
            if (m->transactional()) {
                ++transactional;
            } else {
                nontx.push_back(m->prefix + "=" + m->content);
            }
        }
        EXPECT_EQ(nontx, (std::vector<std::string>{"other=non-transactional hello",
                                                   "other=from aborted txn"}));
        EXPECT_EQ(transactional, 3u);

        ASSERT_EQ(cap.batches.size(), 3u);
        const uint32_t bulk = cap.relid("bulk");
        EXPECT_EQ(cap.batches[0]->barrier_nonce, std::optional<std::string>("mig1:nonce-42"));
        EXPECT_EQ(inserted(*cap.batches[0], bulk), (std::vector<std::string>{"100"}));
        for (const Message& m : cap.batches[0]->changes) {
            EXPECT_FALSE(std::holds_alternative<LogicalMsg>(m)) << "messages are not changes";
        }
        // The cutover-style transaction carries only the barrier.
        EXPECT_TRUE(cap.batches[1]->changes.empty());
        EXPECT_EQ(cap.batches[1]->barrier_nonce, std::optional<std::string>("mig1:nonce-43"));
        EXPECT_EQ(inserted(*cap.batches[2], bulk), (std::vector<std::string>{"102"}));
        EXPECT_FALSE(cap.batches[2]->barrier_nonce);
    }
}

TEST(GoldenFixtures, OriginMessage) {
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture cap = load(v, "origin");
        auto origins = cap.all<OriginMsg>();
        ASSERT_EQ(origins.size(), 1u);
        EXPECT_EQ(origins[0]->name, "fixture_origin");
        EXPECT_EQ(origins[0]->origin_lsn, Lsn::parse("0/1234ABCD"));
        ASSERT_EQ(cap.batches.size(), 2u);
        EXPECT_EQ(cap.batches[0]->origin, std::optional<std::string>("fixture_origin"));
        EXPECT_EQ(inserted(*cap.batches[0], cap.relid("bulk")), (std::vector<std::string>{"200"}));
        EXPECT_FALSE(cap.batches[1]->origin);
    }
}

TEST(GoldenFixtures, StreamedTransactionsMinusAbortedSubxact) {
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture cap = load(v, "stream");
        const uint32_t bulk = cap.relid("bulk");
        if (v >= 2) {
            EXPECT_GE(cap.count('S'), 6u);
            EXPECT_EQ(cap.count('S'), cap.count('E'));
            EXPECT_EQ(cap.count('c'), 3u);
            auto aborts = cap.all<StreamAbortMsg>();
            ASSERT_EQ(aborts.size(), 2u);
            EXPECT_NE(aborts[0]->subxid, aborts[0]->xid);  // ROLLBACK TO SAVEPOINT
            EXPECT_EQ(aborts[1]->subxid, aborts[1]->xid);  // ROLLBACK
            // The aborted subxact's rows really were streamed, tagged with its xid.
            size_t streamed_aborted = 0;
            for (const InsertMsg* i : cap.all<InsertMsg>()) {
                if (i->new_tuple.at(1).data == "aborted subxact") {
                    ++streamed_aborted;
                    EXPECT_EQ(i->xid, std::optional<uint32_t>(aborts[0]->subxid));
                }
            }
            EXPECT_GT(streamed_aborted, 0u);
            // Blocks of the two concurrent transactions interleave.
            std::vector<uint32_t> starts;
            for (const StreamStartMsg* s : cap.all<StreamStartMsg>())
                starts.push_back(s->xid);
            // Interleaved: more runs of equal xids than distinct xids.
            size_t runs = 0;
            for (size_t i = 0; i < starts.size(); ++i) {
                runs += (i == 0 || starts[i] != starts[i - 1]) ? 1 : 0;
            }
            const bool interleaved = runs > std::set<uint32_t>(starts.begin(), starts.end()).size();
            EXPECT_TRUE(interleaved);
        }
        ASSERT_EQ(cap.batches.size(), 5u);
        EXPECT_EQ(inserted(*cap.batches[0], bulk),
                  concat({range(1000, 1019), range(3000, 3004), range(4000, 4004)}));
        EXPECT_EQ(inserted(*cap.batches[1], cap.relid("events")),
                  (std::vector<std::string>{"500"}));
        EXPECT_EQ(inserted(*cap.batches[2], bulk), range(30000, 31199));
        EXPECT_EQ(inserted(*cap.batches[3], bulk), range(20000, 21199));
        EXPECT_EQ(inserted(*cap.batches[4], bulk), (std::vector<std::string>{"9999"}));
    }
}

TEST(GoldenFixtures, TwoPhaseTransactions) {
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture cap = load(v, "twophase");
        if (v >= 3) {
            EXPECT_EQ(cap.count('b'), 3u);
            EXPECT_EQ(cap.count('P'), 3u);
            EXPECT_EQ(cap.count('p'), 1u);
            EXPECT_EQ(cap.count('K'), 3u);
            auto rollbacks = cap.all<RollbackPreparedMsg>();
            ASSERT_EQ(rollbacks.size(), 1u);
            EXPECT_EQ(rollbacks[0]->gid, "fx_gid_rollback");
            std::set<std::string> gids;
            for (const CommitPreparedMsg* k : cap.all<CommitPreparedMsg>())
                gids.insert(k->gid);
            EXPECT_EQ(gids,
                      (std::set<std::string>{"fx_gid_commit", "fx_gid_stream", "fx_gid_late"}));
        }
        const uint32_t bulk = cap.relid("bulk");
        ASSERT_EQ(cap.batches.size(), 4u);
        EXPECT_EQ(inserted(*cap.batches[0], bulk), (std::vector<std::string>{"10000"}));
        EXPECT_EQ(inserted(*cap.batches[1], bulk), range(11000, 11899));
        EXPECT_EQ(inserted(*cap.batches[2], bulk), (std::vector<std::string>{"10003"}));
        EXPECT_EQ(inserted(*cap.batches[3], bulk), (std::vector<std::string>{"10002"}));
    }
}

TEST(GoldenFixtures, DdlResendsRelationsThatTheCacheClassifies) {
    for (int v = 1; v <= kMaxProto; ++v) {
        SCOPED_TRACE("proto_version " + std::to_string(v));
        Capture cap = load(v, "ddl");
        RelationCache cache;
        std::vector<RelationDiff> diffs;
        for (const RelationMsg* r : cap.all<RelationMsg>())
            diffs.push_back(cache.update(*r));
        ASSERT_EQ(diffs.size(), 4u);
        EXPECT_EQ(diffs[0].kind, SchemaChange::None);
        EXPECT_EQ(diffs[1].kind, SchemaChange::Compatible);
        EXPECT_EQ(diffs[1].description,
                  R"(column "note" of "public"."accounts" was added (type 25))");
        EXPECT_EQ(diffs[2].kind, SchemaChange::Incompatible);
        EXPECT_EQ(diffs[2].description,
                  R"(column "note" of "public"."accounts" changed type from 25 to 1043)");
        EXPECT_EQ(diffs[3].kind, SchemaChange::Incompatible);
        EXPECT_EQ(diffs[3].description,
                  R"(column "owner" of "public"."accounts" was renamed to "holder")");
        EXPECT_EQ(cache.find(cap.relid("accounts"))->columns.at(1).name, "holder");
        EXPECT_EQ(cap.batches.size(), 4u);
    }
}

}  // namespace
}  // namespace pgshift
