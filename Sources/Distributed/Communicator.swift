import CMPI
import Foundation

/// A failed MPI call or a distributed run that cannot go on; `description` names the rank.
public struct DistributedError: Error, CustomStringConvertible, Sendable {
    public var rank: Int
    public var message: String
    public init(rank: Int, _ message: String) { self.rank = rank; self.message = message }
    public var description: String { "rank \(rank): \(message)" }
}

/// The ranks of a data-parallel run: `size` processes numbered `rank` = 0 ..< size, and the
/// collective operations the trainer needs (sum-allreduce, allgather(v), broadcast, barrier).
///
/// `Communicator.world()` initialises MPI (`MPI_Init_thread`, FUNNELED: only the thread that
/// created it may call it) over `MPI_COMM_WORLD`, with `MPI_ERRORS_RETURN` so a failed call
/// becomes a `DistributedError` naming this rank instead of an abort without a message.
/// `Communicator.single` is one process without MPI: every collective is the identity (a sum
/// over one rank), so the single-process trainer runs the same code. Every rank must call the
/// same collectives in the same order with matching sizes (MPI's rule).
public final class Communicator: @unchecked Sendable {
    /// This process's rank, 0 ..< size.
    public let rank: Int
    /// The number of ranks.
    public let size: Int
    private let comm: MPI_Comm?
    private var finalized = false

    /// Wall-clock seconds spent inside collectives since the last `resetCounters`.
    public private(set) var seconds = 0.0
    /// Bytes this rank sent into collectives (its contribution) since the last `resetCounters`.
    public private(set) var bytesSent = 0
    /// Bytes this rank received from collectives since the last `resetCounters`.
    public private(set) var bytesReceived = 0

    private init(rank: Int, size: Int, comm: MPI_Comm?) {
        self.rank = rank
        self.size = size
        self.comm = comm
    }

    /// One process, no MPI.
    public static let single = Communicator(rank: 0, size: 1, comm: nil)

    /// True when this process was started by `mpirun`/`mpiexec` (OpenMPI's or a PMI launcher's
    /// environment), with the number of processes it started.
    public static var launcherSize: Int? {
        let env = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
            if let value = env[key].flatMap(Int.init) { return value }
        }
        return nil
    }

    /// Initialises MPI once per process and returns `MPI_COMM_WORLD`. Started without
    /// `mpirun`, MPI's singleton start gives one rank.
    public static func world() throws -> Communicator {
        var provided: Int32 = 0
        var argc: Int32 = 0
        var code = MPI_Init_thread(&argc, nil, Int32(MPI_THREAD_FUNNELED), &provided)
        guard code == MPI_SUCCESS else {
            throw DistributedError(rank: -1, "MPI_Init_thread failed (\(errorString(code))); expected to be started by mpirun")
        }
        let world = braid_mpi_comm_world()
        code = MPI_Comm_set_errhandler(world, braid_mpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(world, &rank)
        MPI_Comm_size(world, &size)
        guard provided >= Int32(MPI_THREAD_FUNNELED) else {
            throw DistributedError(rank: Int(rank), "MPI provides thread level \(provided); expected at least MPI_THREAD_FUNNELED")
        }
        return Communicator(rank: Int(rank), size: Int(size), comm: world)
    }

    /// Whether this is rank 0 (the one that logs and writes files).
    public var isRoot: Bool { rank == 0 }

    /// Ends MPI (collective: every rank calls it). Does nothing for `single`.
    public func finalize() {
        guard comm != nil, !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// Ends every rank of the run at once (after an error on this rank), with exit code `code`.
    public func abort(code: Int32 = 1) -> Never {
        if let comm { MPI_Abort(comm, code) }
        exit(code)
    }

    /// Zeroes `seconds`, `bytesSent` and `bytesReceived`.
    public func resetCounters() { seconds = 0; bytesSent = 0; bytesReceived = 0 }

    private static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(cString: buffer)
    }

    private func check(_ code: Int32, _ what: String) throws {
        guard code == MPI_SUCCESS else {
            throw DistributedError(rank: rank, "\(what) failed (\(Self.errorString(code))); another rank probably died: see mpirun's message")
        }
    }

    private func timed(_ body: () throws -> Void) rethrows {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    // MARK: collectives

    /// x[i] = sum over ranks of x[i], in place, for `count` floats, in calls of at most
    /// `bucket` floats taken in order (so every run reduces the same slices the same way).
    public func allreduceSum(_ x: UnsafeMutablePointer<Float>, count: Int, bucket: Int = 1 << 22) throws {
        guard let comm, size > 1, count > 0 else { return }
        try timed {
            var start = 0
            while start < count {
                let n = min(bucket, count - start)
                try check(MPI_Allreduce(braid_mpi_in_place(), x + start, Int32(n), braid_mpi_float(), braid_mpi_sum(), comm), "MPI_Allreduce")
                start += n
            }
        }
        bytesSent += 4 * count
        bytesReceived += 4 * count
    }

    /// x[i] = sum over ranks of x[i], in place (a few doubles: losses, counts).
    public func allreduceSum(_ x: inout [Double]) throws {
        guard let comm, size > 1, !x.isEmpty else { return }
        let n = x.count
        try timed {
            try x.withUnsafeMutableBufferPointer { x in
                try check(MPI_Allreduce(braid_mpi_in_place(), x.baseAddress!, Int32(n), braid_mpi_double(), braid_mpi_sum(), comm), "MPI_Allreduce")
            }
        }
        bytesSent += 8 * n
        bytesReceived += 8 * n
    }

    /// Every rank's `local` (the same count on every rank), concatenated in rank order.
    public func allgather(_ local: [Double]) throws -> [Double] {
        guard let comm, size > 1 else { return local }
        var out = [Double](repeating: 0, count: local.count * size)
        try timed {
            try local.withUnsafeBufferPointer { send in
                try out.withUnsafeMutableBufferPointer { receive in
                    try check(MPI_Allgather(send.baseAddress, Int32(local.count), braid_mpi_double(), receive.baseAddress,
                                            Int32(local.count), braid_mpi_double(), comm), "MPI_Allgather")
                }
            }
        }
        bytesSent += 8 * local.count
        bytesReceived += 8 * out.count
        return out
    }

    /// Every rank's `local`, concatenated in rank order, where rank r sends `counts[r]` values
    /// (every rank passes the same `counts`, e.g. from an `allgather`).
    public func allgatherv<T: MPIScalar>(_ local: [T], counts: [Int]) throws -> [T] {
        precondition(counts.count == size && counts[rank] == local.count,
                     "allgatherv: rank \(rank) sends \(local.count) values but counts say \(counts)")
        guard let comm, size > 1 else { return local }
        let total = counts.reduce(0, +)
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + Int32(counts[r - 1]) }
        let counts32 = counts.map { Int32($0) }
        var out = [T](repeating: T.zero, count: total)
        try timed {
            try local.withUnsafeBufferPointer { send in
                try out.withUnsafeMutableBufferPointer { receive in
                    try check(MPI_Allgatherv(send.baseAddress, Int32(local.count), T.mpiType, receive.baseAddress,
                                             counts32, displacements, T.mpiType, comm), "MPI_Allgatherv")
                }
            }
        }
        bytesSent += MemoryLayout<T>.stride * local.count
        bytesReceived += MemoryLayout<T>.stride * total
        return out
    }

    /// Copies rank `root`'s `count` values at `x` to every other rank's `x`.
    public func broadcast<T: MPIScalar>(_ x: UnsafeMutablePointer<T>, count: Int, root: Int = 0, bucket: Int = 1 << 24) throws {
        guard let comm, size > 1, count > 0 else { return }
        try timed {
            var start = 0
            while start < count {
                let n = min(bucket, count - start)
                try check(MPI_Bcast(x + start, Int32(n), T.mpiType, Int32(root), comm), "MPI_Bcast")
                start += n
            }
        }
        bytesReceived += MemoryLayout<T>.stride * count
    }

    /// Rank `root`'s bytes on every rank (a checkpoint's metadata, a file).
    public func broadcast(_ bytes: inout [UInt8], root: Int = 0) throws {
        guard size > 1 else { return }
        var length = [Double(bytes.count)]
        if rank != root { length[0] = 0 }
        try allreduceSum(&length)
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(length[0])) }
        guard !bytes.isEmpty else { return }
        try bytes.withUnsafeMutableBufferPointer { try broadcast($0.baseAddress!, count: $0.count, root: root) }
    }

    /// Waits until every rank has reached it.
    public func barrier() throws {
        guard let comm, size > 1 else { return }
        try timed { try check(MPI_Barrier(comm), "MPI_Barrier") }
    }
}

/// The element types the collectives move, with their MPI datatype.
public protocol MPIScalar {
    static var mpiType: MPI_Datatype { get }
    static var zero: Self { get }
}

extension Float: MPIScalar {
    public static var mpiType: MPI_Datatype { braid_mpi_float() }
}

extension Double: MPIScalar {
    public static var mpiType: MPI_Datatype { braid_mpi_double() }
}

extension Int32: MPIScalar {
    public static var mpiType: MPI_Datatype { braid_mpi_int32() }
}

extension UInt8: MPIScalar {
    public static var mpiType: MPI_Datatype { braid_mpi_byte() }
}
