// Exit codes and the exceptions that map to them.
//
// 0 ok, 1 runtime failure, 2 usage or configuration error (ConfigError in
// config.h), 3 a prerequisite check failed. Every error message says what
// happened, to which object, and what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace pgshift {

enum ExitCode : int { kExitOk = 0, kExitRuntime = 1, kExitUsage = 2, kExitPrerequisite = 3 };

/// A prerequisite check failed (server settings, privileges, replica
/// identity). Nothing has been created on the server when this is thrown.
class PrerequisiteError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// A stream lost a session to the server (pg::PgError::is_connection_lost);
/// the phase controller reconnects and resumes from the origin's progress.
class StreamInterrupted : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// The job was asked to stop (signal, `pgshift abort`); not a failure of its own.
class JobStopped : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

}  // namespace pgshift
