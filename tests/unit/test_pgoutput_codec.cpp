// pgoutput codec: hand-built byte vectors for every message kind (including
// the synthetic vectors of protocol.md A3), decode/encode round trips in every
// applicable protocol context, and malformed input.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "decoder/pgoutput_codec.h"

using namespace pgshift;
using namespace pgshift::pgoutput;

namespace {

std::string hex(std::string_view h) {
    std::string out;
    int hi = -1;
    for (char c : h) {
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else {
            continue;
        }
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<char>(hi * 16 + v));
            hi = -1;
        }
    }
    if (hi >= 0)
        throw std::logic_error("odd number of hex digits");
    return out;
}

std::string tohex(std::string_view s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out.push_back(d[c >> 4]);
        out.push_back(d[c & 15]);
    }
    return out;
}

CodecContext ctx(int v, bool in_block = false, bool parallel = false) {
    return CodecContext{v, in_block, parallel};
}

/// Every valid CodecContext.
std::vector<CodecContext> all_contexts() {
    std::vector<CodecContext> out;
    for (int v = 1; v <= 4; ++v) {
        for (bool in_block : {false, true}) {
            for (bool parallel : {false, true}) {
                if (in_block && v < 2)
                    continue;
                if (parallel && v < 4)
                    continue;
                out.push_back(ctx(v, in_block, parallel));
            }
        }
    }
    return out;
}

std::string ctx_str(const CodecContext& c) {
    return "v" + std::to_string(c.proto_version) + (c.in_stream_block ? " in-block" : "") +
           (c.streaming_parallel ? " parallel" : "");
}

testing::AssertionResult throws_protocol_error(std::string_view bytes, const CodecContext& c,
                                               size_t offset, std::string_view needle = {}) {
    try {
        Message m = decode(bytes, c);
        return testing::AssertionFailure()
               << "decoded '" << message_type(m) << "' from " << tohex(bytes);
    } catch (const ProtocolError& e) {
        std::string what = e.what();
        if (e.offset() != offset) {
            return testing::AssertionFailure()
                   << "offset " << e.offset() << " != " << offset << ": " << what;
        }
        if (what.find("offset " + std::to_string(offset)) == std::string::npos) {
            return testing::AssertionFailure() << "what() lacks the offset: " << what;
        }
        if (!needle.empty() && what.find(needle) == std::string::npos) {
            return testing::AssertionFailure() << "'" << needle << "' not in: " << what;
        }
        return testing::AssertionSuccess();
    }
}

ColumnValue txt(std::string s) {
    return ColumnValue{ColumnKind::Text, std::move(s)};
}
ColumnValue bin(std::string s) {
    return ColumnValue{ColumnKind::Binary, std::move(s)};
}
ColumnValue null_col() {
    return ColumnValue{ColumnKind::Null, {}};
}
ColumnValue unchanged() {
    return ColumnValue{ColumnKind::Unchanged, {}};
}

constexpr Lsn kLsnA{0x16B374D848ull};
constexpr Lsn kLsnB{0x16B374D878ull};

/// Messages of every kind and interesting shape, without stream xids and
/// without Stream Abort parallel fields; adapt() adds those per context.
std::vector<Message> base_samples() {
    std::vector<Message> s;
    s.push_back(BeginMsg{kLsnA, 774'000'000'000'000, 750});
    s.push_back(CommitMsg{0, kLsnA, kLsnB, 774'000'000'000'001});
    s.push_back(CommitMsg{0, Lsn(), Lsn(), -1});
    s.push_back(OriginMsg{Lsn(0x1000), "node1"});
    s.push_back(OriginMsg{Lsn(), ""});
    s.push_back(RelationMsg{std::nullopt,
                            16384,
                            "public",
                            "t",
                            'd',
                            {{1, "id", 23, -1}, {0, "v", 25, -1}, {0, "n", 1700, 655366}}});
    s.push_back(RelationMsg{std::nullopt, 1, "", "pg_cat_rel", 'f', {}});
    s.push_back(RelationMsg{std::nullopt, 0xffffffffu, "s", "r", 'n', {{0, "x", 16385, -1}}});
    s.push_back(RelationMsg{std::nullopt, 2, "s", "r", 'i', {{1, "k", 23, 0}}});
    s.push_back(TypeMsg{std::nullopt, 16385, "public", "mood"});
    s.push_back(TypeMsg{std::nullopt, 16386, "", "int4"});
    s.push_back(InsertMsg{std::nullopt, 16384, {txt("1"), txt("abc"), null_col()}});
    s.push_back(InsertMsg{std::nullopt, 16384, {}});
    s.push_back(InsertMsg{std::nullopt, 7, {bin(std::string("\0\0\0\1", 4)), bin(""), txt("")}});
    s.push_back(UpdateMsg{std::nullopt, 16384, OldTupleKind::None, {}, {txt("1"), unchanged()}});
    s.push_back(UpdateMsg{
        std::nullopt, 16384, OldTupleKind::Key, {txt("1"), null_col()}, {txt("2"), txt("x")}});
    s.push_back(UpdateMsg{std::nullopt,
                          16384,
                          OldTupleKind::Full,
                          {txt("1"), txt(std::string(300, 'z'))},
                          {txt("1"), unchanged()}});
    s.push_back(DeleteMsg{std::nullopt, 16384, OldTupleKind::Key, {txt("1"), null_col()}});
    s.push_back(DeleteMsg{std::nullopt, 16384, OldTupleKind::Full, {bin("\xff"), txt("v")}});
    s.push_back(TruncateMsg{std::nullopt, 3, {16384}});
    s.push_back(TruncateMsg{std::nullopt, 0, {1, 2, 3}});
    s.push_back(TruncateMsg{std::nullopt, 1, {}});
    s.push_back(LogicalMsg{std::nullopt, 1, Lsn(0x1000000), "pgshift", "nonce"});
    s.push_back(LogicalMsg{std::nullopt, 0, Lsn(1), "", std::string("\0bin\xff", 5)});
    s.push_back(StreamStartMsg{750, 1});
    s.push_back(StreamStartMsg{751, 0});
    s.push_back(StreamStopMsg{});
    s.push_back(StreamCommitMsg{750, 0, kLsnA, kLsnB, 5});
    s.push_back(StreamAbortMsg{750, 750, std::nullopt, std::nullopt});
    s.push_back(StreamAbortMsg{750, 751, std::nullopt, std::nullopt});
    s.push_back(BeginPrepareMsg{kLsnA, kLsnB, 6, 750, "gid-1"});
    s.push_back(PrepareMsg{0, kLsnA, kLsnB, 7, 750, "gid-1"});
    s.push_back(CommitPreparedMsg{0, kLsnA, kLsnB, 8, 750, "gid-1"});
    s.push_back(RollbackPreparedMsg{0, kLsnA, kLsnB, 9, 10, 750, "gid-1"});
    s.push_back(StreamPrepareMsg{0, kLsnA, kLsnB, 11, 750, ""});
    return s;
}

bool carries_stream_xid(char t) {
    return t == 'R' || t == 'Y' || t == 'I' || t == 'U' || t == 'D' || t == 'T' || t == 'M';
}

/// The message as a server would send it in context c.
Message adapt(Message m, const CodecContext& c) {
    std::visit(
        [&](auto& msg) {
            using T = std::decay_t<decltype(msg)>;
            if constexpr (requires { msg.xid = std::optional<uint32_t>(); }) {
                if (c.in_stream_block)
                    msg.xid = 751;
            }
            if constexpr (std::is_same_v<T, StreamAbortMsg>) {
                if (c.streaming_parallel) {
                    msg.abort_lsn = kLsnB;
                    msg.abort_time = 12;
                }
            }
        },
        m);
    return m;
}

/// Whether a server may send a message of type t in context c.
bool allowed(char t, const CodecContext& c) {
    std::string_view streaming = "SEcA", two_phase = "bPKrp";
    if (streaming.find(t) != std::string_view::npos && c.proto_version < 2)
        return false;
    if (two_phase.find(t) != std::string_view::npos && c.proto_version < 3)
        return false;
    if (c.in_stream_block)
        return carries_stream_xid(t) || t == 'O' || t == 'E';
    return t != 'E';
}

struct Vector {
    const char* name;
    CodecContext ctx;
    std::string bytes;
    Message expected;
};

/// Hand-built byte vectors with their expected decoding. The first five are
/// the synthetic vectors of protocol.md A3.
std::vector<Vector> vectors() {
    std::vector<Vector> v;
    v.push_back(
        {"doc Relation", ctx(1),
         hex("52 00004000 7075626c696300 7400 64 0002"
             "   01 696400 00000017 ffffffff"
             "   00 7600   00000019 ffffffff"),
         RelationMsg{
             std::nullopt, 16384, "public", "t", 'd', {{1, "id", 23, -1}, {0, "v", 25, -1}}}});
    v.push_back({"doc Insert", ctx(1), hex("49 00004000 4e 0002 74 00000001 31 74 00000003 616263"),
                 InsertMsg{std::nullopt, 16384, {txt("1"), txt("abc")}}});
    v.push_back({"doc Insert in stream block", ctx(2, true),
                 hex("49 000002ee 00004000 4e 0002 74 00000001 31 74 00000003 616263"),
                 InsertMsg{750, 16384, {txt("1"), txt("abc")}}});
    v.push_back({"doc Delete K", ctx(1), hex("44 00004000 4b 0002 74 00000001 31 6e"),
                 DeleteMsg{std::nullopt, 16384, OldTupleKind::Key, {txt("1"), null_col()}}});
    v.push_back({"doc Truncate", ctx(1), hex("54 00000001 03 00004000"),
                 TruncateMsg{std::nullopt, 3, {16384}}});
    v.push_back({"Begin", ctx(1), hex("42 00000016B374D848 0000000000000001 000002ee"),
                 BeginMsg{kLsnA, 1, 750}});
    v.push_back({"Commit", ctx(1), hex("43 00 00000016B374D848 00000016B374D878 0000000000000002"),
                 CommitMsg{0, kLsnA, kLsnB, 2}});
    v.push_back({"Origin", ctx(1), hex("4f 0000000000001000 6e6f64653100"),
                 OriginMsg{Lsn(0x1000), "node1"}});
    v.push_back({"Type", ctx(1), hex("59 00004001 7075626c696300 6d6f6f6400"),
                 TypeMsg{std::nullopt, 16385, "public", "mood"}});
    v.push_back({"Relation pg_catalog, RI full, no columns", ctx(1),
                 hex("52 00000001 00 7200 66 0000"),
                 RelationMsg{std::nullopt, 1, "", "r", 'f', {}}});
    v.push_back({"Update without old tuple, 'u' column", ctx(1),
                 hex("55 00004000 4e 0002 74 00000001 31 75"),
                 UpdateMsg{std::nullopt, 16384, OldTupleKind::None, {}, {txt("1"), unchanged()}}});
    v.push_back({"Update with K old tuple", ctx(1),
                 hex("55 00004000 4b 0002 74 00000001 31 6e 4e 0002 74 00000001 32 74 00000001 78"),
                 UpdateMsg{std::nullopt,
                           16384,
                           OldTupleKind::Key,
                           {txt("1"), null_col()},
                           {txt("2"), txt("x")}}});
    v.push_back({"Update with O old tuple", ctx(1),
                 hex("55 00004000 4f 0002 74 00000001 31 74 00000003 616263"
                     "   4e 0002 74 00000001 31 75"),
                 UpdateMsg{std::nullopt,
                           16384,
                           OldTupleKind::Full,
                           {txt("1"), txt("abc")},
                           {txt("1"), unchanged()}}});
    v.push_back({"Update in stream block", ctx(4, true), hex("55 000002ef 00004000 4e 0001 6e"),
                 UpdateMsg{751, 16384, OldTupleKind::None, {}, {null_col()}}});
    v.push_back({"Delete O", ctx(1), hex("44 00004000 4f 0002 74 00000001 31 6e"),
                 DeleteMsg{std::nullopt, 16384, OldTupleKind::Full, {txt("1"), null_col()}}});
    v.push_back({"Insert binary column", ctx(1),
                 hex("49 00000007 4e 0002 62 00000004 00000001 62 00000000"),
                 InsertMsg{std::nullopt, 7, {bin(std::string("\0\0\0\1", 4)), bin("")}}});
    v.push_back({"Truncate in stream block", ctx(3, true), hex("54 000002ee 00000000 00"),
                 TruncateMsg{750, 0, {}}});
    v.push_back({"Message transactional", ctx(1),
                 hex("4d 01 0000000001000000 7067736869667400 00000005 6e6f6e6365"),
                 LogicalMsg{std::nullopt, 1, Lsn(0x1000000), "pgshift", "nonce"}});
    v.push_back({"Message in stream block", ctx(2, true),
                 hex("4d 000002ee 01 0000000000000001 00 00000000"),
                 LogicalMsg{750, 1, Lsn(1), "", ""}});
    v.push_back({"Relation in stream block", ctx(2, true),
                 hex("52 000002ee 00000005 6e00 7200 69 0001 01 6b00 00000017 00000004"),
                 RelationMsg{750, 5, "n", "r", 'i', {{1, "k", 23, 4}}}});
    v.push_back({"Type in stream block", ctx(2, true), hex("59 000002ee 00000010 00 7400"),
                 TypeMsg{750, 16, "", "t"}});
    v.push_back({"Stream Start", ctx(2), hex("53 000002ee 01"), StreamStartMsg{750, 1}});
    v.push_back({"Stream Stop", ctx(2, true), hex("45"), StreamStopMsg{}});
    v.push_back({"Stream Commit", ctx(2),
                 hex("63 000002ee 00 00000016B374D848 00000016B374D878 0000000000000003"),
                 StreamCommitMsg{750, 0, kLsnA, kLsnB, 3}});
    v.push_back({"Stream Abort v2", ctx(2), hex("41 000002ee 000002ef"),
                 StreamAbortMsg{750, 751, std::nullopt, std::nullopt}});
    v.push_back({"Stream Abort v4 streaming on", ctx(4), hex("41 000002ee 000002ee"),
                 StreamAbortMsg{750, 750, std::nullopt, std::nullopt}});
    v.push_back({"Stream Abort v4 streaming parallel", ctx(4, false, true),
                 hex("41 000002ee 000002ef 00000016B374D878 0000000000000004"),
                 StreamAbortMsg{750, 751, kLsnB, 4}});
    v.push_back({"Begin Prepare", ctx(3),
                 hex("62 00000016B374D848 00000016B374D878 0000000000000005 000002ee 67696400"),
                 BeginPrepareMsg{kLsnA, kLsnB, 5, 750, "gid"}});
    v.push_back({"Prepare", ctx(3),
                 hex("50 00 00000016B374D848 00000016B374D878 0000000000000006 000002ee 67696400"),
                 PrepareMsg{0, kLsnA, kLsnB, 6, 750, "gid"}});
    v.push_back({"Commit Prepared", ctx(3),
                 hex("4b 00 00000016B374D848 00000016B374D878 0000000000000007 000002ee 67696400"),
                 CommitPreparedMsg{0, kLsnA, kLsnB, 7, 750, "gid"}});
    v.push_back({"Rollback Prepared", ctx(4),
                 hex("72 00 00000016B374D848 00000016B374D878 0000000000000008 0000000000000009"
                     "   000002ee 67696400"),
                 RollbackPreparedMsg{0, kLsnA, kLsnB, 8, 9, 750, "gid"}});
    v.push_back({"Stream Prepare", ctx(3),
                 hex("70 00 00000016B374D848 00000016B374D878 000000000000000a 000002ee 00"),
                 StreamPrepareMsg{0, kLsnA, kLsnB, 10, 750, ""}});
    return v;
}

}  // namespace

// ---------------------------------------------------------------------------
// Hand-built vectors

TEST(PgoutputCodecTest, DecodesHandBuiltVectors) {
    for (const Vector& v : vectors()) {
        SCOPED_TRACE(v.name);
        Message m = decode(v.bytes, v.ctx);
        EXPECT_EQ(m, v.expected);
        EXPECT_EQ(tohex(encode(v.expected, v.ctx)), tohex(v.bytes));
    }
}

TEST(PgoutputCodecTest, HandBuiltVectorsCoverEveryMessageKind) {
    std::string seen;
    for (const Vector& v : vectors())
        seen.push_back(message_type(v.expected));
    for (char t : std::string_view("BCORYIUDTMSEcAbPKrp")) {
        EXPECT_NE(seen.find(t), std::string::npos) << t;
    }
}

TEST(PgoutputCodecTest, MessageTypeAndNameForEveryAlternative) {
    const std::string_view expected = "BCORYIUDTMSEcAbPKrp";
    ASSERT_EQ(expected.size(), std::variant_size_v<Message>);
    std::vector<bool> covered(std::variant_size_v<Message>);
    for (const Message& m : base_samples()) {
        EXPECT_EQ(message_type(m), expected[m.index()]);
        covered[m.index()] = true;
        // The type byte is the first byte of the encoding.
        CodecContext c = ctx(4);
        EXPECT_EQ(encode(m, c)[0], message_type(m));
    }
    for (size_t i = 0; i < covered.size(); ++i)
        EXPECT_TRUE(covered[i]) << i;
    EXPECT_STREQ(message_type_name('B'), "Begin");
    EXPECT_STREQ(message_type_name('A'), "Stream Abort");
    EXPECT_STREQ(message_type_name('K'), "Commit Prepared");
    EXPECT_EQ(message_type_name('x'), nullptr);
    EXPECT_EQ(message_type_name('\0'), nullptr);
}

// ---------------------------------------------------------------------------
// Round trips, truncation and trailing bytes in every context

TEST(PgoutputCodecTest, RoundTripsEveryMessageInEveryApplicableContext) {
    int round_trips = 0, rejected = 0;
    for (const CodecContext& c : all_contexts()) {
        for (const Message& base : base_samples()) {
            Message m = adapt(base, c);
            char t = message_type(m);
            SCOPED_TRACE(ctx_str(c) + " type " + t);
            std::string bytes = encode(m, c);
            if (!allowed(t, c)) {
                EXPECT_TRUE(throws_protocol_error(bytes, c, 0));
                ++rejected;
                continue;
            }
            Message back = decode(bytes, c);
            EXPECT_EQ(back, m);
            EXPECT_EQ(encode(back, c), bytes);
            ++round_trips;
        }
    }
    EXPECT_GT(round_trips, 200);
    EXPECT_GT(rejected, 50);
}

TEST(PgoutputCodecTest, EveryTruncationThrows) {
    for (const CodecContext& c : all_contexts()) {
        for (const Message& base : base_samples()) {
            Message m = adapt(base, c);
            if (!allowed(message_type(m), c))
                continue;
            std::string bytes = encode(m, c);
            SCOPED_TRACE(ctx_str(c) + " " + tohex(bytes));
            for (size_t len = 0; len < bytes.size(); ++len) {
                // Copy so ASan catches any read past the truncated end.
                std::string prefix = bytes.substr(0, len);
                try {
                    decode(prefix, c);
                    ADD_FAILURE() << "prefix of length " << len << " decoded";
                } catch (const ProtocolError& e) {
                    EXPECT_LE(e.offset(), len) << e.what();
                    if (len > 0) {
                        EXPECT_EQ(std::string(e.what()).find("unknown pgoutput message type"),
                                  std::string::npos);
                    }
                }
            }
        }
    }
}

TEST(PgoutputCodecTest, TrailingBytesThrowAtEndOfMessage) {
    for (const CodecContext& c : all_contexts()) {
        for (const Message& base : base_samples()) {
            Message m = adapt(base, c);
            if (!allowed(message_type(m), c))
                continue;
            std::string bytes = encode(m, c);
            for (std::string garbage : {std::string(1, '\0'), std::string("xyz")}) {
                EXPECT_TRUE(throws_protocol_error(bytes + garbage, c, bytes.size(), "trailing"))
                    << ctx_str(c) << " " << tohex(bytes);
            }
        }
    }
}

TEST(PgoutputCodecTest, RandomMutationsNeverCrashAndAcceptedInputRoundTrips) {
    std::mt19937 rng(12345);
    int accepted = 0;
    for (const CodecContext& c : all_contexts()) {
        for (const Message& base : base_samples()) {
            Message m = adapt(base, c);
            if (!allowed(message_type(m), c))
                continue;
            const std::string bytes = encode(m, c);
            for (int iter = 0; iter < 200; ++iter) {
                std::string mutated = bytes;
                int edits = 1 + static_cast<int>(rng() % 3);
                for (int e = 0; e < edits; ++e) {
                    size_t pos = rng() % mutated.size();
                    switch (rng() % 4) {
                        case 0:
                            mutated[pos] = static_cast<char>(rng());
                            break;
                        case 1:
                            mutated[pos] = static_cast<char>(mutated[pos] ^ (1 << (rng() % 8)));
                            break;
                        case 2:
                            mutated.erase(pos, 1 + rng() % 4);
                            break;
                        default:
                            mutated.insert(pos, 1, static_cast<char>(rng()));
                            break;
                    }
                    if (mutated.empty())
                        mutated.push_back('E');
                }
                try {
                    Message d = decode(mutated, c);
                    ++accepted;
                    ASSERT_EQ(encode(d, c), mutated) << ctx_str(c) << " " << tohex(mutated);
                } catch (const ProtocolError& e) {
                    EXPECT_LE(e.offset(), mutated.size());
                }
            }
        }
    }
    EXPECT_GT(accepted, 0);
}

// ---------------------------------------------------------------------------
// Stream blocks

TEST(PgoutputCodecTest, StreamBlockSessionWithXidPrefix) {
    // S(750, first) R(751) I(751) E  ...  A(750, 751) in v2.
    CodecContext c = ctx(2);
    auto start = std::get<StreamStartMsg>(decode(hex("53 000002ee 01"), c));
    EXPECT_EQ(start.xid, 750u);
    EXPECT_EQ(start.first_segment, 1);
    c.in_stream_block = true;
    auto rel = std::get<RelationMsg>(decode(
        hex("52 000002ef 00004000 7075626c696300 7400 64 0001 01 696400 00000017 ffffffff"), c));
    EXPECT_EQ(rel.xid, 751u);
    EXPECT_EQ(rel.relid, 16384u);
    auto ins = std::get<InsertMsg>(decode(hex("49 000002ef 00004000 4e 0001 74 00000001 31"), c));
    EXPECT_EQ(ins.xid, 751u);
    EXPECT_EQ(ins.new_tuple, TupleData{txt("1")});
    EXPECT_TRUE(std::holds_alternative<StreamStopMsg>(decode(hex("45"), c)));
    c.in_stream_block = false;
    auto abort = std::get<StreamAbortMsg>(decode(hex("41 000002ee 000002ef"), c));
    EXPECT_EQ(abort.xid, 750u);
    EXPECT_EQ(abort.subxid, 751u);
    EXPECT_FALSE(abort.abort_lsn.has_value());
}

TEST(PgoutputCodecTest, SameBytesDifferOnlyByStreamContext) {
    // Outside a block the doc's streamed Insert reads 0x2ee as the relid and
    // then finds 0x00 where 'N' must be.
    std::string streamed = hex("49 000002ee 00004000 4e 0002 74 00000001 31 74 00000003 616263");
    EXPECT_TRUE(throws_protocol_error(streamed, ctx(2), 5, "expected new tuple marker 'N'"));
    // Inside a block an unprefixed Insert is misread the other way round.
    std::string plain = hex("49 00004000 4e 0002 74 00000001 31 74 00000003 616263");
    EXPECT_TRUE(throws_protocol_error(plain, ctx(2, true), 9, "marker"));
}

TEST(PgoutputCodecTest, StreamXidMustBeValid) {
    EXPECT_TRUE(throws_protocol_error(hex("49 00000000 00004000 4e 0000"), ctx(2, true), 1,
                                      "invalid transaction ID"));
    EXPECT_TRUE(throws_protocol_error(hex("53 00000000 01"), ctx(2), 1, "invalid transaction ID"));
    EXPECT_TRUE(throws_protocol_error(hex("53 000002ee 02"), ctx(2), 5, "first_segment"));
}

TEST(PgoutputCodecTest, StreamPlacementRules) {
    EXPECT_TRUE(throws_protocol_error(hex("45"), ctx(2), 0, "Stream Stop without Stream Start"));
    EXPECT_TRUE(throws_protocol_error(hex("53 000002ee 00"), ctx(2, true), 0, "duplicate"));
    EXPECT_TRUE(throws_protocol_error(encode(BeginMsg{kLsnA, 0, 1}, ctx(2)), ctx(2, true), 0,
                                      "inside a stream block"));
    EXPECT_TRUE(throws_protocol_error(encode(CommitMsg{0, kLsnA, kLsnB, 0}, ctx(2)), ctx(2, true),
                                      0, "Commit"));
    EXPECT_TRUE(
        throws_protocol_error(hex("41 000002ee 000002ee"), ctx(2, true), 0, "Stream Abort"));
    // Origin may follow the first Stream Start inside the block.
    EXPECT_NO_THROW(decode(hex("4f 0000000000000000 6e00"), ctx(2, true)));
}

TEST(PgoutputCodecTest, StreamAbortParallelFieldsFollowContextNotVersion) {
    std::string short_form = hex("41 000002ee 000002ef");
    std::string long_form = short_form + hex("00000016B374D878 0000000000000004");
    // v4 with streaming = on: 8-byte body.
    auto a = std::get<StreamAbortMsg>(decode(short_form, ctx(4)));
    EXPECT_FALSE(a.abort_lsn.has_value());
    EXPECT_FALSE(a.abort_time.has_value());
    EXPECT_TRUE(throws_protocol_error(long_form, ctx(4), 9, "trailing"));
    // v4 with streaming = parallel: 24-byte body.
    auto p = std::get<StreamAbortMsg>(decode(long_form, ctx(4, false, true)));
    EXPECT_EQ(p.abort_lsn, kLsnB);
    EXPECT_EQ(p.abort_time, 4);
    EXPECT_TRUE(throws_protocol_error(short_form, ctx(4, false, true), 9, "abort_lsn"));
    // Encoding must match the context.
    EXPECT_THROW(encode(p, ctx(4)), std::invalid_argument);
    EXPECT_THROW(encode(a, ctx(4, false, true)), std::invalid_argument);
    StreamAbortMsg half{750, 751, kLsnB, std::nullopt};
    EXPECT_THROW(encode(half, ctx(4, false, true)), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Tuple columns and old tuples

TEST(PgoutputCodecTest, KeyOldTupleHasNullPlaceholders) {
    auto rel = std::get<RelationMsg>(decode(vectors()[0].bytes, ctx(1)));
    auto del = std::get<DeleteMsg>(decode(hex("44 00004000 4b 0002 74 00000001 31 6e"), ctx(1)));
    ASSERT_EQ(del.old_tuple.size(), rel.columns.size());
    EXPECT_EQ(del.old_kind, OldTupleKind::Key);
    EXPECT_TRUE(rel.columns[0].is_key());
    EXPECT_EQ(del.old_tuple[0], txt("1"));
    EXPECT_FALSE(rel.columns[1].is_key());
    EXPECT_EQ(del.old_tuple[1].kind, ColumnKind::Null);  // placeholder, not a value
}

TEST(PgoutputCodecTest, UnchangedAndBinaryColumns) {
    auto upd = std::get<UpdateMsg>(
        decode(hex("55 00004000 4e 0003 75 62 00000005 00ff00ff00 74 00000000"), ctx(1)));
    ASSERT_EQ(upd.new_tuple.size(), 3u);
    EXPECT_EQ(upd.new_tuple[0].kind, ColumnKind::Unchanged);
    EXPECT_TRUE(upd.new_tuple[0].data.empty());
    EXPECT_EQ(upd.new_tuple[1].kind, ColumnKind::Binary);
    EXPECT_EQ(upd.new_tuple[1].data, std::string("\0\xff\0\xff\0", 5));
    EXPECT_EQ(upd.new_tuple[2], txt(""));
}

TEST(PgoutputCodecTest, UnknownTupleKindThrows) {
    // I relid N ncols=2 't' len=1 '1' 'x'  -> kind byte at offset 14
    EXPECT_TRUE(throws_protocol_error(hex("49 00004000 4e 0002 74 00000001 31 78"), ctx(1), 14,
                                      "unknown tuple column kind 'x'"));
    EXPECT_TRUE(throws_protocol_error(hex("49 00004000 4e 0001 00"), ctx(1), 8, "column 0"));
}

TEST(PgoutputCodecTest, BadTupleMarkersThrow) {
    EXPECT_TRUE(throws_protocol_error(hex("49 00004000 4b 0000"), ctx(1), 5,
                                      "expected new tuple marker 'N', got 'K'"));
    EXPECT_TRUE(throws_protocol_error(hex("55 00004000 58 0000"), ctx(1), 5,
                                      "expected tuple marker 'K', 'O' or 'N', got 'X'"));
    // Old tuple must be followed by 'N', not another old tuple.
    EXPECT_TRUE(throws_protocol_error(hex("55 00004000 4b 0001 6e 4f 0001 6e"), ctx(1), 9,
                                      "expected new tuple marker 'N' after old tuple"));
    EXPECT_TRUE(throws_protocol_error(hex("44 00004000 4e 0001 6e"), ctx(1), 5,
                                      "expected old tuple marker 'K' or 'O', got 'N'"));
    EXPECT_TRUE(throws_protocol_error(hex("44 00004000 01 0001 6e"), ctx(1), 5, "'\\x01'"));
}

TEST(PgoutputCodecTest, NegativeAndOversizedLengthsThrow) {
    // Negative column count.
    EXPECT_TRUE(
        throws_protocol_error(hex("49 00004000 4e ffff"), ctx(1), 6, "negative column count"));
    // Huge column count with no data: truncated, no huge allocation.
    EXPECT_TRUE(throws_protocol_error(hex("49 00004000 4e 7fff 6e"), ctx(1), 9, "column 1"));
    // Negative value length (length field at offset 9).
    EXPECT_TRUE(throws_protocol_error(hex("49 00004000 4e 0001 74 ffffffff"), ctx(1), 9,
                                      "negative value length"));
    EXPECT_TRUE(throws_protocol_error(hex("49 00004000 4e 0001 62 80000000 00"), ctx(1), 9,
                                      "negative value length"));
    // Value length beyond the message.
    EXPECT_TRUE(throws_protocol_error(hex("49 00004000 4e 0001 74 7fffffff 41"), ctx(1), 13,
                                      "truncated value"));
    // Relation with negative column count (natts at offset 9).
    EXPECT_TRUE(throws_protocol_error(hex("52 00000001 00 7200 64 8000"), ctx(1), 9,
                                      "negative column count"));
    // Relation column count larger than the data.
    EXPECT_TRUE(
        throws_protocol_error(hex("52 00000001 00 7200 64 7fff"), ctx(1), 11, "column flags"));
    // Truncate with negative / oversized relation count.
    EXPECT_TRUE(throws_protocol_error(hex("54 ffffffff 00"), ctx(1), 1, "negative relation count"));
    EXPECT_TRUE(throws_protocol_error(hex("54 7fffffff 00 00000001"), ctx(1), 10, "relid"));
    // Message with negative / oversized content length.
    EXPECT_TRUE(throws_protocol_error(hex("4d 00 0000000000000001 00 ffffffff"), ctx(1), 11,
                                      "negative content length"));
    EXPECT_TRUE(
        throws_protocol_error(hex("4d 00 0000000000000001 00 7fffffff 00"), ctx(1), 15, "content"));
}

// ---------------------------------------------------------------------------
// Field validation

TEST(PgoutputCodecTest, FlagsMustBeZero) {
    std::string lsns = "00000016B374D848 00000016B374D878";
    EXPECT_TRUE(throws_protocol_error(hex("43 01" + lsns + "0000000000000000"), ctx(1), 1,
                                      "pgoutput Commit: unrecognized flags 1"));
    EXPECT_TRUE(throws_protocol_error(hex("63 000002ee 80" + lsns + "0000000000000000"), ctx(2), 5,
                                      "Stream Commit: unrecognized flags 128"));
    for (std::string t : {"50", "4b", "70"}) {
        EXPECT_TRUE(throws_protocol_error(hex(t + "02" + lsns + "0000000000000000 000002ee 00"),
                                          ctx(3), 1, "unrecognized flags 2"))
            << t;
    }
    EXPECT_TRUE(
        throws_protocol_error(hex("72 04" + lsns + "0000000000000000 0000000000000000 000002ee 00"),
                              ctx(3), 1, "Rollback Prepared: unrecognized flags 4"));
}

TEST(PgoutputCodecTest, UnusedFlagBitsRejected) {
    EXPECT_TRUE(throws_protocol_error(hex("54 00000001 04 00004000"), ctx(1), 5, "truncate flags"));
    EXPECT_TRUE(throws_protocol_error(hex("4d 02 0000000000000001 00 00000000"), ctx(1), 1,
                                      "message flags"));
    EXPECT_TRUE(throws_protocol_error(hex("52 00000001 00 7200 64 0001 02 6100 00000017 ffffffff"),
                                      ctx(1), 11, "column flags"));
    EXPECT_TRUE(throws_protocol_error(hex("52 00000001 00 7200 78 0000"), ctx(1), 8,
                                      "unknown replica identity 'x'"));
}

TEST(PgoutputCodecTest, RequiredLsnsAndXids) {
    std::string z = "0000000000000000", a = "00000016B374D848";
    EXPECT_TRUE(throws_protocol_error(hex("42" + z + z + "00000001"), ctx(1), 1,
                                      "Begin: final_lsn is not set"));
    EXPECT_TRUE(
        throws_protocol_error(hex("62" + z + a + z + "00000001 00"), ctx(3), 1, "prepare_lsn"));
    EXPECT_TRUE(throws_protocol_error(hex("62" + a + z + z + "00000001 00"), ctx(3), 9, "end_lsn"));
    EXPECT_TRUE(
        throws_protocol_error(hex("50 00" + a + z + z + "00000001 00"), ctx(3), 10, "end_lsn"));
    EXPECT_TRUE(throws_protocol_error(hex("50 00" + a + a + z + "00000000 00"), ctx(3), 26,
                                      "invalid two-phase transaction ID"));
    EXPECT_TRUE(throws_protocol_error(hex("70 00" + a + a + z + "00000000 00"), ctx(3), 26,
                                      "Stream Prepare: invalid two-phase"));
    EXPECT_TRUE(
        throws_protocol_error(hex("4b 00" + z + a + z + "00000001 00"), ctx(3), 2, "commit_lsn"));
    EXPECT_TRUE(throws_protocol_error(hex("72 00" + a + z + z + z + "00000001 00"), ctx(3), 10,
                                      "rollback_end_lsn"));
    // Commit and Stream Commit LSNs are not checked by proto.c either.
    EXPECT_NO_THROW(decode(hex("43 00" + z + z + z), ctx(1)));
}

TEST(PgoutputCodecTest, MissingStringTerminatorThrows) {
    EXPECT_TRUE(throws_protocol_error(hex("4f 0000000000001000 6e6f6465"), ctx(1), 9,
                                      "NUL terminator for string origin name"));
    EXPECT_TRUE(throws_protocol_error(hex("59 00000001 00 74"), ctx(1), 6, "typname"));
}

TEST(PgoutputCodecTest, VersionGating) {
    EXPECT_TRUE(throws_protocol_error(hex("53 000002ee 01"), ctx(1), 0,
                                      "requires protocol version 2 or later, negotiated 1"));
    EXPECT_TRUE(throws_protocol_error(hex("41 000002ee 000002ee"), ctx(1), 0, "Stream Abort"));
    EXPECT_TRUE(throws_protocol_error(hex("63 000002ee 00" + std::string(48, '1')), ctx(1), 0,
                                      "version 2"));
    std::string prep = encode(PrepareMsg{0, kLsnA, kLsnB, 0, 1, "g"}, ctx(3));
    EXPECT_TRUE(throws_protocol_error(prep, ctx(2), 0,
                                      "Prepare: message requires protocol "
                                      "version 3"));
    EXPECT_NO_THROW(decode(prep, ctx(3)));
    EXPECT_NO_THROW(decode(prep, ctx(4)));
}

TEST(PgoutputCodecTest, UnknownMessageTypes) {
    EXPECT_TRUE(throws_protocol_error("x", ctx(4), 0, "unknown pgoutput message type 'x'"));
    EXPECT_TRUE(
        throws_protocol_error(hex("00"), ctx(4), 0, "unknown pgoutput message type '\\x00'"));
    EXPECT_TRUE(throws_protocol_error("", ctx(1), 0, "message type"));
    const std::string_view known = "BCORYIUDTMSEcAbPKrp";
    int unknown = 0;
    for (int t = 0; t < 256; ++t) {
        if (known.find(static_cast<char>(t)) != std::string_view::npos)
            continue;
        std::string msg(40, '\0');
        msg[0] = static_cast<char>(t);
        for (const CodecContext& c : all_contexts()) {
            EXPECT_TRUE(throws_protocol_error(msg, c, 0, "unknown pgoutput message type")) << t;
        }
        ++unknown;
    }
    EXPECT_EQ(unknown, 256 - 19);
}

TEST(PgoutputCodecTest, InvalidContextIsRejected) {
    std::string b = hex("45");
    EXPECT_THROW(decode(b, ctx(0)), std::invalid_argument);
    EXPECT_THROW(decode(b, ctx(5)), std::invalid_argument);
    EXPECT_THROW(decode(b, ctx(1, true)), std::invalid_argument);
    EXPECT_THROW(decode(b, ctx(3, false, true)), std::invalid_argument);
    EXPECT_THROW(encode(StreamStopMsg{}, ctx(0)), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Encoder consistency checks

TEST(PgoutputCodecTest, EncodeRejectsUnrepresentableMessages) {
    InsertMsg ins{std::nullopt, 1, {txt("a")}};
    EXPECT_THROW(encode(ins, ctx(2, true)), std::invalid_argument);  // xid required
    ins.xid = 5;
    EXPECT_THROW(encode(ins, ctx(2)), std::invalid_argument);  // xid must be absent
    EXPECT_NO_THROW(encode(ins, ctx(2, true)));

    EXPECT_THROW(encode(InsertMsg{std::nullopt, 1, {ColumnValue{ColumnKind::Null, "x"}}}, ctx(1)),
                 std::invalid_argument);
    EXPECT_THROW(
        encode(InsertMsg{std::nullopt, 1, {ColumnValue{static_cast<ColumnKind>('z'), ""}}}, ctx(1)),
        std::invalid_argument);
    EXPECT_THROW(encode(UpdateMsg{std::nullopt, 1, OldTupleKind::None, {txt("a")}, {}}, ctx(1)),
                 std::invalid_argument);
    EXPECT_THROW(encode(DeleteMsg{std::nullopt, 1, OldTupleKind::None, {}}, ctx(1)),
                 std::invalid_argument);
    EXPECT_THROW(encode(OriginMsg{Lsn(1), std::string("a\0b", 3)}, ctx(1)), std::invalid_argument);
    EXPECT_THROW(encode(TypeMsg{std::nullopt, 1, std::string(1, '\0'), "t"}, ctx(1)),
                 std::invalid_argument);
}

TEST(PgoutputCodecTest, EncodeWritesInvalidValuesSoTestsCanCraftThem) {
    // Encoding does not validate flags; decoding does.
    std::string bad = encode(CommitMsg{7, kLsnA, kLsnB, 0}, ctx(1));
    EXPECT_EQ(static_cast<uint8_t>(bad[1]), 7);
    EXPECT_TRUE(throws_protocol_error(bad, ctx(1), 1, "flags"));
}
