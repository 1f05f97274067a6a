import Foundation

/// How `braid serve` runs (SPEC 5, 6). Every field has a documented default; the CLI
/// fills it from its flags.
public struct ServingConfiguration: Codable, Sendable, Equatable {
    /// Model directories to load at start (unified models or surface exports). Each surface
    /// must be served by exactly one of them.
    public var models: [String]
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
    /// When set, `POST /admin/reload` and `POST /admin/rollback` exist and require
    /// `Authorization: Bearer <token>`; nil (default) = no admin routes.
    public var adminToken: String?

    public init(models: [String], host: String = "127.0.0.1", port: Int = 8080, maxUniqueUsers: Int = 256,
                maxBodyBytes: Int = 8 << 20, batchWaitMicroseconds: Int = 2000, maxBatchCandidates: Int = 4096,
                adminToken: String? = nil) {
        self.models = models
        self.host = host
        self.port = port
        self.maxUniqueUsers = maxUniqueUsers
        self.maxBodyBytes = maxBodyBytes
        self.batchWaitMicroseconds = batchWaitMicroseconds
        self.maxBatchCandidates = maxBatchCandidates
        self.adminToken = adminToken
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
