public import KTDB

extension MigrationSet {
    /// The graph-db data tables (foreign keys, junction tables, denormalised counters). Applied to
    /// `public` (the default graph) and to every `graph_<slug>` schema, on whichever database
    /// the graph lives. Nothing is qualified with a schema: the migrator sets `search_path`.
    public static let graphData = MigrationSet(
        name: "graph-db", usesTrigram: true,
        migrations: [
            Migration(
                version: 1, name: "graph_data",
                sql: #"""
                    CREATE TABLE \#(GraphTable.nodes) (
                        id uuid PRIMARY KEY,
                        concept varchar(500) NOT NULL,
                        node_type varchar(20) NOT NULL DEFAULT 'concept',
                        entity_subtype varchar(50),
                        parent_id uuid REFERENCES \#(GraphTable.nodes)(id) ON DELETE SET NULL,
                        source_concept_id uuid REFERENCES \#(GraphTable.nodes)(id) ON DELETE SET NULL,
                        stale_after integer NOT NULL DEFAULT 30,
                        update_count integer NOT NULL DEFAULT 0,
                        access_count integer NOT NULL DEFAULT 0,
                        definition text,
                        definition_source varchar(50),
                        definition_generated_at timestamptz,
                        enrichment_status varchar(20),
                        metadata jsonb,
                        visibility varchar(20) NOT NULL DEFAULT 'public',
                        creator_id uuid,
                        fact_count integer NOT NULL DEFAULT 0,
                        edge_count integer NOT NULL DEFAULT 0,
                        child_count integer NOT NULL DEFAULT 0,
                        dimension_count integer NOT NULL DEFAULT 0,
                        convergence_score double precision,
                        attractor varchar(500),
                        filter_id varchar(100),
                        max_content_tokens integer,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_nodes_concept ON \#(GraphTable.nodes) (concept);
                    CREATE INDEX ix_nodes_node_type ON \#(GraphTable.nodes) (node_type);
                    CREATE INDEX ix_nodes_parent_id ON \#(GraphTable.nodes) (parent_id) WHERE parent_id IS NOT NULL;
                    CREATE INDEX ix_nodes_updated_at ON \#(GraphTable.nodes) (updated_at);

                    CREATE TABLE \#(GraphTable.nodeCounters) (
                        node_id uuid PRIMARY KEY REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        access_count integer NOT NULL DEFAULT 0,
                        update_count integer NOT NULL DEFAULT 0,
                        seed_fact_count integer NOT NULL DEFAULT 0
                    );

                    CREATE TABLE \#(GraphTable.edges) (
                        id uuid PRIMARY KEY,
                        source_node_id uuid NOT NULL REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        target_node_id uuid NOT NULL REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        relationship_type varchar(50) NOT NULL,
                        weight double precision NOT NULL DEFAULT 0.5,
                        created_by_query uuid,
                        justification text,
                        weight_source varchar(50),
                        metadata jsonb,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        updated_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_edge_source_target_type UNIQUE (source_node_id, target_node_id, relationship_type)
                    );
                    CREATE INDEX ix_edges_source_node_id ON \#(GraphTable.edges) (source_node_id);
                    CREATE INDEX ix_edges_target_node_id ON \#(GraphTable.edges) (target_node_id);

                    CREATE TABLE \#(GraphTable.dimensions) (
                        id uuid PRIMARY KEY,
                        node_id uuid NOT NULL REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        model_id varchar(200) NOT NULL,
                        content text NOT NULL,
                        confidence double precision,
                        suggested_concepts text[],
                        generated_at timestamptz NOT NULL DEFAULT now(),
                        model_metadata jsonb,
                        batch_index integer NOT NULL DEFAULT 0,
                        fact_count integer NOT NULL DEFAULT 0,
                        is_definitive boolean NOT NULL DEFAULT false
                    );
                    CREATE INDEX ix_dimensions_node_id ON \#(GraphTable.dimensions) (node_id);

                    CREATE TABLE \#(GraphTable.convergenceReports) (
                        id uuid PRIMARY KEY,
                        node_id uuid NOT NULL UNIQUE REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        convergence_score double precision NOT NULL DEFAULT 0,
                        converged_claims text[],
                        recommended_content text,
                        computed_at timestamptz NOT NULL DEFAULT now()
                    );

                    CREATE TABLE \#(GraphTable.divergentClaims) (
                        id uuid PRIMARY KEY,
                        report_id uuid NOT NULL REFERENCES \#(GraphTable.convergenceReports)(id) ON DELETE CASCADE,
                        claim text NOT NULL,
                        model_positions jsonb,
                        divergence_type varchar(50),
                        analysis text
                    );
                    CREATE INDEX ix_divergent_claims_report_id ON \#(GraphTable.divergentClaims) (report_id);

                    CREATE TABLE \#(GraphTable.facts) (
                        id uuid PRIMARY KEY,
                        content text NOT NULL,
                        fact_type varchar(50) NOT NULL,
                        metadata jsonb,
                        created_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_facts_fact_type ON \#(GraphTable.facts) (fact_type);

                    CREATE TABLE \#(GraphTable.rawSources) (
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
                        doi varchar(255)
                    );
                    CREATE INDEX ix_raw_sources_content_hash ON \#(GraphTable.rawSources) (content_hash);
                    CREATE INDEX ix_raw_sources_canonical_url ON \#(GraphTable.rawSources) (canonical_url);
                    CREATE INDEX ix_raw_sources_doi ON \#(GraphTable.rawSources) (doi);

                    CREATE TABLE \#(GraphTable.factSources) (
                        id uuid PRIMARY KEY,
                        fact_id uuid NOT NULL REFERENCES \#(GraphTable.facts)(id) ON DELETE CASCADE,
                        raw_source_id uuid NOT NULL REFERENCES \#(GraphTable.rawSources)(id) ON DELETE CASCADE,
                        context_snippet text,
                        attribution text,
                        author_person varchar(500),
                        author_org varchar(500),
                        CONSTRAINT uq_fact_source UNIQUE (fact_id, raw_source_id)
                    );
                    CREATE INDEX ix_fact_sources_raw_source_id ON \#(GraphTable.factSources) (raw_source_id);

                    CREATE TABLE \#(GraphTable.prohibitedChunks) (
                        id uuid PRIMARY KEY,
                        raw_source_id uuid NOT NULL REFERENCES \#(GraphTable.rawSources)(id) ON DELETE CASCADE,
                        chunk_text text NOT NULL,
                        model_id varchar(200),
                        fallback_model_id varchar(200),
                        error_message text,
                        created_at timestamptz NOT NULL DEFAULT now()
                    );

                    CREATE TABLE \#(GraphTable.nodeFacts) (
                        node_id uuid NOT NULL REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        fact_id uuid NOT NULL REFERENCES \#(GraphTable.facts)(id) ON DELETE CASCADE,
                        relevance_score double precision NOT NULL DEFAULT 1.0,
                        stance varchar(20),
                        linked_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (node_id, fact_id)
                    );
                    CREATE INDEX ix_node_facts_fact_id ON \#(GraphTable.nodeFacts) (fact_id);

                    CREATE TABLE \#(GraphTable.dimensionFacts) (
                        dimension_id uuid NOT NULL REFERENCES \#(GraphTable.dimensions)(id) ON DELETE CASCADE,
                        fact_id uuid NOT NULL REFERENCES \#(GraphTable.facts)(id) ON DELETE CASCADE,
                        PRIMARY KEY (dimension_id, fact_id)
                    );

                    CREATE TABLE \#(GraphTable.edgeFacts) (
                        edge_id uuid NOT NULL REFERENCES \#(GraphTable.edges)(id) ON DELETE CASCADE,
                        fact_id uuid NOT NULL REFERENCES \#(GraphTable.facts)(id) ON DELETE CASCADE,
                        relevance_score double precision NOT NULL DEFAULT 1.0,
                        PRIMARY KEY (edge_id, fact_id)
                    );

                    CREATE TABLE \#(GraphTable.nodeFactRejections) (
                        id uuid PRIMARY KEY,
                        node_id uuid NOT NULL REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        fact_id uuid NOT NULL REFERENCES \#(GraphTable.facts)(id) ON DELETE CASCADE,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_node_fact_rejection UNIQUE (node_id, fact_id)
                    );

                    CREATE TABLE \#(GraphTable.nodeVersions) (
                        id uuid PRIMARY KEY,
                        node_id uuid NOT NULL REFERENCES \#(GraphTable.nodes)(id) ON DELETE CASCADE,
                        version_number integer NOT NULL,
                        snapshot jsonb NOT NULL,
                        source_node_count integer NOT NULL DEFAULT 0,
                        is_default boolean NOT NULL DEFAULT false,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        CONSTRAINT uq_node_version UNIQUE (node_id, version_number)
                    );

                    DO $kt$
                    BEGIN
                        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                            EXECUTE 'CREATE INDEX ix_facts_content_trgm ON \#(GraphTable.facts) USING gin (content public.gin_trgm_ops)';
                            EXECUTE 'CREATE INDEX ix_fact_sources_author_org_trgm ON \#(GraphTable.factSources) USING gin (author_org public.gin_trgm_ops)';
                            EXECUTE 'CREATE INDEX ix_raw_sources_uri_trgm ON \#(GraphTable.rawSources) USING gin (uri public.gin_trgm_ops)';
                            EXECUTE 'CREATE INDEX ix_nodes_concept_trgm ON \#(GraphTable.nodes) USING gin (concept public.gin_trgm_ops)';
                        END IF;
                    END
                    $kt$;
                    """#),
            Migration(
                version: 2, name: "source_counts",
                sql: #"""
                    -- The sync recounts a raw source's prohibited chunks; deleting a raw source cascades to them.
                    CREATE INDEX ix_prohibited_chunks_raw_source_id ON \#(GraphTable.prohibitedChunks) (raw_source_id);
                    """#),
            Migration(
                version: 3, name: "llm_usage",
                sql: #"""
                    -- Synced from write_llm_usage (no foreign keys: usage outlives what it was for).
                    CREATE TABLE \#(GraphTable.llmUsage) (
                        id uuid PRIMARY KEY,
                        conversation_id varchar(100),
                        message_id varchar(100),
                        task_type varchar(100) NOT NULL,
                        workflow_run_id varchar(100),
                        model_id varchar(200) NOT NULL,
                        prompt_tokens integer NOT NULL DEFAULT 0,
                        completion_tokens integer NOT NULL DEFAULT 0,
                        cost_usd double precision,
                        created_at timestamptz NOT NULL DEFAULT now()
                    );
                    CREATE INDEX ix_llm_usage_conversation_id ON \#(GraphTable.llmUsage) (conversation_id) WHERE conversation_id IS NOT NULL;
                    CREATE INDEX ix_llm_usage_created_at ON \#(GraphTable.llmUsage) (created_at);
                    """#),
        ])
}
