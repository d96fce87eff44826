import KTDB
import KTGraph
import Logging

/// A table whose rows changed on the source after the snapshot copy.
struct ChangedTable: Sendable {
    var table: SchemaTable
    /// The recorded primary keys, a JSON array of objects (`[{"id": …}]`).
    var keys: String
    /// Whether the whole table is copied again (a `TRUNCATE`, or a table without a primary key).
    var whole: Bool

    /// `(r."a", r."b") IN (the recorded keys)`, the keys a bound value; `true` for a whole table.
    func condition(_ alias: String) -> PostgresQuery {
        guard !whole else { return "true" }
        let key = SchemaTable.columnList(table.primaryKey, prefix: alias + "."), recorded = SchemaTable.columnList(table.primaryKey, prefix: "k.")
        return "(\(unsafeRaw: key)) IN (SELECT \(unsafeRaw: recorded) FROM jsonb_populate_recordset(NULL::\(unsafeRaw: table.name.sql), \(keys)::jsonb) k)"
    }
}

extension GraphMover {
    /// The trigger function a move installs in the source's schemas to record changed keys.
    private var recorder: String { "\(schema.quoted).kt_move_record" }
    /// The statement trigger function of the write pause.
    private var fence: String { "\(schema.quoted).kt_move_fence" }
    /// Tables of the source's write-db that stay writable during the pause: the sync's own.
    static let unfenced: Set<String> = Set([WriteTable.syncWatermarks, .syncFailures, .tombstones].map(\.name))

    // MARK: Recording

    /// Installs, on every table of the source's two schemas, a row trigger that records the
    /// primary key of each row inserted, updated or deleted (and a statement trigger that
    /// records a `TRUNCATE` as the whole table) in `kt_move_changes`.
    func installRecording() async throws {
        try await source.withConnections(application: application, logger: logger) { graphDB, writeDB in
            for connection in [graphDB, writeDB] {
                let tables = try await SchemaTable.list(schema, on: connection, logger: logger)
                try await connection.withTransaction(logger: logger) { t in
                    try await t.query("SELECT set_config('lock_timeout', '10s', true)")
                    try await t.connection.execute(
                        simple: """
                            CREATE TABLE IF NOT EXISTS \(schema.quoted).kt_move_changes (table_name text NOT NULL, key jsonb);
                            CREATE OR REPLACE FUNCTION \(recorder)() RETURNS trigger LANGUAGE plpgsql AS $kt$
                            DECLARE
                                new_key jsonb;
                                old_key jsonb;
                            BEGIN
                                IF TG_LEVEL = 'STATEMENT' THEN
                                    INSERT INTO \(schema.quoted).kt_move_changes VALUES (TG_TABLE_NAME, NULL);
                                    RETURN NULL;
                                END IF;
                                IF TG_OP <> 'DELETE' THEN
                                    SELECT jsonb_object_agg(k, to_jsonb(NEW) -> k) INTO new_key FROM unnest(TG_ARGV) k;
                                    INSERT INTO \(schema.quoted).kt_move_changes VALUES (TG_TABLE_NAME, new_key);
                                END IF;
                                IF TG_OP <> 'INSERT' THEN
                                    SELECT jsonb_object_agg(k, to_jsonb(OLD) -> k) INTO old_key FROM unnest(TG_ARGV) k;
                                    IF old_key IS DISTINCT FROM new_key THEN
                                        INSERT INTO \(schema.quoted).kt_move_changes VALUES (TG_TABLE_NAME, old_key);
                                    END IF;
                                END IF;
                                RETURN NULL;
                            END $kt$
                            """, logger: logger)
                    for table in tables {
                        // Column names passed as trigger arguments: catalog names, validated.
                        let arguments = table.primaryKey.map { "'\($0)'" }.joined(separator: ", ")
                        let rowTrigger =
                            table.primaryKey.isEmpty
                            ? "CREATE TRIGGER kt_move_record AFTER INSERT OR UPDATE OR DELETE ON \(table.name.sql) FOR EACH STATEMENT EXECUTE FUNCTION \(recorder)()"
                            : "CREATE TRIGGER kt_move_record AFTER INSERT OR UPDATE OR DELETE ON \(table.name.sql) FOR EACH ROW EXECUTE FUNCTION \(recorder)(\(arguments))"
                        try await t.connection.execute(
                            simple: """
                                DROP TRIGGER IF EXISTS kt_move_record ON \(table.name.sql);
                                DROP TRIGGER IF EXISTS kt_move_record_truncate ON \(table.name.sql);
                                \(rowTrigger);
                                CREATE TRIGGER kt_move_record_truncate AFTER TRUNCATE ON \(table.name.sql) FOR EACH STATEMENT EXECUTE FUNCTION \(recorder)()
                                """, logger: logger)
                    }
                }
            }
        }
    }

    // MARK: The write pause

    /// Pauses the source's writes: a statement trigger on every write-db table (but the sync's
    /// own) and every graph-db table raises ``GraphProvisioner/writesPausedSQLState``; in
    /// graph-db a transaction of the sync (`kt.writer` = `sync`) still passes.
    func pauseWrites() async throws {
        try await source.withConnections(application: application, logger: logger) { graphDB, writeDB in
            for (connection, graphSide) in [(writeDB, false), (graphDB, true)] {
                let tables = try await SchemaTable.list(schema, on: connection, logger: logger).filter { graphSide || !Self.unfenced.contains($0.name.name) }
                try await connection.withTransaction(logger: logger) { t in
                    try await t.query("SELECT set_config('lock_timeout', '10s', true)")
                    try await t.connection.execute(
                        simple: """
                            CREATE OR REPLACE FUNCTION \(fence)() RETURNS trigger LANGUAGE plpgsql AS $kt$
                            BEGIN
                                IF \(graphSide ? "coalesce(current_setting('kt.writer', true), '') = 'sync'" : "false") THEN
                                    RETURN NULL;
                                END IF;
                                RAISE EXCEPTION 'graph is moving to another database pair; retry shortly' USING ERRCODE = '\(GraphProvisioner.writesPausedSQLState)';
                            END $kt$
                            """, logger: logger)
                    for table in tables {
                        try await t.connection.execute(
                            simple: """
                                CREATE TRIGGER kt_move_fence BEFORE INSERT OR UPDATE OR DELETE ON \(table.name.sql)
                                    FOR EACH STATEMENT EXECUTE FUNCTION \(fence)();
                                CREATE TRIGGER kt_move_fence_truncate BEFORE TRUNCATE ON \(table.name.sql)
                                    FOR EACH STATEMENT EXECUTE FUNCTION \(fence)()
                                """, logger: logger)
                    }
                }
            }
        }
    }

    /// Lifts the write pause and the recording on the source (idempotent).
    func removeFences() async throws {
        try await source.withConnections(application: application, logger: logger) { graphDB, writeDB in
            for connection in [writeDB, graphDB] {
                try await connection.execute(
                    simple: """
                        DROP FUNCTION IF EXISTS \(fence)() CASCADE;
                        DROP FUNCTION IF EXISTS \(recorder)() CASCADE;
                        DROP TABLE IF EXISTS \(schema.quoted).kt_move_changes
                        """, logger: logger)
            }
        }
    }

    // MARK: The catch-up

    /// Copies again, into `to`'s open transaction, the rows whose keys `from` recorded since
    /// the snapshot: the source's current rows are upserted (parents first) and keys it no
    /// longer holds are deleted (children first). The target's own triggers are off meanwhile,
    /// so that a delete records no tombstone the source did not. Returns what was copied.
    func catchUp(from: PostgresConnection, to: PostgresConnection) async throws -> (tables: [ChangedTable], rows: Int) {
        let tables = try await SchemaTable.list(schema, on: from, logger: logger)
        var recorded: [String: (keys: String, whole: Bool)] = [:]
        for row in try await from.query(
            """
            SELECT table_name, coalesce(jsonb_agg(DISTINCT key) FILTER (WHERE key IS NOT NULL), '[]')::text, bool_or(key IS NULL)
            FROM \(TableName("kt_move_changes", in: schema)) GROUP BY table_name
            """, logger: logger
        ).rows {
            recorded[try row.decode(0, as: String.self)] = (try row.decode(1, as: String.self), try row.decode(2, as: Bool.self))
        }
        let changed = tables.compactMap { table in
            recorded[table.name.name].map { ChangedTable(table: table, keys: $0.keys, whole: $0.whole || table.primaryKey.isEmpty) }
        }
        guard !changed.isEmpty else { return ([], 0) }
        var current: [String: String] = [:], rows = 0
        for change in changed {
            let query: PostgresQuery = "SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]')::text, count(*) FROM \(unsafeRaw: change.table.name.sql) r WHERE "
            let row = try await from.query(query + change.condition("r"), logger: logger).rows[0]
            current[change.table.name.name] = try row.decode(0, as: String.self)
            rows += try row.decode(1, as: Int.self)
        }
        for change in changed {
            try await to.execute(simple: "ALTER TABLE \(change.table.name.sql) DISABLE TRIGGER USER", logger: logger)
        }
        for change in changed.reversed() {
            let table = change.table, name = table.name.sql
            if change.whole {
                try await to.query("DELETE FROM \(unsafeRaw: name)", logger: logger)
                continue
            }
            let key = SchemaTable.columnList(table.primaryKey)
            let kept: PostgresQuery = """
                 AND (\(unsafeRaw: SchemaTable.columnList(table.primaryKey, prefix: "r."))) NOT IN \
                (SELECT \(unsafeRaw: key) FROM jsonb_populate_recordset(NULL::\(unsafeRaw: name), \(current[table.name.name] ?? "[]")::jsonb))
                """
            try await to.query("DELETE FROM \(unsafeRaw: name) r WHERE " + change.condition("r") + kept, logger: logger)
        }
        for change in changed {
            let table = change.table, name = table.name.sql, columns = SchemaTable.columnList(table.columns)
            let others = table.columns.filter { !table.primaryKey.contains($0) }
            let conflict =
                change.whole
                ? ""
                : others.isEmpty
                    ? "ON CONFLICT (\(SchemaTable.columnList(table.primaryKey))) DO NOTHING"
                    : "ON CONFLICT (\(SchemaTable.columnList(table.primaryKey))) DO UPDATE SET " + others.map { "\"\($0)\" = EXCLUDED.\"\($0)\"" }.joined(separator: ", ")
            try await to.query(
                """
                INSERT INTO \(unsafeRaw: name) (\(unsafeRaw: columns)) SELECT \(unsafeRaw: columns) \
                FROM jsonb_populate_recordset(NULL::\(unsafeRaw: name), \(current[table.name.name] ?? "[]")::jsonb) \(unsafeRaw: conflict)
                """, logger: logger)
            try await to.execute(simple: "ALTER TABLE \(name) ENABLE TRIGGER USER", logger: logger)
        }
        try await SchemaTable.advanceSequences(schema, on: to, logger: logger)
        return (changed, rows)
    }

    /// Compares, for every changed table, the row count of the whole table and the count and
    /// checksum of the rows at the recorded keys on both sides. With the snapshot's whole-table
    /// checks this makes every table equal: rows outside the keys did not change on either side.
    func verify(_ changed: [ChangedTable], from: PostgresConnection, to: PostgresConnection) async throws {
        for change in changed {
            let name = change.table.name.sql
            let query: PostgresQuery =
                "SELECT (SELECT count(*) FROM \(unsafeRaw: name)), count(*), \(unsafeRaw: Self.rowHashSum) FROM \(unsafeRaw: name) r WHERE "
                + change.condition("r")
            let expected = try await from.query(query, logger: logger).rows[0], copied = try await to.query(query, logger: logger).rows[0]
            let digest = { (row: PostgresRow) in "\(try row.decode(0, as: Int.self)) rows, \(try row.decode(1, as: Int.self)) changed, sum \(try row.decode(2, as: String.self))" }
            let (a, b) = (try digest(expected), try digest(copied))
            guard a == b else { throw KTProvisionError(code: .stepFailed, message: "table \(change.table.name.name) differs after the catch-up (\(a) against \(b))") }
        }
    }
}
