// pgshift: convert a live PostgreSQL table into a partitioned table online.
//
// Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error,
// 3 a prerequisite check failed.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>

#include "commands.h"
#include "config.h"
#include "errors.h"
#include "pg/connection.h"
#include "phase_controller.h"

namespace {

void on_signal(int) {
    pgshift::g_stop_signal.store(true);
}

void setup_logging(const std::string& level) {
    auto logger = spdlog::stderr_color_mt("pgshift");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pgshift: convert a live PostgreSQL table into a partitioned table online"};
    app.require_subcommand(1);
    std::string config_path;
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

    auto add = [&](const char* name, const char* help) {
        auto* sub = app.add_subcommand(name, help);
        sub->add_option("-c,--config", config_path, "job file (JOB.ini)")->required();
        return sub;
    };
    auto* plan = add("plan", "dry run: checks, exact DDL, steps and estimates; writes nothing");
    std::string format = "text";
    plan->add_option("--format", format, "text, sql or json")
        ->check(CLI::IsMember({"text", "sql", "json"}));
    auto* run = add("run", "prepare, snapshot copy, sync and cutover; run again to resume");
    auto* status = add("status", "phase, rows copied, lag, last cutover, last error");
    bool json = false;
    status->add_flag("--json", json, "machine-readable output");
    auto* abort = add("abort", "before cutover: drop shadow, slot, publication and origin");
    auto* cutover = add("cutover", "ask a running job to cut over now");
    auto* verify =
        add("verify", "compare old and new tables; check partition pruning of hot queries");
    verify->add_flag("--json", json, "machine-readable output");
    auto* maintain =
        add("maintain", "premake partitions, empty DEFAULT, apply retention (cron-safe)");
    bool dry_run = false;
    maintain->add_flag("--dry-run", dry_run, "print what would be done; change nothing");
    std::string handoff;
    maintain
        ->add_option("--handoff", handoff,
                     "register the table with pg_partman so its run_maintenance takes over")
        ->check(CLI::IsMember({"partman"}));
    auto* partitions = add("partitions", "partitions with bounds, estimated rows and sizes");
    partitions->add_flag("--json", json, "machine-readable output");
    auto* rollback = add("rollback", "after cutover: swap back to the old table, losing nothing");
    auto* finalize = add("finalize", "after cutover: end the job (slots, publications, origins)");
    bool drop_old = false;
    finalize->add_flag("--drop-old", drop_old, "also drop the old table");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? pgshift::kExitOk : pgshift::kExitUsage;
    }
    setup_logging(log_level);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);

    try {
        auto cfg = pgshift::load_config(config_path);
        if (*plan) {
            return pgshift::plan_command(cfg, format == "json"  ? pgshift::PlanFormat::Json
                                              : format == "sql" ? pgshift::PlanFormat::Sql
                                                                : pgshift::PlanFormat::Text);
        }
        if (*run)
            return pgshift::PhaseController(cfg).run();
        if (*status)
            return pgshift::status_command(cfg, json);
        if (*abort)
            return pgshift::abort_command(cfg);
        if (*cutover)
            return pgshift::cutover_command(cfg);
        if (*rollback)
            return pgshift::rollback_command(cfg);
        if (*finalize)
            return pgshift::finalize_command(cfg, drop_old);
        if (*verify)
            return pgshift::verify_command(cfg, json);
        if (*maintain)
            return pgshift::maintain_command(cfg, dry_run, handoff == "partman");
        if (*partitions)
            return pgshift::partitions_command(cfg, json);
        std::fprintf(stderr, "pgshift %s: not available in this version yet\n",
                     app.get_subcommands().front()->get_name().c_str());
        return pgshift::kExitUsage;
    } catch (const pgshift::ConfigError& e) {
        std::fprintf(stderr, "pgshift: configuration error: %s\n", e.what());
        return pgshift::kExitUsage;
    } catch (const pgshift::PrerequisiteError& e) {
        std::fprintf(stderr, "pgshift: %s\n", e.what());
        return pgshift::kExitPrerequisite;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pgshift: %s\n", e.what());
        return pgshift::kExitRuntime;
    }
}
