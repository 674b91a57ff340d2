// swift-tools-version:5.9
// relusv: ReLU singular values and Gaussian mean widths over OpenBLAS/LAPACKE.
import Foundation
import PackageDescription

/// The package root: linker inputs are given by absolute path.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

/// `RELUSV_VERSION_MAJOR` of relusv.h, where the version is written once:
/// the library's soname is `libReluSVKit.so.MAJOR`.
let major: String = {
    let header = try! String(contentsOfFile: root + "/Sources/CReluSV/include/relusv.h", encoding: .utf8)
    for line in header.split(separator: "\n") where line.hasPrefix("#define RELUSV_VERSION_MAJOR ") {
        return String(line.split(separator: " ")[2])
    }
    fatalError("relusv.h does not define RELUSV_VERSION_MAJOR")
}()

let package = Package(
    name: "relusv",
    products: [
        // libReluSVKit.so: the flat C ABI declared in Sources/CReluSV/include/relusv.h.
        .library(name: "ReluSVKit", type: .dynamic, targets: ["ReluSVKitLibrary"])
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
        // The public C header (status codes, handles, entry points), the status table and the version.
        .target(name: "CReluSV", path: "Sources/CReluSV"),
        // The C surface: @_cdecl entry points that validate arguments and call the engine.
        .target(name: "CABI", dependencies: ["ReluSVKit", "CReluSV"]),
        // The shared library as installed: only the relusv_* symbols exported (pkg/relusv.map)
        // and a versioned soname. Its own target, so that the tests link without these flags.
        .target(
            name: "ReluSVKitLibrary",
            dependencies: ["CABI"],
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-Xlinker", "--version-script=\(root)/pkg/relusv.map",
                        "-Xlinker", "-soname", "-Xlinker", "libReluSVKit.so.\(major)",
                    ],
                    .when(platforms: [.linux]))
            ]
        ),
        .testTarget(name: "ReluSVKitTests", dependencies: ["ReluSVKit", "CABI", "CReluSV"]),
    ]
)
