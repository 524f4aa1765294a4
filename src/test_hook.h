// A pause point for the crash tests (tests/integration/t_cutover_kill.sh).
// With PGSHIFT_TEST_PAUSE_AT=<point> in the environment, pgshift sleeps
// PGSHIFT_TEST_PAUSE_S seconds (default 30) when it reaches that point, so that
// a test can SIGKILL it there deterministically. Points:
//   swap        inside the swap transaction, after its statements, before COMMIT
//   after_swap  after the swap committed, before the old direction's stream is removed
// Unset (always, in production) it costs one getenv per swap.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace pgshift {

inline void test_pause_at(const char* point) {
    const char* at = std::getenv("PGSHIFT_TEST_PAUSE_AT");
    if (at == nullptr || std::strcmp(at, point) != 0)
        return;
    const char* secs = std::getenv("PGSHIFT_TEST_PAUSE_S");
    int s = secs != nullptr ? std::atoi(secs) : 30;
    spdlog::warn("test hook: pausing {} s at '{}' (PGSHIFT_TEST_PAUSE_AT)", s, point);
    std::this_thread::sleep_for(std::chrono::seconds(s));
}

}  // namespace pgshift
