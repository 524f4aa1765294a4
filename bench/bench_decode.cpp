// Decode rate of the pgoutput codec over a stream captured from a real
// PostgreSQL server (bench/capture_stream.sh -> bench/data/events_stream.hex):
// an events table with a ~200-byte jsonb payload, written by many small
// transactions (mostly single-row INSERTs, some UPDATEs and DELETEs).
//
// Every benchmark iteration decodes every message of one set once, in stream
// order: "mix" is the whole stream, the others only the messages of one kind
// (Begin, Commit, Insert, Update, Delete, Relation). Reported: items_per_second
// = messages/s and bytes_per_second = pgoutput payload bytes/s (the XLogData
// payloads, without the CopyData/XLogData framing).
//
//   decode/<set>       Message decode(bytes, ctx): a fresh Message per call,
//                      destroyed before the next one (its allocations are
//                      part of the cost, as in the decoder thread, where the
//                      applier frees them later).
//   decode_into/<set>  decode_into(bytes, ctx, out) into a reused Message, one
//                      per message type byte: no allocation once the
//                      capacities have grown.
//   decode_into_one/mix  decode_into() into a single Message for the whole
//                      stream: as the kind alternates (B I C B U C ...), the
//                      storage is dropped at every kind change.
//
// The stream file can be overridden with PGSHIFT_BENCH_STREAM=path.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decoder/pgoutput_codec.h"

namespace {

using namespace pgshift::pgoutput;

/// Messages back to back in one buffer, as they arrive from the socket.
struct MessageSet {
    std::string storage;
    std::vector<std::string_view> messages;  // views into storage
    size_t bytes = 0;

    explicit MessageSet(const std::vector<std::string>& payloads) {
        size_t total = 0;
        for (const std::string& p : payloads)
            total += p.size();
        storage.reserve(total);  // exact, so the views stay valid
        for (const std::string& p : payloads)
            storage += p;
        size_t off = 0;
        for (const std::string& p : payloads) {
            messages.emplace_back(storage.data() + off, p.size());
            off += p.size();
        }
        bytes = total;
    }
    MessageSet(const MessageSet&) = delete;
    MessageSet& operator=(const MessageSet&) = delete;
};

int hex_nibble(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    throw std::runtime_error(std::string("bad hex digit '") + c + "'");
}

/// Reads a capture: '#' comment lines, then one message per line as hex.
std::vector<std::string> load_stream(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read " + path +
                                 "; capture it first with bench/capture_stream.sh");
    }
    if (!in)
        throw std::runtime_error("cannot open " + path);
    std::vector<std::string> payloads;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#')
            continue;
        if (line.size() % 2 != 0)
            throw std::runtime_error("odd hex line length in " + path);
        std::string& p = payloads.emplace_back();
        p.reserve(line.size() / 2);
        for (size_t i = 0; i < line.size(); i += 2)
            p.push_back(static_cast<char>(hex_nibble(line[i]) << 4 | hex_nibble(line[i + 1])));
    }
    if (payloads.empty())
        throw std::runtime_error("no messages in " + path);
    return payloads;
}

const CodecContext kCtx{.proto_version = 3, .in_stream_block = false, .streaming_parallel = false};

/// The messages of one type, in stream order (type 0: all of them).
std::vector<std::string> of_type(const std::vector<std::string>& payloads, char type) {
    std::vector<std::string> out;
    for (const std::string& p : payloads) {
        if (type == 0 || p[0] == type)
            out.push_back(p);
    }
    return out;
}

void set_counters(benchmark::State& state, const MessageSet& set) {
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(set.messages.size()));
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(set.bytes));
    state.counters["msgs_per_iter"] = static_cast<double>(set.messages.size());
    state.counters["avg_msg_bytes"] =
        static_cast<double>(set.bytes) / static_cast<double>(set.messages.size());
}

void bm_decode(benchmark::State& state, const MessageSet* set) {
    for (auto _ : state) {
        for (std::string_view bytes : set->messages) {
            Message msg = decode(bytes, kCtx);
            benchmark::DoNotOptimize(msg);
        }
    }
    set_counters(state, *set);
}

void bm_decode_into(benchmark::State& state, const MessageSet* set) {
    // One reused Message per type byte: kinds alternate in a stream (B I C B
    // I C ...), and a Message only keeps its storage while its kind repeats.
    std::array<Message, 128> slots;
    for (auto _ : state) {
        for (std::string_view bytes : set->messages) {
            Message& msg = slots[static_cast<uint8_t>(bytes[0]) & 0x7f];
            decode_into(bytes, kCtx, msg);
            benchmark::DoNotOptimize(msg);
        }
    }
    set_counters(state, *set);
}

void bm_decode_into_one(benchmark::State& state, const MessageSet* set) {
    // A single reused Message: storage is lost whenever the kind changes.
    Message msg;
    for (auto _ : state) {
        for (std::string_view bytes : set->messages) {
            decode_into(bytes, kCtx, msg);
            benchmark::DoNotOptimize(msg);
        }
    }
    set_counters(state, *set);
}

/// Both entry points must agree on every message before anything is timed.
void verify(const MessageSet& all) {
    Message reused;
    for (std::string_view bytes : all.messages) {
        Message fresh = decode(bytes, kCtx);
        decode_into(bytes, kCtx, reused);
        if (!(fresh == reused))
            throw std::runtime_error("decode_into differs from decode");
        if (encode(fresh, kCtx) != bytes)
            throw std::runtime_error("encode(decode(x)) != x");
    }
}

}  // namespace

int main(int argc, char** argv) {
    const char* env = std::getenv("PGSHIFT_BENCH_STREAM");
    std::string path = env != nullptr ? env : PGSHIFT_BENCH_STREAM;
    std::vector<std::string> payloads;
    // Sets are registered by pointer, so they must not move.
    std::vector<std::pair<std::string, std::unique_ptr<MessageSet>>> sets;
    try {
        payloads = load_stream(path);
        for (auto [name, type] :
             {std::pair{"mix", '\0'}, std::pair{"insert", 'I'}, std::pair{"update", 'U'},
              std::pair{"delete", 'D'}, std::pair{"begin", 'B'}, std::pair{"commit", 'C'},
              std::pair{"relation", 'R'}}) {
            std::vector<std::string> subset = of_type(payloads, type);
            if (!subset.empty())
                sets.emplace_back(name, std::make_unique<MessageSet>(subset));
        }
        verify(*sets.front().second);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_decode: %s\n", e.what());
        return 1;
    }
    for (const auto& [name, set] : sets) {
        benchmark::RegisterBenchmark(("decode/" + name).c_str(), bm_decode, set.get());
        benchmark::RegisterBenchmark(("decode_into/" + name).c_str(), bm_decode_into, set.get());
    }
    benchmark::RegisterBenchmark("decode_into_one/mix", bm_decode_into_one,
                                 sets.front().second.get());
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::AddCustomContext("stream", path);
    benchmark::AddCustomContext("stream_messages",
                                std::to_string(sets.front().second->messages.size()));
    benchmark::AddCustomContext("stream_bytes", std::to_string(sets.front().second->bytes));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
