import XCTest

@testable import ReluSVKit

/// `rightSVD(of:)` (`?gesdd`'s steps without the left factor) against
/// LAPACK called here directly: `?gesdd` with `jobz = "S"`, after
/// `?geqrf` for a tall matrix (`N >= 2 n`, `R` in its place); the same
/// singular values and right singular vectors, bit for bit, on each path
/// (bidiagonal, blocked bidiagonal, QR first, `?gesdd`'s own QR, wide,
/// rescaled), in both precisions.
final class RightSVDTests: XCTestCase {
    func matrix<Scalar: BLASScalar>(_ rows: Int, _ columns: Int, scale: Double, seed: UInt64) -> Matrix<Scalar> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var w = Matrix<Scalar>(rows: rows, columns: columns)
        for i in 0..<rows { for j in 0..<columns { w[i, j] = Scalar(scale * random.normal(row: i, column: j)) } }
        return w
    }

    /// `R` (row-major `n x n`) of LAPACK's Householder QR of the `m x n` `a`.
    func triangular<Scalar: BLASScalar>(_ storage: [Scalar], _ m: Int, _ n: Int) -> [Scalar] {
        var a = storage
        var tau = [Scalar](repeating: 0, count: n)
        let info = a.withUnsafeMutableBufferPointer { ap in
            tau.withUnsafeMutableBufferPointer {
                Scalar.geqrf(m: m, n: n, a: ap.baseAddress!, lda: n, tau: $0.baseAddress!)
            }
        }
        XCTAssertEqual(info, 0)
        var r = [Scalar](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { r[i * n + j] = a[i * n + j] } }
        return r
    }

    /// `?gesdd` (`jobz = "S"`) of `w`, or of its `R` when `N >= 2 n`: `s` and `vt`.
    func gesdd<Scalar: BLASScalar>(_ w: Matrix<Scalar>) -> (s: [Scalar], vt: [Scalar]) {
        let tall = w.rows >= 2 * w.columns
        let (m, n) = (tall ? w.columns : w.rows, w.columns)
        let p = min(m, n)
        var a = tall ? triangular(w.storage, w.rows, n) : w.storage
        var s = [Scalar](repeating: 0, count: p)
        var u = [Scalar](repeating: 0, count: m * p)
        var vt = [Scalar](repeating: 0, count: p * n)
        let info = a.withUnsafeMutableBufferPointer { ap in
            s.withUnsafeMutableBufferPointer { sp in
                u.withUnsafeMutableBufferPointer { up in
                    vt.withUnsafeMutableBufferPointer { vp in
                        Scalar.gesdd(
                            jobz: UInt8(ascii: "S"), m: m, n: n, a: ap.baseAddress!, lda: n, s: sp.baseAddress!,
                            u: up.baseAddress!, ldu: p, vt: vp.baseAddress!, ldvt: n)
                    }
                }
            }
        }
        XCTAssertEqual(info, 0)
        return (s, vt)
    }

    func check<Scalar: BLASScalar>(
        _: Scalar.Type, rows: Int, columns: Int, scale: Double = 1, rescaled: Bool = false,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let w: Matrix<Scalar> = matrix(rows, columns, scale: scale, seed: UInt64(rows * 1000 + columns))
        let expected = gesdd(w)
        let f = try w.withView { try rightSVD(of: $0) }
        let p = min(rows, columns)
        XCTAssertEqual(f.vt.rows, p, file: file, line: line)
        XCTAssertEqual(f.vt.columns, columns, file: file, line: line)
        let values = zip(f.s, expected.s).filter { $0 != $1 }.count
        let vectors = zip(f.vt.storage, expected.vt).map { Double(abs($0 - $1)) }
        XCTAssertEqual(
            values + vectors.filter { $0 != 0 }.count, 0,
            "\(Scalar.self) \(rows) x \(columns): \(values) values and \(vectors.filter { $0 != 0 }.count) "
                + "vector entries differ (largest \(vectors.max() ?? 0))", file: file, line: line)
        let leftSkipped = rows >= 2 * columns || (rows >= columns && rows < gesddQRThreshold(columns: columns))
        XCTAssertEqual(f.u.rows, rows >= columns ? 0 : rows, file: file, line: line)
        // Which path ran: the bidiagonal steps, unless gesdd would rescale (then gesdd itself).
        if leftSkipped {
            var reduced = rows >= 2 * columns ? triangular(w.storage, rows, columns) : w.storage
            let bidiagonal = try bidiagonalRightSVD(
                &reduced, rows: rows >= 2 * columns ? columns : rows, columns: columns)
            XCTAssertEqual(
                bidiagonal == nil, rescaled, "\(Scalar.self) \(rows) x \(columns): the path taken", file: file,
                line: line)
        }
    }

    func testEveryPathEqualsGesddBitForBit() throws {
        // n = 40: gesdd's QR threshold is INT(40 * 11 / 6) = 73.
        XCTAssertEqual(gesddQRThreshold(columns: 40), 73)
        // n = 150: above LAPACK's crossover to the blocked bidiagonalisation (128); threshold 275.
        let shapes = [(40, 40), (41, 40), (72, 40), (73, 40), (79, 40), (80, 40), (300, 64), (1, 1), (5, 1)]
        for (rows, columns) in shapes + [(150, 150), (260, 150), (280, 150), (300, 150)] {
            try check(Double.self, rows: rows, columns: columns)
            try check(Float.self, rows: rows, columns: columns)
        }
    }

    func testWideMatrixTakesTheWholeSVD() throws {
        try check(Double.self, rows: 20, columns: 30)
        try check(Float.self, rows: 20, columns: 30)
    }

    func testEntriesGesddRescalesTakeGesdd() throws {
        // Largest entries below sqrt(tiny) / eps (float: 2^-40, about 9e-13; double: 2^-459) or above its inverse.
        try check(Float.self, rows: 60, columns: 40, scale: 1e-14, rescaled: true)
        try check(Double.self, rows: 60, columns: 40, scale: 1e-145, rescaled: true)
        try check(Float.self, rows: 60, columns: 40, scale: 1e13, rescaled: true)
        try check(Double.self, rows: 100, columns: 40, scale: 1e-145, rescaled: true)
        try check(Float.self, rows: 60, columns: 40, scale: 1e-11)  // inside the range: the bidiagonal steps
    }

    func testZeroMatrix() throws {
        try check(Double.self, rows: 50, columns: 40, scale: 0)
        let zero = Matrix<Double>(rows: 50, columns: 40)
        let f = try zero.withView { try rightSVD(of: $0) }
        XCTAssertEqual(f.s, [Double](repeating: 0, count: 40))
    }
}
