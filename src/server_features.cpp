#include "server_features.h"

#include <stdexcept>

namespace pgshift {

ServerFeatures ServerFeatures::for_version(int v) {
    if (v < kMinServerVersion) {
        throw std::runtime_error("PostgreSQL server version " + std::to_string(v / 10000) +
                                 " is not supported; pgshift needs 14 or newer");
    }
    ServerFeatures f;
    f.server_version = v;
    // LOGICALREP_PROTO_MAX_VERSION_NUM: 2 in 14, 3 in 15, 4 in 16 and 17.
    f.proto_version = v >= 160000 ? 4 : v >= 150000 ? 3 : 2;
    f.new_slot_syntax = v >= 150000;
    f.origin_option = v >= 160000;
    f.streaming_parallel = v >= 160000;
    f.emit_message_flush = v >= 170000;
    return f;
}

std::string ServerFeatures::create_slot_command(const std::string& slot_ident) const {
    std::string cmd = "CREATE_REPLICATION_SLOT " + slot_ident + " LOGICAL pgoutput";
    return new_slot_syntax ? cmd + " (SNAPSHOT 'export')" : cmd + " EXPORT_SNAPSHOT";
}

std::vector<std::pair<std::string, std::string>> ServerFeatures::start_options(
    const std::string& publication_names_literal, bool skip_origins, bool streaming) const {
    std::vector<std::pair<std::string, std::string>> opts{
        {"proto_version", "'" + std::to_string(proto_version) + "'"},
        {"publication_names", publication_names_literal},
        {"messages", "'true'"},
    };
    if (streaming && proto_version >= 2)
        opts.emplace_back("streaming", "'on'");
    if (skip_origins && origin_option)
        opts.emplace_back("origin", "'none'");
    return opts;
}

}  // namespace pgshift
