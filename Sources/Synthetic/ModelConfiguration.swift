import JSON

extension SyntheticGenerator {
    /// Hash buckets for `count` distinct ids: 8 per id (about 6% of ids share a bucket),
    /// at least 64.
    public static func buckets(forDistinctValues count: Int) -> Int { max(64, 8 * count) }

    /// Buckets of the `category` table (pin categories pc0..pc31): `ad_category` and the
    /// sequence items share it, so the sequence's item table is the candidate's category.
    static let categoryBuckets = buckets(forDistinctValues: World.topicCount * World.finePerTopic)

    /// The SPEC 2.8 model config for this data set: the SPEC 1.1 schema of the columns
    /// that generalise (the id columns `user_id`, `ad_id`, `advertiser_id` are written but
    /// left out: at ~16 rows per user and ~30 per ad their embeddings memorise the
    /// training labels within the first epoch and lower test AUC; add them back for
    /// data sets with many rows per id), a model sized for 2 CPU cores,
    /// early fusion (the most accurate on this data: the Transformer sees the candidate's
    /// category beside each action; `late` and `append` score faster, see
    /// docs/PERFORMANCE.md "Fusion modes"), recent_k 8 (the truth's recent window), empty
    /// `dense_stats` and `calibration` (training fits them).
    public func modelConfigurationJSON() -> String {
        typealias J = JSONValue
        func categorical(_ name: String, _ side: String, _ buckets: Int, table: String? = nil,
                         multi: String? = nil, surfaces: [String]? = nil) -> J {
            var members: [(key: String, value: J)] = [("name", .string(name)), ("side", .string(side)), ("buckets", .integer(buckets))]
            if let table { members.append(("table", .string(table))) }
            if let multi { members.append(("multi", .string(multi))) }
            if let surfaces { members.append(("surfaces", .array(surfaces.map { .string($0) }))) }
            return .object(members)
        }
        func dense(_ name: String, _ side: String, _ transform: String, surfaces: [String]? = nil) -> J {
            var members: [(key: String, value: J)] = [("name", .string(name)), ("side", .string(side)), ("transform", .string(transform))]
            if let surfaces { members.append(("surfaces", .array(surfaces.map { .string($0) }))) }
            return .object(members)
        }
        let surfaces = Self.surfaces
        let schema: J = .object([
            ("surfaces", .array(surfaces.map { .string($0) })),
            ("tasks", .object(surfaces.map { ($0, .array(Self.tasks[$0]!.map { .string($0) })) })),
            ("categorical", .array([
                categorical("user_country", "user", 256),
                categorical("ad_category", "candidate", Self.categoryBuckets, table: "category"),
                categorical("query_tokens", "context",
                            Self.buckets(forDistinctValues: World.topicCount * World.wordsPerTopic),
                            multi: "mean", surfaces: ["search"]),
                categorical("context_pin_cat", "context",
                            Self.buckets(forDistinctValues: World.topicCount * World.finePerTopic),
                            surfaces: ["related_pins"]),
            ])),
            ("dense", .array([
                dense("ad_hist_ctr", "candidate", "standardize"),
                dense("position", "context", "log1p"),
                dense("query_ad_sim", "context", "standardize", surfaces: ["search"]),
            ])),
            ("sequence", .object([
                ("items", .string("seq_items")), ("actions", .string("seq_actions")), ("max_length", .integer(64)),
                ("action_types", .integer(8)), ("item_table", .string("category")),
            ])),
        ])
        let model: J = .object([
            ("embedding_dim", .integer(16)),
            ("sequence", .object([
                ("fusion", .string("early")), ("d_model", .integer(32)), ("n_heads", .integer(2)),
                ("n_layers", .integer(2)), ("d_ff", .integer(64)), ("recent_k", .integer(8)),
                ("proj_rank", .integer(32)), ("proj_dim", .integer(32)),
            ])),
            ("cross_layers", .integer(3)), ("cross_rank", .integer(32)),
            ("deep", .array([.integer(256), .integer(128)])),
            ("experts", .integer(4)), ("expert_layers", .array([.integer(128)])),
            ("tower_layers", .array([.integer(64)])), ("module_layers", .array([.integer(32)])),
            ("task_weights", .object([("click", .number(1)), ("save", .number(1))])),
            ("calibration_mode", .string("surface")),
        ])
        let config: J = .object([
            ("format", .string("braid-model")), ("version", .integer(1)),
            ("schema", schema), ("model", model),
            ("dense_stats", .object([])), ("calibration", .object([])),
            ("surfaces_included", .array(surfaces.map { .string($0) })),
        ])
        return config.serialized(lineWidth: 120) + "\n"
    }
}
