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

constexpr const char* kWalPositionsQuery =
    "SELECT pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()";

/// An LSN the target reported (column `col` of the first row).
/// Throws std::runtime_error if it is not one.
Lsn wal_position(const pg::Result& r, int col) {
    auto lsn = r.rows() == 1 ? Lsn::parse(r.view(0, col)) : std::nullopt;
    if (!lsn)
        throw std::runtime_error("the target reported no WAL position after a commit");
    return *lsn;
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
    // Commits need not wait for their WAL flush (see LsnMapping): the slot is
    // told only what the target has flushed.
    conn_.exec("SET synchronous_commit = off");
    skip_through_ = origin_progress(conn_, opts_.origin);
    mapping_.on_skip(skip_through_);
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
    } catch (const pg::PgError& e) {
        conn_.rollback_quietly();
        progress_.fail(std::string("applier: ") + e.what(), e.is_connection_lost());
    } catch (const std::exception& e) {
        conn_.rollback_quietly();
        progress_.fail(std::string("applier: ") + e.what());
    }
    conn_ = pg::Connection();
}

template <typename Step>
void ApplierThread::guarded(Step&& step) {
    try {
        step();
    } catch (const BatchApplyError& failure) {
        replay_group(failure);
    }
}

void ApplierThread::loop() {
    int idle_rounds = 0;
    while (true) {
        auto batch = queue_.try_pop();
        if (!batch) {
            if (in_group_ && !mid_transaction_) {
                if (linger())
                    continue;
                guarded([this] { commit_group(); });
            }
            if (progress_.stopping())
                return;
            if (!in_group_ && mapping_.pending() &&
                Clock::now() >= last_wal_read_ + kWalReadInterval)
                read_wal_positions();
            // Bounded spin, then sleep until the decoder hands over a batch
            // (a futex, woken only while we sleep); the timeout bounds how
            // long a stop request can go unnoticed.
            if (++idle_rounds > 64)
                queue_.wait_for_push(kIdleWait);
            continue;
        }
        idle_rounds = 0;
        guarded([&] {
            apply_batch(retain(batch));
            if (in_group_ && !replaying_ && group_batch_bytes_ > kMaxRetainedBytes)
                mark_group();
        });
        if (!mid_transaction_ && (group_barrier_ || group_size_ >= opts_.max_group))
            guarded([this] { commit_group(); });
    }
}

const TxnBatch& ApplierThread::retain(std::unique_ptr<TxnBatch>& batch) {
    if (replaying_)
        return *batch;
    group_batch_bytes_ += batch->bytes;
    group_batches_.push_back(std::move(batch));
    return *group_batches_.back();
}

void ApplierThread::mark_group() {
    flush_inserts();
    flush_run();
    if (savepoint_)
        pipeline_->add_command("RELEASE SAVEPOINT pgshift_group");
    pipeline_->add_command("SAVEPOINT pgshift_group");
    pipeline_->flush();
    savepoint_ = GroupMark{group_size_,        group_changes_, group_end_,
                           group_commit_time_, group_barrier_, mid_transaction_};
    group_batches_.clear();
    group_batch_bytes_ = 0;
    relations_before_group_.clear();
}

void ApplierThread::replay_group(const BatchApplyError& failure) {
    spdlog::warn("applier: {}; applying the same changes again one statement per change",
                 failure.what());
    run_ = InsertRun{};
    batch_run_ = BatchRun{};
    if (savepoint_) {
        conn_.exec("ROLLBACK TO SAVEPOINT pgshift_group");
        in_group_ = true;
        group_size_ = savepoint_->group_size;
        group_changes_ = savepoint_->group_changes;
        group_end_ = savepoint_->group_end;
        group_commit_time_ = savepoint_->group_commit_time;
        group_barrier_ = savepoint_->group_barrier;
        mid_transaction_ = savepoint_->mid_transaction;
    } else {
        conn_.exec("ROLLBACK");
        in_group_ = false;
        group_size_ = 0;
        group_changes_ = 0;
        group_barrier_.reset();
        mid_transaction_ = false;
    }
    // The retained batches carry any Relation message that redefined a
    // relation since; they must first meet the definition they met before.
    for (auto& [relid, before] : relations_before_group_) {
        relations_[relid] = std::move(before);
        targets_.erase(relid);
    }
    relations_before_group_.clear();
    statements_.clear();
    // A failure among these changes now names its change and stops the job;
    // if none fails, the set-based order was the only cause and the group
    // commits as usual.
    replaying_ = true;
    auto batches = std::move(group_batches_);
    group_batches_.clear();
    group_batch_bytes_ = 0;
    for (const auto& b : batches)
        apply_batch(*b);
    pipeline_->flush();
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
        mapping_.on_skip(batch.end_lsn);
        progress_.durable_end.store(mapping_.durable_end().value(), std::memory_order_release);
        return;
    }
    if (!in_group_) {
        pipeline_->add_command("BEGIN");
        in_group_ = true;
        group_started_ = Clock::now();
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
        flush_run();
        buffer_insert(relations_[ins->relid], ins->relid, ins->new_tuple, batch);
        return;
    }
    flush_inserts();
    if (auto* rel = std::get_if<pgoutput::RelationMsg>(&msg)) {
        flush_run();
        auto known = relations_.find(rel->relid);
        if (in_group_ && !replaying_ && known != relations_.end())
            relations_before_group_.try_emplace(rel->relid, known->second);
        relations_[rel->relid] = *rel;
        targets_.erase(rel->relid);
        statements_.clear();
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
        apply_row_change(statements_for(upd->relid, rel, upd, nullptr), rel,
                         upd->old_kind == pgoutput::OldTupleKind::None ? nullptr : &upd->old_tuple,
                         upd->new_tuple, batch);
    } else if (auto* del = std::get_if<pgoutput::DeleteMsg>(&msg)) {
        const auto& rel = relation(del->relid);
        apply_row_change(statements_for(del->relid, rel, nullptr, del), rel, &del->old_tuple,
                         del->old_tuple, batch);
    } else if (auto* tr = std::get_if<pgoutput::TruncateMsg>(&msg)) {
        flush_run();
        std::vector<const TargetTable*> targets;
        for (uint32_t relid : tr->relids)
            targets.push_back(&target_for(relid));
        pipeline_->add_command(build_truncate(targets, tr->flags));
        ++group_changes_;
    }
}

const ApplierThread::Statements& ApplierThread::statements_for(uint32_t relid,
                                                               const pgoutput::RelationMsg& rel,
                                                               const pgoutput::UpdateMsg* upd,
                                                               const pgoutput::DeleteMsg* del) {
    // The statements depend only on the relation, the kind of change and the
    // kind of each value sent ('t', 'n', 'u'; old and new): the signature.
    const pgoutput::TupleData& values = upd ? upd->new_tuple : del->old_tuple;
    const pgoutput::TupleData* old_values =
        upd && upd->old_kind != pgoutput::OldTupleKind::None ? &upd->old_tuple : nullptr;
    std::string sig(reinterpret_cast<const char*>(&relid), sizeof relid);
    sig += upd ? 'U' : 'D';
    sig += static_cast<char>(upd ? upd->old_kind : del->old_kind);
    for (const auto& v : values)
        sig += static_cast<char>(v.kind);
    if (old_values) {
        for (const auto& v : *old_values)
            sig += static_cast<char>(v.kind);
    }
    auto it = statements_.find(sig);
    if (it != statements_.end())
        return it->second;
    const TargetTable& target = target_for(relid);
    Statements st;
    if (upd) {
        st.row = build_update(rel, target, *upd);
        if (!st.row.empty())
            st.batch = build_update(rel, target, *upd, true);
    } else {
        st.row = build_delete(rel, target, *del);
        st.batch = build_delete(rel, target, *del, true);
    }
    return statements_.emplace(std::move(sig), std::move(st)).first->second;
}

void ApplierThread::apply_row_change(const Statements& stmts, const pgoutput::RelationMsg& rel,
                                     const pgoutput::TupleData* old_tuple,
                                     const pgoutput::TupleData& new_tuple, const TxnBatch& batch) {
    if (stmts.row.empty())
        return;  // the source sent nothing to set
    if (!replaying_ && !stmts.batch.empty()) {
        add_to_run(stmts, old_tuple, new_tuple, batch, rel.relname);
        return;
    }
    flush_run();
    execute(stmts.row, rel, old_tuple, new_tuple, batch);
}

namespace {

/// Header of a one-dimensional text[] in binary format (arrayfuncs.c
/// array_send): ndim, has-null flag, element type, then length and lower
/// bound of the dimension; each element follows as Int32 length (-1: NULL)
/// and its bytes (textsend: the text as is).
constexpr size_t kArrayHeaderSize = 20;
constexpr uint32_t kTextOid = 25;  // pg_type.dat: text

void put_be32(std::string& out, size_t at, uint32_t v) {
    out[at] = static_cast<char>(v >> 24);
    out[at + 1] = static_cast<char>(v >> 16);
    out[at + 2] = static_cast<char>(v >> 8);
    out[at + 3] = static_cast<char>(v);
}

void append_be32(std::string& out, uint32_t v) {
    char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                 static_cast<char>(v)};
    out.append(b, 4);
}

/// The value a parameter takes from a change; throws ApplyError for kinds
/// that are never valid parameters.
const pgoutput::ColumnValue& param_value(const ParamRef& p, const pgoutput::TupleData* old_tuple,
                                         const pgoutput::TupleData& new_tuple) {
    const auto& v = (p.from_old ? *old_tuple : new_tuple)[static_cast<size_t>(p.column)];
    if (v.kind != pgoutput::ColumnKind::Text && v.kind != pgoutput::ColumnKind::Null) {
        throw ApplyError("column " + std::to_string(p.column) +
                         " has a value kind that cannot be applied ('" +
                         std::string(1, static_cast<char>(v.kind)) + "')");
    }
    return v;
}

/// The key of the row a change looks up (the statement's key parameters),
/// or with `after` its key after the change (an UPDATE's new values of the
/// same columns; unchanged-TOAST values stay as they were).
std::string row_key(const ApplyStatement& stmt, const pgoutput::TupleData* old_tuple,
                    const pgoutput::TupleData& new_tuple, bool after) {
    std::string key;
    for (size_t n = stmt.key_params_from; n < stmt.params.size(); ++n) {
        const ParamRef& p = stmt.params[n];
        const auto* v = &param_value(p, old_tuple, new_tuple);
        const auto& changed = new_tuple[static_cast<size_t>(p.column)];
        if (after && changed.kind != pgoutput::ColumnKind::Unchanged)
            v = &changed;
        key += static_cast<char>(v->kind);
        append_be32(key, static_cast<uint32_t>(v->data.size()));
        key += v->data;
    }
    return key;
}

}  // namespace

void ApplierThread::add_to_run(const Statements& stmts, const pgoutput::TupleData* old_tuple,
                               const pgoutput::TupleData& new_tuple, const TxnBatch& batch,
                               const std::string& relname) {
    const ApplyStatement& stmt = stmts.batch;
    BatchRun& run = batch_run_;
    bool is_update = stmt.key_params_from > 0;
    std::string key = row_key(stmt, old_tuple, new_tuple, false);
    std::string new_key = is_update ? row_key(stmt, old_tuple, new_tuple, true) : key;
    if (run.rows > 0 &&
        (run.stmts != &stmts || run.rows >= kMaxRunRows || run.bytes >= kMaxRunBytes ||
         run.keys.count(key) || run.keys.count(new_key))) {
        flush_run();
    }
    if (run.rows == 0) {
        run.stmts = &stmts;
        run.arrays.assign(stmt.params.size(), std::string(kArrayHeaderSize, '\0'));
        run.has_null.assign(stmt.params.size(), 0);
        run.first_lsn = batch.commit_lsn;
        run.relname = relname;
    }
    for (size_t n = 0; n < stmt.params.size(); ++n) {
        const auto& v = param_value(stmt.params[n], old_tuple, new_tuple);
        if (v.kind == pgoutput::ColumnKind::Null) {
            append_be32(run.arrays[n], 0xFFFFFFFFu);
            run.has_null[n] = 1;
        } else {
            append_be32(run.arrays[n], static_cast<uint32_t>(v.data.size()));
            run.arrays[n] += v.data;
        }
        run.bytes += 4 + v.data.size();
    }
    if (new_key != key)
        run.keys.insert(new_key);
    run.keys.insert(std::move(key));
    ++run.rows;
    run.last_lsn = batch.commit_lsn;
}

void ApplierThread::flush_run() {
    BatchRun& run = batch_run_;
    if (run.rows == 0)
        return;
    for (size_t n = 0; n < run.arrays.size(); ++n) {
        std::string& a = run.arrays[n];
        put_be32(a, 0, 1);
        put_be32(a, 4, run.has_null[n] ? 1 : 0);
        put_be32(a, 8, kTextOid);
        put_be32(a, 12, static_cast<uint32_t>(run.rows));
        put_be32(a, 16, 1);
    }
    std::string context = std::to_string(run.rows) + " changes to \"" + run.relname +
                          "\" from the source transactions with commit LSNs " +
                          run.first_lsn.str() + " to " + run.last_lsn.str();
    pipeline_->add_batch(run.stmts->batch.sql, std::move(run.arrays), run.rows, std::move(context));
    group_changes_ += run.rows;
    run.rows = 0;
    run.bytes = 0;
    run.arrays.clear();
    run.keys.clear();
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
    const TargetTable& target = target_for(relid);
    if (replaying_) {
        execute(build_insert(rel, target, tuple), rel, nullptr, tuple, batch);
        return;
    }
    if (run_.rows > 0 && run_.relid != relid)
        flush_inserts();
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
    if (run_.copy_data.size() >= kCopyChunkBytes)
        guard_copy(target, [&] { send_copy_chunk(rel, target); });
}

void ApplierThread::send_copy_chunk(const pgoutput::RelationMsg& rel, const TargetTable& target) {
    if (!run_.copying) {
        pipeline_->flush();
        conn_.start_copy(build_copy_in(rel, target), PGRES_COPY_IN);
        run_.copying = true;
    }
    conn_.put_copy_data(run_.copy_data);
    run_.copy_data.clear();
}

template <typename Step>
void ApplierThread::guard_copy(const TargetTable& target, Step&& step) {
    try {
        step();
    } catch (const pg::PgError& e) {
        throw BatchApplyError(std::string(e.what()) + " — while copying " +
                              std::to_string(run_.rows) + " inserted rows into " +
                              target.qualified + " (source transactions up to commit LSN " +
                              run_.source_lsn.str() + "); nothing of them was applied");
    }
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
        guard_copy(target, [&] {
            send_copy_chunk(rel, target);
            run_.copying = false;
            conn_.end_copy_in();
        });
        group_changes_ += run_.rows;
    }
    run_ = InsertRun{};
}

bool ApplierThread::linger() {
    if (group_barrier_ || progress_.stopping())
        return false;
    auto left = group_started_ + kGroupLinger - Clock::now();
    if (left <= Clock::duration::zero())
        return false;
    queue_.wait_for_push(std::chrono::duration_cast<std::chrono::microseconds>(left));
    return true;
}

void ApplierThread::note_wal_positions(const pg::Result& r) {
    Lsn durable = mapping_.on_wal_positions(wal_position(r, 0), wal_position(r, 1));
    progress_.durable_end.store(durable.value(), std::memory_order_release);
    last_wal_read_ = Clock::now();
}

void ApplierThread::read_wal_positions() {
    note_wal_positions(conn_.exec(kWalPositionsQuery));
}

void ApplierThread::commit_group() {
    flush_inserts();
    flush_run();
    auto ts = std::to_string(group_commit_time_ + kPgEpochOffsetMicros);
    pipeline_->add(
        "SELECT pg_replication_origin_xact_setup($1::pg_lsn, "
        "timestamptz 'epoch' + $2::bigint * interval '1 microsecond')",
        {group_end_.str(), ts}, false, "the replication origin's progress");
    pipeline_->add_command("COMMIT");
    // While busy, the WAL positions ride along with a commit now and then.
    pg::Result wal;
    bool read_wal = Clock::now() >= last_wal_read_ + kWalReadInterval;
    if (read_wal)
        pipeline_->add_query(kWalPositionsQuery, &wal);
    pipeline_->flush();
    mapping_.on_commit(group_end_);
    if (read_wal)
        note_wal_positions(wal);
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
    replaying_ = false;
    savepoint_.reset();
    group_batches_.clear();
    group_batch_bytes_ = 0;
    relations_before_group_.clear();
}

}  // namespace pgshift
