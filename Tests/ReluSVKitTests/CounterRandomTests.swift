import XCTest

@testable import ReluSVKit

/// The counter-based normal generator: distribution, and values that depend
/// only on `(seed, stream, row, column)`.
final class CounterRandomTests: XCTestCase {
    func normals(
        seed: UInt64, stream: CounterRandom.Stream = .widthDirections,
        firstRow: Int = 0, rows: Int, columns: Int
    ) -> [Double] {
        var out = [Double](repeating: .nan, count: rows * columns)
        out.withUnsafeMutableBufferPointer {
            CounterRandom(seed: seed, stream: stream).fillNormals(
                $0.baseAddress!, firstRow: firstRow, rows: rows, columns: columns)
        }
        return out
    }

    /// Sample moments of 400,000 values against N(0, 1), within 4 standard errors
    /// (SE of the mean 1/sqrt(m), of the variance sqrt(2/m), skewness sqrt(6/m),
    /// excess kurtosis sqrt(24/m)).
    func testMomentsAreStandardNormal() {
        let v = normals(seed: 12345, rows: 1000, columns: 400)
        let m = Double(v.count)
        let mean = v.reduce(0, +) / m
        let c2 = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / m
        let c3 = v.reduce(0) { $0 + pow($1 - mean, 3) } / m
        let c4 = v.reduce(0) { $0 + pow($1 - mean, 4) } / m
        let se = 1 / m.squareRoot()
        XCTAssertLessThan(abs(mean), 4 * se)
        XCTAssertLessThan(abs(c2 - 1), 4 * 2.0.squareRoot() * se)
        XCTAssertLessThan(abs(c3 / pow(c2, 1.5)), 4 * 6.0.squareRoot() * se)
        XCTAssertLessThan(abs(c4 / (c2 * c2) - 3), 4 * 24.0.squareRoot() * se)
        // Tail frequency: P(|z| > 3) = 0.0026998 (binomial SE about 8.2e-5)
        let tail = Double(v.filter { abs($0) > 3 }.count) / m
        XCTAssertLessThan(abs(tail - 0.0026998), 4 * (0.0027 * 0.9973 / m).squareRoot())
    }

    /// Neighbouring values (the two halves of one Box-Muller pair, and consecutive
    /// rows) are uncorrelated: |r| < 4 / sqrt(m).
    func testNeighboursAreUncorrelated() {
        let rows = 20000
        let columns = 4
        let v = normals(seed: 7, rows: rows, columns: columns)
        func correlation(_ a: [Double], _ b: [Double]) -> Double {
            let ma = a.reduce(0, +) / Double(a.count)
            let mb = b.reduce(0, +) / Double(b.count)
            var sab = 0.0
            var saa = 0.0
            var sbb = 0.0
            for i in a.indices {
                sab += (a[i] - ma) * (b[i] - mb)
                saa += (a[i] - ma) * (a[i] - ma)
                sbb += (b[i] - mb) * (b[i] - mb)
            }
            return sab / (saa * sbb).squareRoot()
        }
        let col0 = (0..<rows).map { v[$0 * columns] }
        let col1 = (0..<rows).map { v[$0 * columns + 1] }
        let col2 = (0..<rows).map { v[$0 * columns + 2] }
        let bound = 4 / Double(rows).squareRoot()
        XCTAssertLessThan(abs(correlation(col0, col1)), bound)  // one Box-Muller pair
        XCTAssertLessThan(abs(correlation(col0, col2)), bound)  // neighbouring pairs
        XCTAssertLessThan(abs(correlation(Array(col0.dropLast()), Array(col0.dropFirst()))), bound)  // rows
        // squares of a pair are uncorrelated too (independence, not only orthogonality)
        XCTAssertLessThan(abs(correlation(col0.map { $0 * $0 }, col1.map { $0 * $0 })), bound)
    }

    func testValuesDoNotDependOnBlockingOrCallOrder() {
        let whole = normals(seed: 99, rows: 64, columns: 7)
        // rows filled in reverse order, in uneven blocks
        var pieces = [Double](repeating: .nan, count: whole.count)
        for (start, count) in [(40, 24), (13, 27), (0, 13)] {
            let block = normals(seed: 99, firstRow: start, rows: count, columns: 7)
            for i in 0..<block.count { pieces[start * 7 + i] = block[i] }
        }
        XCTAssertEqual(pieces, whole)
        // one value at a time
        let g = CounterRandom(seed: 99, stream: .widthDirections)
        for row in [0, 5, 63] {
            for column in 0..<7 { XCTAssertEqual(g.normal(row: row, column: column), whole[row * 7 + column]) }
        }
        // an odd column count gives the leading columns of the even one
        let wider = normals(seed: 99, rows: 64, columns: 8)
        for row in 0..<64 {
            XCTAssertEqual(Array(wider[(row * 8)..<(row * 8 + 7)]), Array(whole[(row * 7)..<(row * 7 + 7)]))
        }
    }

    func testSameSeedSameNumbersAndStreamsAndSeedsDiffer() {
        let a = normals(seed: 2024, rows: 10, columns: 10)
        XCTAssertEqual(a, normals(seed: 2024, rows: 10, columns: 10))
        let others = [
            normals(seed: 2025, rows: 10, columns: 10),
            normals(seed: 2024 | 1 << 40, rows: 10, columns: 10),  // the high key word matters
            normals(seed: 2024, stream: .sphereSample, rows: 10, columns: 10),
        ]
        for b in others { XCTAssertTrue(zip(a, b).allSatisfy { $0 != $1 }) }
        // rows far apart (beyond 2^32) are distinct
        let far = normals(seed: 2024, firstRow: 1 << 32, rows: 10, columns: 10)
        XCTAssertTrue(zip(a, far).allSatisfy { $0 != $1 })
        XCTAssertTrue(a.allSatisfy(\.isFinite))
    }

    func testFloatFillIsTheRoundedDoubleFill() {
        let d = normals(seed: 5, rows: 9, columns: 11)
        var f = [Float](repeating: .nan, count: d.count)
        f.withUnsafeMutableBufferPointer {
            CounterRandom(seed: 5, stream: .widthDirections).fillNormals(
                $0.baseAddress!, firstRow: 0, rows: 9, columns: 11)
        }
        XCTAssertEqual(f, d.map { Float($0) })
    }
}
