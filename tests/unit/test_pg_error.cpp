// pgshift::pg::PgError::is_connection_lost: which failures a stream rides
// out by reconnecting (errcodes.txt classes 08 and 57P0x).
#include <gtest/gtest.h>

#include "pg/connection.h"

using pgshift::pg::PgError;

TEST(PgError, ConnectionExceptionsAndServerShutdownsAreLostConnections) {
    for (const char* state : {"08000", "08003", "08006", "08001", "57P01", "57P02", "57P03"}) {
        const PgError error("connection lost", state);
        EXPECT_TRUE(error.is_connection_lost()) << state;
    }
}

TEST(PgError, OtherFailuresAreNotLostConnections) {
    for (const char* state : {"", "08P01", "23505", "55006", "57014", "42P01", "XX000"}) {
        const PgError error("failed", state);
        EXPECT_FALSE(error.is_connection_lost()) << state;
    }
}
