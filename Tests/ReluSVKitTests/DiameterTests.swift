import XCTest

@testable import ReluSVKit

/// The blocked-GEMM diameter against a direct double loop.
final class DiameterTests: XCTestCase {
    func bruteForce(_ x: [Double], columns n: Int) -> Double {
        let rows = x.count / n
        var best = 0.0
        for i in 0..<rows {
            for j in (i + 1)..<rows {
                best = max(best, (0..<n).reduce(0.0) { $0 + pow(x[i * n + $1] - x[j * n + $1], 2) })
            }
        }
        return best.squareRoot()
    }

    func points(rows: Int, columns: Int, seed: UInt64, offset: Double = 0) -> [Double] {
        var out = [Double](repeating: 0, count: rows * columns)
        out.withUnsafeMutableBufferPointer {
            CounterRandom(seed: seed, stream: .sphereSample).fillNormals(
                $0.baseAddress!, firstRow: 0, rows: rows, columns: columns)
        }
        return out.map { $0 + offset }
    }

    func testMatchesBruteForceAcrossBlockSizes() throws {
        for (rows, n) in [(2, 1), (9, 3), (40, 5)] {
            let x = points(rows: rows, columns: n, seed: UInt64(rows), offset: 50)
            let exact = bruteForce(x, columns: n)
            for block in [1, 3, 7, 512] {
                let d = try x.withUnsafeBufferPointer {
                    try diameter(of: MatrixView(base: $0.baseAddress!, rows: rows, columns: n), blockRows: block)
                }
                XCTAssertEqual(d, exact, accuracy: 1e-10 * exact, "rows \(rows) block \(block)")
            }
        }
    }

    func testFloatAndDegenerateSets() throws {
        let x = points(rows: 30, columns: 4, seed: 3)
        let xf = x.map { Float($0) }
        let d = try xf.withUnsafeBufferPointer {
            try diameter(of: MatrixView(base: $0.baseAddress!, rows: 30, columns: 4), blockRows: 8)
        }
        XCTAssertEqual(d, bruteForce(xf.map { Double($0) }, columns: 4), accuracy: 1e-5 * d)
        let same = [Double](repeating: 2.5, count: 12)
        XCTAssertEqual(
            try same.withUnsafeBufferPointer {
                try diameter(of: MatrixView(base: $0.baseAddress!, rows: 4, columns: 3))
            }, 0)
        let empty = [Double](repeating: 0, count: 1)
        XCTAssertThrowsError(
            try empty.withUnsafeBufferPointer {
                try diameter(of: MatrixView(base: $0.baseAddress!, rows: 0, columns: 1))
            })
        var bad = x
        bad[2 * 4 + 3] = .infinity
        XCTAssertThrowsError(
            try bad.withUnsafeBufferPointer {
                try diameter(of: MatrixView(base: $0.baseAddress!, rows: 30, columns: 4), blockRows: 8)
            }
        ) { XCTAssertEqual($0 as? EngineError, .nonFiniteData(row: 2, column: 3)) }
    }

    func testProgressUnitsAndCancellation() throws {
        XCTAssertEqual(diameterProgressUnits(rows: 10, blockRows: 3), 10)  // 4 blocks: 4 * 5 / 2 pairs
        let x = points(rows: 10, columns: 2, seed: 1)
        var seen: [UInt64] = []
        _ = try x.withUnsafeBufferPointer {
            try diameter(
                of: MatrixView(base: $0.baseAddress!, rows: 10, columns: 2), blockRows: 3,
                progress: Progress(total: 10) { done, _ in
                    seen.append(done)
                    return true
                })
        }
        XCTAssertEqual(seen, Array(1...10))
        XCTAssertThrowsError(
            try x.withUnsafeBufferPointer {
                try diameter(
                    of: MatrixView(base: $0.baseAddress!, rows: 10, columns: 2), blockRows: 3,
                    progress: Progress(total: 10) { _, _ in false })
            }
        ) { XCTAssertEqual($0 as? EngineError, .cancelled) }
    }
}
