public import KTDB

extension MigrationSet {
    /// The control plane: users, API tokens, graphs, database connections and members. Applied
    /// only to the `public` schema of the system graph-db; it seeds the default graph row.
    public static let controlPlane = MigrationSet(
        name: "control-plane",
        migrations: [
            Migration(
                version: 1, name: "control_plane",
                sql: #"""
                    CREATE TABLE "user" (
                        id uuid PRIMARY KEY,
                        email varchar(320) NOT NULL,
                        hashed_password varchar(1024) NOT NULL DEFAULT '',
                        is_active boolean NOT NULL DEFAULT true,
                        is_superuser boolean NOT NULL DEFAULT false,
                        is_verified boolean NOT NULL DEFAULT false,
                        display_name varchar(200),
                        encrypted_openrouter_key text,
                        created_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE UNIQUE INDEX ix_user_email ON "user" (email);

                    CREATE TABLE api_tokens (
                        id uuid PRIMARY KEY,
                        user_id uuid NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
                        name varchar(200) NOT NULL,
                        token_hash varchar(128) NOT NULL,
                        graph_slugs varchar(100)[],
                        created_at timestamptz NOT NULL DEFAULT now(),
                        last_used_at timestamptz,
                        expires_at timestamptz
                    );
                    CREATE UNIQUE INDEX ix_api_tokens_token_hash ON api_tokens (token_hash);
                    CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);

                    CREATE TABLE database_connections (
                        id uuid PRIMARY KEY,
                        name varchar(200) NOT NULL,
                        config_key varchar(200) NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_database_connections_name UNIQUE (name),
                        CONSTRAINT uq_database_connections_config_key UNIQUE (config_key),
                        CONSTRAINT ck_database_connections_not_default CHECK (config_key <> 'default')
                    );

                    CREATE TABLE graphs (
                        id uuid PRIMARY KEY,
                        slug varchar(100) NOT NULL,
                        name varchar(200) NOT NULL,
                        description text,
                        is_default boolean NOT NULL DEFAULT false,
                        contribute_to_public boolean NOT NULL DEFAULT true,
                        use_public_cache boolean NOT NULL DEFAULT true,
                        graph_type varchar(20) NOT NULL DEFAULT 'v1',
                        byok_enabled boolean NOT NULL DEFAULT false,
                        storage_mode varchar(20) NOT NULL DEFAULT 'schema',
                        schema_name varchar(100) NOT NULL DEFAULT 'public',
                        database_connection_id uuid REFERENCES database_connections(id) ON DELETE SET NULL,
                        status varchar(20) NOT NULL DEFAULT 'provisioning',
                        created_by uuid REFERENCES "user"(id) ON DELETE SET NULL,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT ck_graphs_status CHECK (status IN ('provisioning', 'active', 'error', 'deleted'))
                    );
                    CREATE UNIQUE INDEX ix_graphs_slug ON graphs (slug);
                    CREATE UNIQUE INDEX uq_graphs_single_default ON graphs (is_default) WHERE is_default;

                    CREATE TABLE graph_members (
                        id uuid PRIMARY KEY,
                        graph_id uuid NOT NULL REFERENCES graphs(id) ON DELETE CASCADE,
                        user_id uuid NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
                        role varchar(20) NOT NULL DEFAULT 'reader',
                        created_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_graph_member UNIQUE (graph_id, user_id),
                        CONSTRAINT ck_graph_members_role CHECK (role IN ('reader', 'writer', 'admin'))
                    );
                    CREATE INDEX ix_graph_members_graph_id ON graph_members (graph_id);
                    CREATE INDEX ix_graph_members_user_id ON graph_members (user_id);

                    INSERT INTO graphs (id, slug, name, is_default, storage_mode, schema_name, status)
                    VALUES ('00000000-0000-0000-0000-000000000001', 'default', 'Default Graph', true, 'schema', 'public', 'active')
                    ON CONFLICT (slug) DO NOTHING;
                    """#),
            Migration(
                version: 2, name: "graph_changes_and_provisioning_lease",
                sql: #"""
                    -- Who is provisioning a graph, and when it last said so: a process that recovers
                    -- interrupted provisioning leaves alone a graph whose provisioner is alive.
                    ALTER TABLE graphs
                        ADD COLUMN provisioning_owner uuid,
                        ADD COLUMN provisioning_heartbeat_at timestamptz;

                    -- Every change that can make another process's cached sessions of a graph stale, written
                    -- by triggers (so any writer, even manual SQL, is seen); processes poll it through
                    -- their pool (no LISTEN, so it works through a transaction-mode pooler too).
                    CREATE TABLE graph_changes (
                        id bigserial PRIMARY KEY,
                        graph_id uuid NOT NULL,
                        slug varchar(100) NOT NULL,
                        change varchar(10) NOT NULL,
                        changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
                    );
                    CREATE INDEX ix_graph_changes_changed_at ON graph_changes (changed_at);

                    CREATE FUNCTION kt_record_graph_change() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        INSERT INTO graph_changes (graph_id, slug, change) VALUES (OLD.id, OLD.slug, lower(TG_OP));
                        RETURN NULL;
                    END
                    $$;
                    CREATE TRIGGER graphs_changed AFTER UPDATE ON graphs FOR EACH ROW
                        WHEN ((OLD.slug, OLD.name, OLD.description, OLD.status, OLD.schema_name, OLD.database_connection_id,
                               OLD.contribute_to_public, OLD.use_public_cache, OLD.graph_type, OLD.byok_enabled)
                              IS DISTINCT FROM
                              (NEW.slug, NEW.name, NEW.description, NEW.status, NEW.schema_name, NEW.database_connection_id,
                               NEW.contribute_to_public, NEW.use_public_cache, NEW.graph_type, NEW.byok_enabled))
                        EXECUTE FUNCTION kt_record_graph_change();
                    CREATE TRIGGER graphs_deleted AFTER DELETE ON graphs FOR EACH ROW
                        EXECUTE FUNCTION kt_record_graph_change();
                    """#),
            Migration(
                version: 3, name: "graph_schema_error",
                sql: #"""
                    -- Why a graph's schemas are not at head: the failure of the last migrate-all that
                    -- tried them (its routes answer 503 with it), NULL once they are migrated.
                    ALTER TABLE graphs ADD COLUMN schema_error text;
                    """#),
            Migration(
                version: 4, name: "provisioning_progress_console_sessions",
                sql: #"""
                    -- What provisioning has done so far (step names, in order) and why it failed, so any
                    -- process can show a graph's progress; both are reset when a retry starts.
                    ALTER TABLE graphs ADD COLUMN provisioning_steps text[] NOT NULL DEFAULT '{}',
                                       ADD COLUMN provisioning_error text;
                    -- Web console sign-ins: the cookie holds a random id, the row its SHA-256 digest, the
                    -- API token it was made from (revoking the token ends the session) and the CSRF token
                    -- the session's forms carry.
                    CREATE TABLE console_sessions (
                        id_hash text PRIMARY KEY,
                        token_id uuid NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
                        csrf_token text NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        expires_at timestamptz NOT NULL
                    );
                    CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
                    CREATE INDEX console_sessions_token_id ON console_sessions (token_id);
                    """#),
            Migration(
                version: 5, name: "graph_moves",
                sql: #"""
                    -- A graph moving to another database pair: status 'moving' (it keeps serving from its
                    -- source until the switch), the target's connection key ('default': the system pair)
                    -- and the move's phase, so any process can show it and a later run resumes it.
                    ALTER TABLE graphs DROP CONSTRAINT ck_graphs_status;
                    ALTER TABLE graphs ADD CONSTRAINT ck_graphs_status CHECK (status IN ('provisioning', 'active', 'error', 'deleted', 'moving'));
                    ALTER TABLE graphs ADD COLUMN move_target text, ADD COLUMN move_phase text;
                    """#),
            Migration(
                version: 6, name: "graph_move_sources",
                sql: #"""
                    -- After a move's switch: the pair the graph left ('default': the system pair), until
                    -- its schemas and collections there are dropped (a process killed in between leaves
                    -- it for the next move, or a resumed one, to drop).
                    ALTER TABLE graphs ADD COLUMN move_source text;
                    """#),
        ])
}
