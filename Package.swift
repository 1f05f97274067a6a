// swift-tools-version: 6.1
// Braid: one engagement model for every ad surface. Targets are layers with
// one-way dependencies; see docs/ARCHITECTURE.md for the map.
import PackageDescription

let package = Package(
    name: "Braid",
    products: [
        .executable(name: "braid", targets: ["braid"]),
        .library(name: "BraidCore", targets: ["Model", "Training", "Data", "Checkpoint", "Metrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // OpenBLAS's cblas.h, nothing else.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // OpenMPI's mpi.h (system library via pkg-config ompi-c), wrapped in a shim for Swift.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        // Free functions over contiguous Float buffers; naive twins in Kernels/Reference.
        .target(name: "Kernels", dependencies: ["CBLAS"]),
        // Tensor, reverse-mode tape, one gradient rule per primitive.
        .target(name: "Tensors", dependencies: ["Kernels"]),
        // Layers: Linear, MLP, LayerNorm, attention, Transformer blocks, cross layers.
        .target(name: "NN", dependencies: ["Kernels", "Tensors"]),
        // Seeded generators (SplitMix64, xoshiro256**): shuffles, sampling, initial weights, generated data.
        .target(name: "Random"),
        // Plain-text table cells (`pad`), for every table Braid prints.
        .target(name: "TextTable"),
        // The one JSON value (ordered keys, exact integers), its parser (CPython's messages)
        // and writer (compact, Python's indent layout and dialect, SPEC 2.8's wrapped layout).
        .target(name: "JSON"),
        // model.json: schema (SPEC 1.1) and model config (SPEC 2.8), validation.
        .target(name: "Schema", dependencies: ["JSON"]),
        // SPEC 1.2-1.4: hashing, CSV reader with exact errors, encoding, batches, binary cache.
        .target(name: "Data", dependencies: ["Schema", "Random", "JSON"]),
        // `braid generate`: synthetic multi-surface data with ground truth.
        .target(name: "Synthetic", dependencies: ["Random", "JSON", "TextTable"]),
        // safetensors (SPEC 3) and write-once model directories.
        .target(name: "Checkpoint", dependencies: ["JSON"]),
        // SPEC 4 metrics and SPEC 2.7 Platt calibration (fitting Schema's PlattPair), float64, pure.
        .target(name: "Metrics", dependencies: ["Schema", "JSON"]),
        // Adam (dense block) and sparse Adagrad (embedding rows), routed by parameter name.
        .target(name: "Optim", dependencies: ["Kernels", "Tensors", "NN"]),
        // MPI ranks and collectives (CMPI: OpenMPI's mpi.h); the data-parallel gradient exchange (bucketed dense allreduce, sparse allgatherv).
        .target(name: "Distributed", dependencies: ["CMPI", "Tensors", "NN"]),
        // The unified model of SPEC 2 composed of named parts.
        .target(name: "Model", dependencies: ["Tensors", "NN", "Data", "Schema", "Checkpoint", "Random", "JSON"]),
        // Train / eval / calibrate / predict loops and reports.
        .target(name: "Training", dependencies: [
            "Kernels", "Tensors", "NN", "Model", "Optim", "Metrics", "Data", "Schema", "Checkpoint", "JSON", "TextTable", "Distributed",
        ]),
        // SPEC 5 request encoding and the tape-free scoring engine with request-level broadcasting.
        .target(name: "Inference", dependencies: ["Kernels", "Tensors", "Model", "Data", "Schema", "JSON"]),
        // Hummingbird app: routes, micro-batching, model registry and lifecycle, shadow scoring,
        // metrics through swift-metrics into a swift-prometheus registry (SPEC 5).
        // swift-metrics (via Hummingbird) also has a module named Metrics: aliased away.
        .target(name: "Serving", dependencies: [
            "Inference", "Model", "Data", "Schema", "Checkpoint", "JSON",
            .product(name: "Hummingbird", package: "hummingbird", moduleAliases: ["Metrics": "SwiftMetrics"]),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // ONNX export of a surface model: onnx.proto's generated Swift (scripts/gen_onnx_swift.sh) + graph builder.
        .target(name: "ONNX", dependencies: [
            "Tensors", "NN", "Model", "Data", "Schema", "Checkpoint", "JSON", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // The subcommands, as a library so tests can read their help and errors.
        .target(name: "BraidCLI", dependencies: [
            "CBLAS", "Kernels", "Tensors", "Optim", "Random", "TextTable", "JSON", "Schema", "Data", "Synthetic", "Checkpoint",
            "Metrics", "Model", "Training", "Inference", "Serving", "ONNX", "Distributed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird", moduleAliases: ["Metrics": "SwiftMetrics"]),
        ]),
        .executableTarget(name: "braid", dependencies: ["BraidCLI"]),

        .target(name: "TestSupport", dependencies: ["Kernels", "Tensors", "Checkpoint", "Random"], path: "Tests/TestSupport"),
        .testTarget(name: "RandomTests", dependencies: ["Random"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "Random"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(name: "TensorsTests", dependencies: ["Kernels", "Tensors", "TestSupport"]),
        .testTarget(name: "DataTests", dependencies: ["JSON", "Schema", "Data", "Synthetic", "Random", "TestSupport"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "TestSupport"]),
        .testTarget(name: "MetricsTests", dependencies: ["Schema", "Metrics", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: [
            "Tensors", "NN", "Optim", "Schema", "Data", "Checkpoint", "Model", "Training", "TestSupport",
        ]),
        .testTarget(name: "DistributedTests", dependencies: [
            "Tensors", "Schema", "Data", "Model", "Training", "Distributed", "TestSupport",
        ]),
        .testTarget(name: "CLITests", dependencies: ["BraidCLI"]),
        .testTarget(name: "InferenceTests", dependencies: ["NN", "Schema", "Data", "Checkpoint", "Model", "Inference", "TestSupport"]),
        .testTarget(name: "ONNXTests", dependencies: [
            "Schema", "Data", "Model", "Training", "Inference", "ONNX", "TestSupport",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .testTarget(name: "ServingTests", dependencies: [
            "Schema", "Checkpoint", "Model", "Inference", "Serving", "TestSupport",
            .product(name: "Hummingbird", package: "hummingbird", moduleAliases: ["Metrics": "SwiftMetrics"]),
        ]),
    ],
    // Swift 5 mode: kernels share raw buffers across worker threads by design.
    swiftLanguageModes: [.v5]
)
