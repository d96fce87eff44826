public import KTDB

extension MigrationSet {
    /// The write-db tables: deterministic TEXT keys, no foreign keys, an indexed `updated_at`
    /// for the sync watermarks, plus `sync_watermarks`, `sync_failures` and the seed tables.
    /// Applied to `public` of the system write-db and to every `graph_<slug>` schema.
    public static let writeData = MigrationSet(
        name: "write-db", usesTrigram: true,
        migrations: [
            Migration(
                version: 1, name: "write_data",
                sql: #"""
                    CREATE TABLE \#(WriteTable.nodes) (
                        key varchar(500) PRIMARY KEY,
                        node_uuid uuid NOT NULL UNIQUE,
                        concept varchar(500) NOT NULL,
                        node_type varchar(20) NOT NULL DEFAULT 'concept',
                        entity_subtype varchar(50),
                        parent_key varchar(500),
                        source_concept_key varchar(500),
                        definition text,
                        definition_source varchar(50),
                        attractor varchar(500),
                        filter_id varchar(100),
                        max_content_tokens integer,
                        stale_after integer NOT NULL DEFAULT 30,
                        fact_ids text[] NOT NULL DEFAULT '{}',
                        enrichment_status varchar(20),
                        facts_at_last_build integer NOT NULL DEFAULT 0,
                        metadata jsonb,
                        visibility varchar(20) NOT NULL DEFAULT 'public',
                        creator_id varchar(36),
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_nodes_updated_at ON \#(WriteTable.nodes) (updated_at);
                    CREATE INDEX ix_write_nodes_parent_key ON \#(WriteTable.nodes) (parent_key);
                    CREATE INDEX ix_write_nodes_fact_ids_gin ON \#(WriteTable.nodes) USING gin (fact_ids);

                    CREATE TABLE \#(WriteTable.edges) (
                        key varchar(1200) PRIMARY KEY,
                        source_node_key varchar(500) NOT NULL,
                        target_node_key varchar(500) NOT NULL,
                        relationship_type varchar(50) NOT NULL,
                        weight double precision NOT NULL DEFAULT 0.5,
                        justification text,
                        weight_source varchar(50),
                        fact_ids text[] NOT NULL DEFAULT '{}',
                        metadata jsonb,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_edges_source_node_key ON \#(WriteTable.edges) (source_node_key);
                    CREATE INDEX ix_write_edges_target_node_key ON \#(WriteTable.edges) (target_node_key);
                    CREATE INDEX ix_write_edges_updated_at ON \#(WriteTable.edges) (updated_at);

                    CREATE TABLE \#(WriteTable.dimensions) (
                        key varchar(800) PRIMARY KEY,
                        node_key varchar(500) NOT NULL,
                        model_id varchar(200) NOT NULL,
                        content text NOT NULL,
                        confidence double precision,
                        suggested_concepts text[],
                        batch_index integer NOT NULL DEFAULT 0,
                        fact_count integer NOT NULL DEFAULT 0,
                        is_definitive boolean NOT NULL DEFAULT false,
                        fact_ids text[] NOT NULL DEFAULT '{}',
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_dimensions_node_key ON \#(WriteTable.dimensions) (node_key);
                    CREATE INDEX ix_write_dimensions_updated_at ON \#(WriteTable.dimensions) (updated_at);

                    CREATE TABLE \#(WriteTable.facts) (
                        id uuid PRIMARY KEY,
                        content text NOT NULL,
                        fact_type varchar(50) NOT NULL,
                        metadata jsonb,
                        dedup_status varchar(16) NOT NULL DEFAULT 'ready',
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_facts_updated_at ON \#(WriteTable.facts) (updated_at);
                    CREATE INDEX ix_write_facts_dedup_pending ON \#(WriteTable.facts) (created_at) WHERE dedup_status IN ('pending', 'in_progress');

                    CREATE TABLE \#(WriteTable.factSources) (
                        id uuid PRIMARY KEY,
                        fact_id uuid NOT NULL,
                        raw_source_uri varchar(2000) NOT NULL,
                        raw_source_title text,
                        raw_source_content_hash varchar(64),
                        raw_source_provider_id varchar(100),
                        context_snippet text,
                        attribution text,
                        author_person varchar(500),
                        author_org varchar(500),
                        access_groups text[],
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_fact_sources_fact_id ON \#(WriteTable.factSources) (fact_id);
                    CREATE INDEX ix_write_fact_sources_updated_at ON \#(WriteTable.factSources) (updated_at);

                    CREATE TABLE \#(WriteTable.rawSources) (
                        id uuid PRIMARY KEY,
                        uri varchar(2000) NOT NULL,
                        title text,
                        raw_content text,
                        content_hash varchar(64),
                        is_full_text boolean NOT NULL DEFAULT false,
                        content_type varchar(100),
                        provider_id varchar(100),
                        retrieved_at timestamptz NOT NULL DEFAULT now(),
                        provider_metadata jsonb,
                        fact_count integer NOT NULL DEFAULT 0,
                        prohibited_chunk_count integer NOT NULL DEFAULT 0,
                        is_super_source boolean NOT NULL DEFAULT false,
                        fetch_attempted boolean NOT NULL DEFAULT false,
                        fetch_error text,
                        access_groups text[],
                        canonical_url varchar(2000),
                        doi varchar(255),
                        contributed_to_public_at timestamptz,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE UNIQUE INDEX ix_write_raw_sources_content_hash ON \#(WriteTable.rawSources) (content_hash);
                    CREATE INDEX ix_write_raw_sources_uri ON \#(WriteTable.rawSources) (uri);
                    CREATE INDEX ix_write_raw_sources_canonical_url ON \#(WriteTable.rawSources) (canonical_url);
                    CREATE INDEX ix_write_raw_sources_doi ON \#(WriteTable.rawSources) (doi);
                    CREATE INDEX ix_write_raw_sources_updated_at ON \#(WriteTable.rawSources) (updated_at);

                    CREATE TABLE \#(WriteTable.prohibitedChunks) (
                        id uuid PRIMARY KEY,
                        source_content_hash varchar(64) NOT NULL,
                        chunk_text text NOT NULL,
                        model_id varchar(200),
                        fallback_model_id varchar(200),
                        error_message text,
                        fallback_error text,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_prohibited_chunks_hash ON \#(WriteTable.prohibitedChunks) (source_content_hash);

                    CREATE TABLE \#(WriteTable.convergenceReports) (
                        node_key varchar(500) PRIMARY KEY,
                        convergence_score double precision NOT NULL DEFAULT 0,
                        converged_claims text[],
                        recommended_content text,
                        computed_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_convergence_reports_updated_at ON \#(WriteTable.convergenceReports) (updated_at);

                    CREATE TABLE \#(WriteTable.divergentClaims) (
                        id uuid PRIMARY KEY,
                        node_key varchar(500) NOT NULL,
                        claim text NOT NULL,
                        model_positions jsonb,
                        divergence_type varchar(50),
                        analysis text,
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_divergent_claims_node_key ON \#(WriteTable.divergentClaims) (node_key);

                    CREATE TABLE \#(WriteTable.nodeCounters) (
                        node_key varchar(500) PRIMARY KEY,
                        access_count integer NOT NULL DEFAULT 0,
                        update_count integer NOT NULL DEFAULT 0,
                        seed_fact_count integer NOT NULL DEFAULT 0,
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_node_counters_updated_at ON \#(WriteTable.nodeCounters) (updated_at);

                    CREATE TABLE \#(WriteTable.nodeFactRejections) (
                        id uuid PRIMARY KEY,
                        node_id uuid NOT NULL,
                        fact_id uuid NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_write_node_fact_rejection UNIQUE (node_id, fact_id)
                    );

                    CREATE TABLE \#(WriteTable.nodeVersions) (
                        id uuid PRIMARY KEY,
                        node_key varchar(500) NOT NULL,
                        version_number integer NOT NULL,
                        snapshot jsonb NOT NULL,
                        source_node_count integer NOT NULL DEFAULT 0,
                        is_default boolean NOT NULL DEFAULT false,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_write_node_version UNIQUE (node_key, version_number)
                    );

                    CREATE TABLE \#(WriteTable.seeds) (
                        key varchar(500) PRIMARY KEY,
                        seed_uuid uuid NOT NULL UNIQUE,
                        name varchar(500) NOT NULL,
                        node_type varchar(20) NOT NULL DEFAULT 'concept',
                        entity_subtype varchar(50),
                        status varchar(20) NOT NULL DEFAULT 'pending',
                        merged_into_key varchar(500),
                        promoted_node_key varchar(500),
                        fact_count integer NOT NULL DEFAULT 0,
                        phonetic_code varchar(100),
                        context_hash varchar(64),
                        aliases varchar(500)[] NOT NULL DEFAULT '{}',
                        metadata jsonb,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT ck_write_seeds_status CHECK (status IN ('pending', 'active', 'ambiguous', 'promoted', 'merged'))
                    );
                    CREATE INDEX ix_write_seeds_aliases_gin ON \#(WriteTable.seeds) USING gin (aliases);
                    CREATE INDEX ix_write_seeds_status ON \#(WriteTable.seeds) (status);

                    CREATE TABLE \#(WriteTable.seedFacts) (
                        id uuid PRIMARY KEY,
                        seed_key varchar(500) NOT NULL,
                        fact_id uuid NOT NULL,
                        confidence double precision NOT NULL DEFAULT 1.0,
                        extraction_context text,
                        extraction_role varchar(30) NOT NULL DEFAULT 'mentioned',
                        created_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_write_seed_fact UNIQUE (seed_key, fact_id)
                    );

                    CREATE TABLE \#(WriteTable.edgeCandidates) (
                        id uuid PRIMARY KEY,
                        seed_key_a varchar(500) NOT NULL,
                        seed_key_b varchar(500) NOT NULL,
                        fact_id varchar(36) NOT NULL,
                        status varchar(20) NOT NULL DEFAULT 'pending',
                        discovery_strategy varchar(50),
                        evaluation_result jsonb,
                        last_evaluated_at timestamptz,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_write_edge_candidate UNIQUE (seed_key_a, seed_key_b, fact_id)
                    );

                    CREATE TABLE \#(WriteTable.seedMerges) (
                        id uuid PRIMARY KEY,
                        operation varchar(20) NOT NULL,
                        source_seed_key varchar(500) NOT NULL,
                        target_seed_key varchar(500) NOT NULL,
                        reason text,
                        fact_ids_moved text[] NOT NULL DEFAULT '{}',
                        created_at timestamptz NOT NULL DEFAULT now()
                    );

                    CREATE TABLE \#(WriteTable.seedRoutes) (
                        id uuid PRIMARY KEY,
                        parent_seed_key varchar(500) NOT NULL,
                        child_seed_key varchar(500) NOT NULL,
                        label varchar(500),
                        ambiguity_type varchar(20) NOT NULL DEFAULT 'text',
                        created_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_write_seed_route UNIQUE (parent_seed_key, child_seed_key)
                    );

                    CREATE TABLE \#(WriteTable.syncWatermarks) (
                        table_name varchar(100) NOT NULL,
                        graph_slug varchar(100) NOT NULL DEFAULT 'default',
                        last_synced_at timestamptz NOT NULL,
                        PRIMARY KEY (table_name, graph_slug)
                    );

                    CREATE TABLE \#(WriteTable.syncFailures) (
                        id uuid PRIMARY KEY,
                        table_name varchar(100) NOT NULL,
                        record_key varchar(1200) NOT NULL,
                        error_message text,
                        retry_count integer NOT NULL DEFAULT 0,
                        status varchar(20) NOT NULL DEFAULT 'pending',
                        graph_slug varchar(100) NOT NULL DEFAULT 'default',
                        next_retry_at timestamptz,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT ck_sync_failures_status CHECK (status IN ('pending', 'abandoned'))
                    );
                    CREATE INDEX ix_sync_failures_next_retry_at ON \#(WriteTable.syncFailures) (next_retry_at);

                    DO $kt$
                    BEGIN
                        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                            EXECUTE 'CREATE INDEX ix_write_nodes_concept_trgm ON \#(WriteTable.nodes) USING gin (concept public.gin_trgm_ops)';
                            EXECUTE 'CREATE INDEX ix_write_facts_content_trgm ON \#(WriteTable.facts) USING gin (content public.gin_trgm_ops)';
                        END IF;
                    END
                    $kt$;
                    """#),
            Migration(
                version: 2, name: "sync_tombstones",
                sql: #"""
                    CREATE TABLE \#(WriteTable.tombstones) (
                        id bigserial PRIMARY KEY,
                        table_name varchar(100) NOT NULL,
                        record_key varchar(1200) NOT NULL,
                        deleted_at timestamptz NOT NULL DEFAULT clock_timestamp()
                    );
                    CREATE INDEX ix_write_tombstones_deleted_at ON \#(WriteTable.tombstones) (deleted_at);

                    CREATE FUNCTION kt_record_tombstone() RETURNS trigger LANGUAGE plpgsql AS $kt$
                    BEGIN
                        EXECUTE format('INSERT INTO %I.\#(WriteTable.tombstones) (table_name, record_key) VALUES ($1, $2)', TG_TABLE_SCHEMA)
                            USING TG_TABLE_NAME, CASE WHEN TG_TABLE_NAME = '\#(WriteTable.facts)' THEN to_jsonb(OLD) ->> 'id' ELSE to_jsonb(OLD) ->> 'key' END;
                        RETURN OLD;
                    END
                    $kt$;
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.nodes) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.edges) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.dimensions) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.facts) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE UNIQUE INDEX uq_sync_failures_record ON \#(WriteTable.syncFailures) (table_name, record_key, graph_slug);
                    -- node_uuid and seed_uuid are uuid5 of the primary key, so the key already makes them
                    -- unique; a second unique index only made two concurrent upserts of the same new key
                    -- fail on it (ON CONFLICT handles one arbiter index) instead of merging.
                    ALTER TABLE \#(WriteTable.nodes) DROP CONSTRAINT write_nodes_node_uuid_key;
                    CREATE INDEX ix_write_nodes_node_uuid ON \#(WriteTable.nodes) (node_uuid);
                    ALTER TABLE \#(WriteTable.seeds) DROP CONSTRAINT write_seeds_seed_uuid_key;
                    CREATE INDEX ix_write_seeds_seed_uuid ON \#(WriteTable.seeds) (seed_uuid);
                    """#),
            Migration(
                version: 3, name: "sync_lookup_indexes",
                sql: #"""
                    -- The set-based sync looks dependents up by these columns, a batch of keys at a time.
                    CREATE INDEX ix_write_nodes_source_concept_key ON \#(WriteTable.nodes) (source_concept_key);
                    CREATE INDEX ix_write_edges_fact_ids_gin ON \#(WriteTable.edges) USING gin (fact_ids);
                    CREATE INDEX ix_write_dimensions_fact_ids_gin ON \#(WriteTable.dimensions) USING gin (fact_ids);
                    """#),
            Migration(
                version: 4, name: "sync_sources_reports_versions",
                sql: #"""
                    -- The sync copies raw sources, fact sources, prohibited chunks, convergence reports,
                    -- node counters and node versions too; their deletions leave tombstones, and a raw
                    -- source arriving in graph-db finds the fact sources and chunks that cite it.
                    CREATE OR REPLACE FUNCTION kt_record_tombstone() RETURNS trigger LANGUAGE plpgsql AS $kt$
                    BEGIN
                        EXECUTE format('INSERT INTO %I.\#(WriteTable.tombstones) (table_name, record_key) VALUES ($1, $2)', TG_TABLE_SCHEMA)
                            USING TG_TABLE_NAME, CASE
                                WHEN TG_TABLE_NAME IN ('\#(WriteTable.nodes)', '\#(WriteTable.edges)', '\#(WriteTable.dimensions)') THEN to_jsonb(OLD) ->> 'key'
                                WHEN TG_TABLE_NAME IN ('\#(WriteTable.convergenceReports)', '\#(WriteTable.nodeCounters)') THEN to_jsonb(OLD) ->> 'node_key'
                                ELSE to_jsonb(OLD) ->> 'id' END;
                        RETURN OLD;
                    END
                    $kt$;
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.rawSources) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.factSources) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.prohibitedChunks) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.convergenceReports) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.nodeCounters) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.nodeVersions) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    CREATE INDEX ix_write_prohibited_chunks_updated_at ON \#(WriteTable.prohibitedChunks) (updated_at);
                    CREATE INDEX ix_write_node_versions_updated_at ON \#(WriteTable.nodeVersions) (updated_at);
                    CREATE INDEX ix_write_fact_sources_content_hash ON \#(WriteTable.factSources) (raw_source_content_hash);
                    CREATE INDEX ix_write_fact_sources_uri ON \#(WriteTable.factSources) (raw_source_uri);
                    """#),
            Migration(
                version: 5, name: "llm_usage",
                sql: #"""
                    -- Token usage and cost per model call, synced to graph-db after everything else.
                    -- Conversation and message ids are kept as the caller's text (the original mapped
                    -- non-UUID ids to UUIDs, which could not be read back).
                    CREATE TABLE \#(WriteTable.llmUsage) (
                        id uuid PRIMARY KEY,
                        conversation_id varchar(100),
                        message_id varchar(100),
                        task_type varchar(100) NOT NULL,
                        workflow_run_id varchar(100),
                        model_id varchar(200) NOT NULL,
                        prompt_tokens integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
                        completion_tokens integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
                        cost_usd double precision CHECK (cost_usd >= 0),
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_write_llm_usage_updated_at ON \#(WriteTable.llmUsage) (updated_at);
                    CREATE TRIGGER kt_tombstone AFTER DELETE ON \#(WriteTable.llmUsage) FOR EACH ROW EXECUTE FUNCTION kt_record_tombstone();
                    """#),
        ])
}
