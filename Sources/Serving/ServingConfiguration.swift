import Foundation

/// How `braid serve` runs (SPEC 5, 6). Every field has a documented default; the CLI
/// fills it from its flags.
public struct ServingConfiguration: Codable, Sendable, Equatable {
    /// Model directories to load at start (unified models or surface exports). Each surface
    /// must be served by exactly one of them. Empty with a `registry`.
    public var models: [String]
    /// The model registry folder (`ModelRegistry`): `<surface>/<version>/` model directories;
    /// the newest complete version of each surface is served and new ones are swapped in.
    public var registry: String?
    /// How often the registry is scanned for new versions, in milliseconds. Default 1000.
    public var registryPollMilliseconds: Int = 1000
    /// Shadow versions: surface -> a version folder of the registry's surface folder, or a
    /// model directory path. A share of that surface's requests is also scored by it, off
    /// the response path, and compared (`braid_shadow_*` metrics).
    public var shadows: [String: String] = [:]
    /// The share of a shadowed surface's successful requests scored by its shadow, in
    /// [0, 1]. Default 0.1 (every tenth request).
    public var shadowShare: Double = 0.1
    /// Address to bind; default 127.0.0.1 (loopback only).
    public var host: String = "127.0.0.1"
    /// TCP port; default 8080, 0 = an ephemeral port (tests).
    public var port: Int = 8080
    /// Distinct users one scoring batch may hold (SPEC 5); a request over it gets 413.
    /// Micro-batches merge requests only up to this bound. Default 256.
    public var maxUniqueUsers: Int = 256
    /// Largest request body in bytes; larger bodies get 413. Default 8 MiB.
    public var maxBodyBytes: Int = 8 << 20
    /// How long the first request of a micro-batch waits for neighbours, in microseconds.
    /// Default 2000 (2 ms); 0 = score as soon as the engine is free (requests arriving
    /// while a batch is scored still merge into the next batch).
    public var batchWaitMicroseconds: Int = 2000
    /// Most candidate rows one micro-batch merges (a single larger request still runs
    /// alone). Default 4096.
    public var maxBatchCandidates: Int = 4096
    /// Bytes of users' sequence states each loaded model keeps across requests (late and
    /// append fusion, `UserStateCache`): a user whose items and actions an earlier request had
    /// skips the Transformer over its tokens. Default 256 MiB; 0 = no cache.
    public var userCacheBytes: Int = 256 << 20
    /// When set, `POST /admin/reload`, `/admin/rollback` and `/admin/unpin` exist and require
    /// `Authorization: Bearer <token>`; nil (default) = no admin routes.
    public var adminToken: String?

    public init(models: [String], host: String = "127.0.0.1", port: Int = 8080, maxUniqueUsers: Int = 256,
                maxBodyBytes: Int = 8 << 20, batchWaitMicroseconds: Int = 2000, maxBatchCandidates: Int = 4096,
                adminToken: String? = nil, registry: String? = nil, registryPollMilliseconds: Int = 1000,
                shadows: [String: String] = [:], shadowShare: Double = 0.1, userCacheBytes: Int = 256 << 20) {
        self.models = models
        self.registry = registry
        self.registryPollMilliseconds = registryPollMilliseconds
        self.shadows = shadows
        self.shadowShare = shadowShare
        self.host = host
        self.port = port
        self.maxUniqueUsers = maxUniqueUsers
        self.maxBodyBytes = maxBodyBytes
        self.batchWaitMicroseconds = batchWaitMicroseconds
        self.maxBatchCandidates = maxBatchCandidates
        self.adminToken = adminToken
        self.userCacheBytes = userCacheBytes
    }
}

/// A failure of the service that the client or operator should see, with its HTTP status.
public struct ServingError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var message: String
    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { message }
}
