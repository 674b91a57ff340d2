import XCTest

@testable import ReluSVKit

/// `leadingSVD(of:vectors:)` (every value, the vectors of the largest few)
/// against LAPACK's dense SVD (`thinSVD(of:)`, `?gesdd`): the same values to
/// a few units of `eps sigma_0`; the returned pairs orthonormal and singular
/// pairs of `W` (`W v_j = s_j u_j`, `W^T u_j = s_j v_j` to `eps sigma_0`), on
/// every path (wide and tall, with and without the QR first, a square
/// matrix, a decaying spectrum, repeated values), in both precisions.
final class LeadingSVDTests: XCTestCase {
    /// `rows x columns` Gaussian entries times `decay^j` in column `j`.
    func matrix<Scalar: BLASScalar>(_ rows: Int, _ columns: Int, decay: Double = 1, seed: UInt64) -> Matrix<Scalar> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var w = Matrix<Scalar>(rows: rows, columns: columns)
        for i in 0..<rows {
            for j in 0..<columns { w[i, j] = Scalar(random.normal(row: i, column: j) * pow(decay, Double(j))) }
        }
        return w
    }

    func testEveryPathInBothPrecisions() throws {
        // (rows, columns): wide with and without the QR first, tall with and without, square.
        for (m, n) in [(30, 90), (30, 40), (90, 30), (40, 30), (35, 35)] {
            for count in [0, 1, 7, min(m, n) - 1] {
                try checkLeadingPairs(matrix(m, n, seed: 1) as Matrix<Double>, count: count, tolerance: 1e-12)
                try checkLeadingPairs(matrix(m, n, seed: 2) as Matrix<Float>, count: count, tolerance: 2e-4)
            }
        }
    }

    func testDecayingSpectrumAndRepeatedValues() throws {
        try checkLeadingPairs(matrix(40, 120, decay: 0.8, seed: 3) as Matrix<Double>, count: 10, tolerance: 1e-12)
        // Every value twice: H diag(A, A), H a dense Householder reflection (so no independent blocks).
        let a: Matrix<Double> = matrix(10, 30, seed: 4)
        var blocks = Matrix<Double>(rows: 20, columns: 60)
        for i in 0..<10 {
            for j in 0..<30 {
                blocks[i, j] = a[i, j]
                blocks[i + 10, j + 30] = a[i, j]
            }
        }
        let v = (0..<20).map { Double($0 % 7) - 2.5 }
        let vv = v.reduce(0) { $0 + $1 * $1 }
        var w = Matrix<Double>(rows: 20, columns: 60)
        for i in 0..<20 {
            for j in 0..<60 {
                var dot = 0.0
                for r in 0..<20 { dot += v[r] * blocks[r, j] }
                w[i, j] = blocks[i, j] - 2 * v[i] * dot / vv
            }
        }
        try checkLeadingPairs(w, count: 6, tolerance: 1e-12)
    }

    /// Where `?bdsvdx` widens its index range to an interval of values (a
    /// zero or low-rank matrix asked for more pairs than its rank, values
    /// tied across `count`, a float32 decaying spectrum) it writes more than
    /// `count` vectors: the buffer holds them all (tested under valgrind by
    /// the C example's run), and the pairs returned are still `count` exact ones.
    func testZeroLowRankAndTiedValuesAcrossTheCount() throws {
        try checkLeadingPairs(Matrix<Double>(rows: 20, columns: 70), count: 1, tolerance: 1e-12)
        try checkLeadingPairs(Matrix<Double>(rows: 3, columns: 8), count: 1, tolerance: 1e-12)
        var rankOne = Matrix<Double>(rows: 25, columns: 80)
        for i in 0..<25 { for j in 0..<80 { rankOne[i, j] = Double(i % 5 + 1) * Double(j % 7 - 3) } }
        try checkLeadingPairs(rankOne, count: 3, tolerance: 1e-12, orAll: true)  // values 2 and 3 exactly zero
        // Orthonormal rows (every value 1): rows of a Householder reflection of the 80 x 80 identity.
        let v = (0..<80).map { Double($0 % 9) - 3.5 }
        let vv = v.reduce(0) { $0 + $1 * $1 }
        var q = Matrix<Double>(rows: 20, columns: 80)
        for i in 0..<20 { for j in 0..<80 { q[i, j] = (i == j ? 1 : 0) - 2 * v[i] * v[j] / vv } }
        try checkLeadingPairs(q, count: 2, tolerance: 1e-12)
        try checkLeadingPairs(q, count: 19, tolerance: 1e-12)
        try checkLeadingPairs(matrix(60, 80, decay: 0.8, seed: 9) as Matrix<Float>, count: 46, tolerance: 2e-4)
    }

    func testAllPairsOrBlocksFallBackToTheDenseSVD() throws {
        let w: Matrix<Double> = matrix(12, 20, seed: 5)
        let all = try w.withView { try leadingSVD(of: $0, vectors: 12) }
        let dense = try w.withView { try thinSVD(of: $0) }
        XCTAssertEqual(all.u.storage, dense.u.storage)
        XCTAssertEqual(all.vt.storage, dense.vt.storage)
        var blocks = Matrix<Double>(rows: 4, columns: 6)  // block diagonal: 2 x 3 twice
        for i in 0..<2 {
            for j in 0..<3 {
                blocks[i, j] = Double(i + j + 1)
                blocks[i + 2, j + 3] = Double(i - j)
            }
        }
        let split = try blocks.withView { try leadingSVD(of: $0, vectors: 1) }
        XCTAssertEqual(split.u.columns, 4)
    }

    /// `singularValues(of:)` of a wide matrix by the QR of its stored
    /// transpose: `?gesdd`'s values (of the same matrix, with all pairs) to
    /// `eps sigma_0`, in both precisions, down to one row, and at a scale
    /// `?gesdd` rescales (its own path).
    func testWideValuesByTheQRFirst() throws {
        for (m, n, scale) in [(1, 9, 1.0), (5, 10, 1.0), (30, 200, 1.0), (30, 200, 1e-300)] {
            var w: Matrix<Double> = matrix(m, n, seed: 10)
            for i in 0..<m { for j in 0..<n { w[i, j] *= scale } }
            let values = try w.withView { try singularValues(of: $0) }
            let dense = try w.withView { try thinSVD(of: $0) }.s
            for (a, b) in zip(values, dense) { XCTAssertEqual(a, b, accuracy: 1e-13 * dense[0], "\(m) x \(n)") }
            let single: Matrix<Float> = matrix(m, n, seed: 11)
            let s32 = try single.withView { try singularValues(of: $0) }
            let d32 = try single.withView { try thinSVD(of: $0) }.s
            for (a, b) in zip(s32, d32) { XCTAssertEqual(a, b, accuracy: 2e-5 * d32[0], "\(m) x \(n) float32") }
        }
    }

    func testNonFiniteEntriesAreRefused() {
        var w: Matrix<Double> = matrix(10, 30, seed: 6)
        w[3, 7] = .nan
        XCTAssertThrowsError(try w.withView { try leadingSVD(of: $0, vectors: 2) })
    }

    /// A shared SVD with fewer pairs serves a curve whose `k` it covers and
    /// refuses one that needs more, naming both counts.
    func testSharedLeadingFactorsCoverTheCurvesK() throws {
        let w: Matrix<Double> = matrix(12, 40, seed: 7)
        let x: Matrix<Double> = matrix(6, 40, seed: 8)
        let shared = try w.withView { try WeightSVD(of: $0, vectors: 5) }
        XCTAssertEqual(shared.vectors, 5)
        let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        let fine = try x.withView {
            try reluSpectrum(layer: layer, points: $0, ks: [0, 2, 5], weightSVD: shared.svd)
        }
        XCTAssertEqual(fine.entries.count, 3)
        XCTAssertThrowsError(
            try x.withView { try reluSpectrum(layer: layer, points: $0, ks: [6], weightSVD: shared.svd) }
        ) { error in
            XCTAssertTrue(String(describing: error).contains("5 largest"), String(describing: error))
        }
    }
}

extension XCTestCase {
    /// `leadingSVD(of:vectors:tolerance:)` of `w` against `thinSVD(of:)`: the
    /// values to `tolerance * sigma_0`, the pairs orthonormal and singular pairs
    /// of `w` to the same. `orAll`: all pairs are accepted too (the fall-back where LAPACK returns
    /// another count of pairs, as for exactly zero values beyond the rank).
    func checkLeadingPairs<Scalar: BLASScalar>(
        _ w: Matrix<Scalar>, count: Int, tolerance: Double, orAll: Bool = false, gram: Double = 0,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let m = w.rows
        let n = w.columns
        let leading = try w.withView { try leadingSVD(of: $0, vectors: count, tolerance: gram) }
        let dense = try w.withView { try thinSVD(of: $0) }
        let count = orAll && leading.u.columns == min(m, n) ? min(m, n) : count
        XCTAssertEqual(leading.u.rows, m, file: file, line: line)
        XCTAssertEqual(leading.u.columns, count, file: file, line: line)
        XCTAssertEqual(leading.vt.rows, count, file: file, line: line)
        XCTAssertEqual(leading.vt.columns, n, file: file, line: line)
        XCTAssertEqual(leading.s.count, min(m, n), file: file, line: line)
        let top = dense.s[0] > 0 ? Double(dense.s[0]) : 1  // the scale of the tolerances (1 for a zero W)
        for (a, b) in zip(leading.s, dense.s) {
            XCTAssertEqual(Double(a), Double(b), accuracy: tolerance * top, file: file, line: line)
        }
        var worst = 0.0
        for j in 0..<count {
            let s = Double(leading.s[j])
            for i in 0..<m {  // W v_j - s_j u_j
                var wv = 0.0
                for c in 0..<n { wv += Double(w[i, c]) * Double(leading.vt[j, c]) }
                worst = max(worst, abs(wv - s * Double(leading.u[i, j])))
            }
            for c in 0..<n {  // W^T u_j - s_j v_j
                var wu = 0.0
                for i in 0..<m { wu += Double(w[i, c]) * Double(leading.u[i, j]) }
                worst = max(worst, abs(wu - s * Double(leading.vt[j, c])))
            }
            for k in 0...j {  // orthonormal columns of u and rows of vt
                var uu = 0.0
                var vv = 0.0
                for i in 0..<m { uu += Double(leading.u[i, j]) * Double(leading.u[i, k]) }
                for c in 0..<n { vv += Double(leading.vt[j, c]) * Double(leading.vt[k, c]) }
                worst = max(worst, abs(uu - (j == k ? 1 : 0)) * top, abs(vv - (j == k ? 1 : 0)) * top)
            }
        }
        XCTAssertLessThan(worst, tolerance * top, "residual of the pairs", file: file, line: line)
    }
}
