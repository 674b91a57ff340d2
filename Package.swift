// swift-tools-version:5.9
// relusv: ReLU singular values and Gaussian mean widths over OpenBLAS/LAPACKE.
import PackageDescription

let package = Package(
    name: "relusv",
    products: [
        // libReluSVKit.so: the flat C ABI declared in Sources/CReluSV/include/relusv.h.
        .library(name: "ReluSVKit", type: .dynamic, targets: ["CABI"]),
    ],
    targets: [
        // System OpenBLAS (cblas.h) and LAPACKE (lapacke.h); Debian: libopenblas-dev, liblapacke-dev.
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // The numerical engine: pure Swift over BLAS/LAPACK, no knowledge of C callers.
        .target(
            name: "ReluSVKit",
            dependencies: ["COpenBLAS"]
        ),
        // The public C header (status codes, handles, entry points); no code of its own.
        .target(name: "CReluSV", path: "Sources/CReluSV"),
        // The C surface: @_cdecl entry points that validate arguments and call the engine.
        .target(name: "CABI", dependencies: ["ReluSVKit", "CReluSV"]),
        .testTarget(name: "ReluSVKitTests", dependencies: ["ReluSVKit", "CABI", "CReluSV"]),
    ]
)
