import XCTest

@testable import ReluSVKit

/// `dataDirections(of:count:)`, the data projection's leading directions of
/// `X`, against LAPACK's SVD: orthonormal rows that keep as much of `X` as
/// its top right singular vectors (the energy left outside their span at
/// most the SVD's plus `eps ||X||^2`-sized rounding), from the Gram matrix on
/// either side; the SVD's rows, bit for bit, where `X X^T` does not resolve
/// the rank asked.
final class DataDirectionsTests: XCTestCase {
    func data(_ rows: Int, _ columns: Int, decay: Double, seed: UInt64) -> Matrix<Double> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var x = Matrix<Double>(rows: rows, columns: columns)
        for i in 0..<rows {
            for j in 0..<columns { x[i, j] = random.normal(row: i, column: j) * pow(decay, Double(j)) }
        }
        return x
    }

    /// `||X (I - V^T V)||_F^2` for the rows `V` (`r x n`).
    func energyOutside(_ x: Matrix<Double>, _ v: Matrix<Double>) -> Double {
        var total = 0.0
        for i in 0..<x.rows {
            var residual = (0..<x.columns).map { x[i, $0] }
            for r in 0..<v.rows {
                var dot = 0.0
                for j in 0..<x.columns { dot += x[i, j] * v[r, j] }
                for j in 0..<x.columns { residual[j] -= dot * v[r, j] }
            }
            total += residual.reduce(0) { $0 + $1 * $1 }
        }
        return total
    }

    func check(
        _ x: Matrix<Double>, count: Int, orthonormality: Double, file: StaticString = #filePath, line: UInt = #line
    )
        throws
    {
        let v = try x.withView { try dataDirections(of: $0, count: count) }
        let svd = try x.withView { try thinSVD(of: $0) }
        XCTAssertEqual(v.rows, count, file: file, line: line)
        XCTAssertEqual(v.columns, x.columns, file: file, line: line)
        for a in 0..<count {
            for b in 0...a {
                var dot = 0.0
                for j in 0..<x.columns { dot += v[a, j] * v[b, j] }
                XCTAssertEqual(dot, a == b ? 1 : 0, accuracy: orthonormality, file: file, line: line)
            }
        }
        let optimum = svd.s[count...].reduce(0) { $0 + $1 * $1 }
        let scale = svd.s.reduce(0) { $0 + $1 * $1 }
        XCTAssertLessThanOrEqual(energyOutside(x, v), optimum + 1e-12 * scale, file: file, line: line)
    }

    func testTallDataFromTheRightGramMatrix() throws {
        try check(data(300, 40, decay: 0.9, seed: 1), count: 12, orthonormality: 1e-13)
        try check(data(300, 40, decay: 0.5, seed: 2), count: 40, orthonormality: 1e-13)  // a tail below eps
    }

    func testSquareDataFromTheLeftGramMatrix() throws {
        try check(data(60, 60, decay: 1, seed: 3), count: 59, orthonormality: 1e-9)
    }

    func testWideDataFromTheLeftGramMatrixWhereItResolvesTheRank() throws {
        try check(data(30, 200, decay: 0.99, seed: 4), count: 20, orthonormality: 1e-7)
        try check(data(30, 200, decay: 0.99, seed: 5), count: 30, orthonormality: 1e-7)
    }

    func testTheSVDsRowsWhereTheRankIsNotResolved() throws {
        var x = data(20, 90, decay: 1, seed: 6)
        for j in 0..<90 { x[19, j] = x[18, j] }  // rank 19 < 20 = N
        let v = try x.withView { try dataDirections(of: $0, count: 20) }
        let svd = try x.withView { try rightSVD(of: $0) }
        XCTAssertEqual(v.storage, Array(svd.vt.storage[0..<(20 * 90)]))
        XCTAssertEqual(try x.withView { try dataDirections(of: $0, count: 0) }.rows, 0)
    }
}
