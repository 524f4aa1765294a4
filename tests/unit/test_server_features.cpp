// ServerFeatures: what each server version supports and the exact command
// and option text sent to it.
#include "server_features.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pgshift {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

TEST(ServerFeatures, BelowFourteenIsRejected) {
    for (int v : {90624, 120016, 130012, 139999}) {
        try {
            ServerFeatures::for_version(v);
            ADD_FAILURE() << "version " << v << " accepted";
        } catch (const std::runtime_error& e) {
            std::string msg = e.what();
            EXPECT_NE(msg.find("version " + std::to_string(v / 10000) + " is not supported"),
                      std::string::npos)
                << msg;
            EXPECT_NE(msg.find("14 or newer"), std::string::npos) << msg;
        }
    }
    EXPECT_NO_THROW(ServerFeatures::for_version(kMinServerVersion));
}

TEST(ServerFeatures, PerVersionFlags) {
    struct Case {
        int version;
        int proto;
        bool new_slot, origin, parallel, flush;
    };
    for (const Case& c : std::vector<Case>{
             {140000, 2, false, false, false, false},
             {140011, 2, false, false, false, false},
             {150000, 3, true, false, false, false},
             {150020, 3, true, false, false, false},
             {160004, 4, true, true, true, false},
             {170002, 4, true, true, true, true},
             {180000, 4, true, true, true, true},
         }) {
        ServerFeatures f = ServerFeatures::for_version(c.version);
        SCOPED_TRACE(c.version);
        EXPECT_EQ(f.server_version, c.version);
        EXPECT_EQ(f.proto_version, c.proto);
        EXPECT_EQ(f.new_slot_syntax, c.new_slot);
        EXPECT_EQ(f.origin_option, c.origin);
        EXPECT_EQ(f.streaming_parallel, c.parallel);
        EXPECT_EQ(f.emit_message_flush, c.flush);
    }
}

TEST(ServerFeatures, SlotCommandSyntax) {
    EXPECT_EQ(ServerFeatures::for_version(140011).create_slot_command("\"pgshift_events\""),
              "CREATE_REPLICATION_SLOT \"pgshift_events\" LOGICAL pgoutput EXPORT_SNAPSHOT");
    EXPECT_EQ(ServerFeatures::for_version(150000).create_slot_command("\"pgshift_events\""),
              "CREATE_REPLICATION_SLOT \"pgshift_events\" LOGICAL pgoutput (SNAPSHOT 'export')");
    EXPECT_EQ(ServerFeatures::for_version(170002).create_slot_command("\"s\""),
              "CREATE_REPLICATION_SLOT \"s\" LOGICAL pgoutput (SNAPSHOT 'export')");
}

TEST(ServerFeatures, StartOptionsPerVersion) {
    const std::string pubs = "'\"pgshift_events\"'";
    // streaming 'on' by default: valid on 14-17 with proto_version >= 2 (a
    // boolean on 14/15, the off/on/parallel enum on 16+).
    EXPECT_EQ(ServerFeatures::for_version(140000).start_options(pubs, false),
              (Options{{"proto_version", "'2'"},
                       {"publication_names", pubs},
                       {"messages", "'true'"},
                       {"streaming", "'on'"}}));
    EXPECT_EQ(ServerFeatures::for_version(150020).start_options(pubs, false),
              (Options{{"proto_version", "'3'"},
                       {"publication_names", pubs},
                       {"messages", "'true'"},
                       {"streaming", "'on'"}}));
    EXPECT_EQ(ServerFeatures::for_version(160000).start_options(pubs, false),
              (Options{{"proto_version", "'4'"},
                       {"publication_names", pubs},
                       {"messages", "'true'"},
                       {"streaming", "'on'"}}));
}

TEST(ServerFeatures, StreamingCanBeTurnedOffAndNeedsProtoTwo) {
    const std::string pubs = "'\"p\"'";
    for (int v : {140000, 150020, 160000, 170002}) {
        EXPECT_EQ(ServerFeatures::for_version(v).start_options(pubs, false, false).size(), 3u) << v;
        for (const auto& [name, value] :
             ServerFeatures::for_version(v).start_options(pubs, true, false))
            EXPECT_NE(name, "streaming") << v;
    }
    // pgoutput: "requested proto_version=1 does not support streaming, need 2 or higher".
    ServerFeatures v1 = ServerFeatures::for_version(140000);
    v1.proto_version = 1;
    for (const auto& [name, value] : v1.start_options(pubs, false, true))
        EXPECT_NE(name, "streaming");
    // Never 'parallel' (it would change the Stream Abort layout).
    for (const auto& [name, value] : ServerFeatures::for_version(170002).start_options(pubs, true))
        EXPECT_NE(value, "'parallel'");
}

TEST(ServerFeatures, OriginNoneOnlyOnSixteenPlusAndOnlyWhenAsked) {
    const std::string pubs = "'\"p\"'";
    // 14 and 15 do not know the option: pgoutput would reject it.
    for (int v : {140000, 150020}) {
        for (const auto& [name, value] : ServerFeatures::for_version(v).start_options(pubs, true))
            EXPECT_NE(name, "origin") << v;
    }
    for (int v : {160000, 170002}) {
        Options asked = ServerFeatures::for_version(v).start_options(pubs, true);
        ASSERT_EQ(asked.size(), 5u) << v;  // proto, publications, messages, streaming, origin
        EXPECT_EQ(asked.back(), (std::pair<std::string, std::string>{"origin", "'none'"}));
        Options not_asked = ServerFeatures::for_version(v).start_options(pubs, false);
        EXPECT_EQ(not_asked.size(), 4u) << v;
        for (const auto& [name, value] : not_asked)
            EXPECT_NE(name, "origin");
    }
}

}  // namespace
}  // namespace pgshift
