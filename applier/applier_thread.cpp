#include "applier_thread.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace pgshift {

using pgoutput::Message;

TargetTable load_target_table(pg::Connection& conn, const QualifiedName& table,
                              std::vector<std::string> unique_key, std::string partition_column) {
    TargetTable t;
    t.qualified = conn.qualified(table.schema, table.name);
    t.unique_key = std::move(unique_key);
    t.partition_column = std::move(partition_column);
    auto r = conn.exec_params(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '', "
        "       a.attidentity = 'a' "
        "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "  JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
        " ORDER BY a.attnum",
        {table.schema, table.name});
    if (r.rows() == 0) {
        throw pg::PgError("target table " + t.qualified + " does not exist", "42P01");
    }
    std::map<std::string, bool> equality;
    for (int i = 0; i < r.rows(); ++i) {
        TargetColumn c{r.str(i, 0), r.str(i, 1), r.boolean(i, 2), r.boolean(i, 3), true};
        auto [it, fresh] = equality.try_emplace(c.type, true);
        if (fresh) {
            try {
                conn.exec("SELECT NULL::" + c.type + " = NULL::" + c.type);
            } catch (const pg::PgError&) {
                it->second = false;
            }
        }
        c.has_equality = it->second;
        t.columns.push_back(std::move(c));
    }
    return t;
}

Lsn origin_progress(pg::Connection& conn, const std::string& origin) {
    auto r = conn.exec_params("SELECT pg_replication_origin_progress($1, true)", {origin});
    if (r.is_null(0, 0))
        return Lsn();
    return Lsn::parse(r.view(0, 0)).value_or(Lsn());
}

ApplierThread::ApplierThread(ApplierOptions opts, ChangeQueue& queue, Progress& progress)
    : opts_(std::move(opts)), queue_(queue), progress_(progress) {}

ApplierThread::~ApplierThread() {
    if (thread_.joinable())
        thread_.join();
}

void ApplierThread::start() {
    pg::ConnectOptions co;
    co.application_name = opts_.application_name;
    conn_ = pg::Connection::open(opts_.conninfo, co);
    try {
        // Triggers and FK checks on the target are the source's business; a
        // replica-role session skips ordinary triggers, as the apply worker does.
        conn_.exec("SET session_replication_role = replica");
    } catch (const pg::PgError& e) {
        spdlog::warn(
            "applier: cannot SET session_replication_role (needs superuser); "
            "triggers on the target will fire: {}",
            e.what());
    }
    skip_through_ = origin_progress(conn_, opts_.origin);
    pg::retry_while_in_use([&] {
        return conn_.exec_params("SELECT pg_replication_origin_session_setup($1)", {opts_.origin});
    });
    thread_ = std::thread([this] { run(); });
}

void ApplierThread::join() {
    if (thread_.joinable())
        thread_.join();
}

void ApplierThread::run() {
    try {
        loop();
    } catch (const std::exception& e) {
        conn_.rollback_quietly();
        progress_.fail(std::string("applier: ") + e.what());
    }
    conn_ = pg::Connection();
}

void ApplierThread::loop() {
    int idle_rounds = 0;
    while (true) {
        auto batch = queue_.try_pop();
        if (!batch) {
            if (in_group_)
                commit_group();
            if (progress_.stopping())
                return;
            // Bounded spin, then short sleeps: the queue is wait-free and
            // there is no condition variable on the hot path.
            if (++idle_rounds > 64)
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            continue;
        }
        idle_rounds = 0;
        apply_batch(*batch);
        if (group_barrier_ || group_size_ >= opts_.max_group)
            commit_group();
    }
}

void ApplierThread::apply_batch(const TxnBatch& batch) {
    if (batch.end_lsn <= skip_through_)
        return;  // applied before a restart
    bool has_changes = !batch.changes.empty();
    if (!in_group_ && !has_changes && !batch.barrier_nonce) {
        // Nothing to write, and everything before it is committed.
        progress_.applied_end.store(batch.end_lsn.value(), std::memory_order_release);
        return;
    }
    if (!in_group_) {
        conn_.exec("BEGIN");
        in_group_ = true;
    }
    for (const auto& msg : batch.changes)
        apply_change(msg, batch);
    ++group_size_;
    group_end_ = batch.end_lsn;
    group_commit_time_ = batch.commit_time;
    if (batch.barrier_nonce)
        group_barrier_ = batch.barrier_nonce;
}

const TargetTable& ApplierThread::target_for(uint32_t relid) {
    auto it = targets_.find(relid);
    if (it != targets_.end())
        return it->second;
    auto rel = relations_.find(relid);
    if (rel == relations_.end()) {
        throw ApplyError("change for relation id " + std::to_string(relid) +
                         " arrived before its Relation message");
    }
    std::string nsp = rel->second.nspname.empty() ? "pg_catalog" : rel->second.nspname;
    auto key = std::make_pair(nsp, rel->second.relname);
    auto target = opts_.targets.find(key);
    if (target == opts_.targets.end()) {
        throw ApplyError("no target table is configured for \"" + nsp + "\".\"" +
                         rel->second.relname + "\"");
    }
    auto uk = opts_.unique_keys.find(key);
    auto loaded =
        load_target_table(conn_, target->second,
                          uk == opts_.unique_keys.end() ? std::vector<std::string>{} : uk->second,
                          opts_.partition_column);
    return targets_.emplace(relid, std::move(loaded)).first->second;
}

void ApplierThread::apply_change(const Message& msg, const TxnBatch& batch) {
    if (auto* rel = std::get_if<pgoutput::RelationMsg>(&msg)) {
        relations_[rel->relid] = *rel;
        targets_.erase(rel->relid);
        return;
    }
    auto relation = [&](uint32_t relid) -> const pgoutput::RelationMsg& {
        auto it = relations_.find(relid);
        if (it == relations_.end()) {
            throw ApplyError("change for relation id " + std::to_string(relid) +
                             " arrived before its Relation message");
        }
        return it->second;
    };
    if (auto* ins = std::get_if<pgoutput::InsertMsg>(&msg)) {
        const auto& rel = relation(ins->relid);
        execute(build_insert(rel, target_for(ins->relid), ins->new_tuple), rel, nullptr,
                ins->new_tuple, batch);
    } else if (auto* upd = std::get_if<pgoutput::UpdateMsg>(&msg)) {
        const auto& rel = relation(upd->relid);
        auto stmt = build_update(rel, target_for(upd->relid), *upd);
        if (!stmt.empty()) {
            execute(stmt, rel,
                    upd->old_kind == pgoutput::OldTupleKind::None ? nullptr : &upd->old_tuple,
                    upd->new_tuple, batch);
        }
    } else if (auto* del = std::get_if<pgoutput::DeleteMsg>(&msg)) {
        const auto& rel = relation(del->relid);
        execute(build_delete(rel, target_for(del->relid), *del), rel, &del->old_tuple,
                del->old_tuple, batch);
    } else if (auto* tr = std::get_if<pgoutput::TruncateMsg>(&msg)) {
        std::vector<const TargetTable*> targets;
        for (uint32_t relid : tr->relids)
            targets.push_back(&target_for(relid));
        conn_.exec(build_truncate(targets, tr->flags));
        ++group_changes_;
    }
}

void ApplierThread::execute(const ApplyStatement& stmt, const pgoutput::RelationMsg& rel,
                            const pgoutput::TupleData* old_tuple,
                            const pgoutput::TupleData& new_tuple, const TxnBatch& batch) {
    auto [it, fresh] = prepared_.try_emplace(stmt.sql, "");
    if (fresh) {
        it->second = "pgshift_" + std::to_string(prepared_.size());
        conn_.prepare(it->second, stmt.sql);
    }
    pg::Result r;
    try {
        r = conn_.exec_prepared(it->second, bind_params(stmt, old_tuple, new_tuple));
    } catch (const pg::PgError& e) {
        throw ApplyError(std::string(e.what()) + " — while applying a change to \"" + rel.relname +
                         "\" (" + describe_key(rel, stmt, old_tuple, new_tuple) +
                         ") from the transaction ending at source LSN " + batch.end_lsn.str() +
                         "; nothing of that transaction was applied");
    }
    if (stmt.expect_one_row && r.affected() != 1) {
        throw ApplyError("the row to change was not found in the shadow table (" +
                         describe_key(rel, stmt, old_tuple, new_tuple) +
                         ", source transaction ending at LSN " + batch.end_lsn.str() +
                         "); the shadow no longer matches the source, so the job stops");
    }
    ++group_changes_;
}

void ApplierThread::commit_group() {
    auto ts = std::to_string(group_commit_time_ + kPgEpochOffsetMicros);
    conn_.exec_params(
        "SELECT pg_replication_origin_xact_setup($1::pg_lsn, "
        "timestamptz 'epoch' + $2::bigint * interval '1 microsecond')",
        {group_end_.str(), ts});
    conn_.exec("COMMIT");
    progress_.applied_end.store(group_end_.value(), std::memory_order_release);
    progress_.applied_commit_time.store(group_commit_time_, std::memory_order_release);
    progress_.changes_applied.fetch_add(group_changes_, std::memory_order_relaxed);
    progress_.txns_applied.fetch_add(group_size_, std::memory_order_relaxed);
    if (group_barrier_)
        progress_.publish_barrier(*group_barrier_);
    in_group_ = false;
    group_size_ = 0;
    group_changes_ = 0;
    group_barrier_.reset();
}

}  // namespace pgshift
