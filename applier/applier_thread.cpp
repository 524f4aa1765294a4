#include "applier_thread.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace pgshift {

using pgoutput::Message;

namespace {

/// Whether "=" resolves for the type (arrays, domains and ranges included),
/// asked of the server itself. Inside a transaction the probe runs under a
/// savepoint so that a type without "=" (json, point) cannot abort it.
bool type_has_equality(pg::Connection& conn, const std::string& type) {
    bool in_txn = PQtransactionStatus(conn.raw()) == PQTRANS_INTRANS;
    if (in_txn)
        conn.exec("SAVEPOINT pgshift_probe");
    try {
        conn.exec("SELECT NULL::" + type + " = NULL::" + type);
        if (in_txn)
            conn.exec("RELEASE SAVEPOINT pgshift_probe");
        return true;
    } catch (const pg::PgError&) {
        if (in_txn)
            conn.exec("ROLLBACK TO SAVEPOINT pgshift_probe");
        return false;
    }
}

}  // namespace

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
        if (fresh)
            it->second = type_has_equality(conn, c.type);
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
    pipeline_ = std::make_unique<StatementPipeline>(conn_);
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
            if (in_group_ && !mid_transaction_)
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
        if (!mid_transaction_ && (group_barrier_ || group_size_ >= opts_.max_group))
            commit_group();
    }
}

void ApplierThread::apply_batch(const TxnBatch& batch) {
    // The origin's progress P is the end LSN of the last transaction applied
    // before a restart; commit records do not overlap, so a transaction was
    // applied exactly when its commit record starts before P.
    bool applied_before = batch.commit_lsn.valid() ? batch.commit_lsn < skip_through_
                                                   : batch.end_lsn <= skip_through_;
    if (applied_before)
        return;
    bool has_changes = !batch.changes.empty();
    mid_transaction_ = !batch.last_chunk;
    if (!in_group_ && !has_changes && !batch.barrier_nonce && batch.last_chunk) {
        // Nothing to write, and everything before it is committed.
        progress_.applied_end.store(batch.end_lsn.value(), std::memory_order_release);
        return;
    }
    if (!in_group_) {
        pipeline_->add_command("BEGIN");
        in_group_ = true;
    }
    for (const auto& msg : batch.changes)
        apply_change(msg, batch);
    if (!batch.last_chunk)
        return;
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
    auto target = opts_.targets.find(relid);
    if (target == opts_.targets.end()) {
        throw ApplyError("no target table is configured for \"" + rel->second.nspname + "\".\"" +
                         rel->second.relname + "\" (relation id " + std::to_string(relid) + ")");
    }
    auto uk = opts_.unique_keys.find(relid);
    auto loaded =
        load_target_table(conn_, target->second,
                          uk == opts_.unique_keys.end() ? std::vector<std::string>{} : uk->second,
                          opts_.partition_column);
    return targets_.emplace(relid, std::move(loaded)).first->second;
}

void ApplierThread::apply_change(const Message& msg, const TxnBatch& batch) {
    auto* ins = std::get_if<pgoutput::InsertMsg>(&msg);
    if (ins && relations_.count(ins->relid)) {
        buffer_insert(relations_[ins->relid], ins->relid, ins->new_tuple, batch);
        return;
    }
    flush_inserts();
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
    if (ins) {
        relation(ins->relid);  // throws: no Relation message yet
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
        pipeline_->add_command(build_truncate(targets, tr->flags));
        ++group_changes_;
    }
}

void ApplierThread::execute(const ApplyStatement& stmt, const pgoutput::RelationMsg& rel,
                            const pgoutput::TupleData* old_tuple,
                            const pgoutput::TupleData& new_tuple, const TxnBatch& batch) {
    std::string context = "a change to \"" + rel.relname + "\" (" +
                          describe_key(rel, stmt, old_tuple, new_tuple) +
                          ") from the source transaction with commit LSN " +
                          batch.commit_lsn.str() + "; nothing of that transaction was applied";
    pipeline_->add(stmt.sql, bind_params(stmt, old_tuple, new_tuple), stmt.expect_one_row,
                   std::move(context));
    ++group_changes_;
}

void ApplierThread::buffer_insert(const pgoutput::RelationMsg& rel, uint32_t relid,
                                  const pgoutput::TupleData& tuple, const TxnBatch& batch) {
    constexpr size_t kMaxRunBytes = 4u << 20;
    if (run_.rows > 0 && (run_.relid != relid || run_.copy_data.size() > kMaxRunBytes))
        flush_inserts();
    const TargetTable& target = target_for(relid);
    if (run_.rows == 0) {
        run_.relid = relid;
        run_.first = tuple;
    } else {
        if (run_.rows == 1)
            append_copy_row(run_.copy_data, rel, target, run_.first);
        append_copy_row(run_.copy_data, rel, target, tuple);
    }
    ++run_.rows;
    run_.source_lsn = batch.commit_lsn;
}

void ApplierThread::flush_inserts() {
    if (run_.rows == 0)
        return;
    const auto& rel = relations_.at(run_.relid);
    const TargetTable& target = target_for(run_.relid);
    if (run_.rows == 1) {
        TxnBatch context;
        context.commit_lsn = run_.source_lsn;
        execute(build_insert(rel, target, run_.first), rel, nullptr, run_.first, context);
    } else {
        pipeline_->flush();
        try {
            conn_.start_copy(build_copy_in(rel, target), PGRES_COPY_IN);
            conn_.put_copy_data(run_.copy_data);
            conn_.end_copy_in();
        } catch (const pg::PgError& e) {
            throw ApplyError(std::string(e.what()) + " — while copying " +
                             std::to_string(run_.rows) + " inserted rows into " + target.qualified +
                             " (source transactions up to commit LSN " + run_.source_lsn.str() +
                             "); nothing of them was applied");
        }
        group_changes_ += run_.rows;
    }
    run_.rows = 0;
    run_.copy_data.clear();
}

void ApplierThread::commit_group() {
    flush_inserts();
    auto ts = std::to_string(group_commit_time_ + kPgEpochOffsetMicros);
    pipeline_->add(
        "SELECT pg_replication_origin_xact_setup($1::pg_lsn, "
        "timestamptz 'epoch' + $2::bigint * interval '1 microsecond')",
        {group_end_.str(), ts}, false, "the replication origin's progress");
    pipeline_->add_command("COMMIT");
    pipeline_->flush();
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
