import XCTest

@testable import ReluSVKit

/// Values (and leading pairs) from the Gram matrix (`GramSpectrum`) against
/// LAPACK's dense SVD (`thinSVD(of:)`): within `eps^(3/4) sigma_0` where every
/// eigenvalue resolves; bit for bit the SVD's where one does not, where the
/// caller asks more accuracy than the route gives, or for a zero matrix.
final class GramSpectrumTests: XCTestCase {
    /// A `rows x columns` matrix with singular values `1, ..., 1 / condition`
    /// (geometric) and random singular vectors (QR of Gaussian matrices).
    func conditioned<Scalar: BLASScalar>(_ rows: Int, _ columns: Int, condition: Double, seed: UInt64) throws -> Matrix<
        Scalar
    > {
        let p = min(rows, columns)
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var g = Matrix<Double>(rows: rows + columns, columns: p)
        for i in 0..<(rows + columns) { for j in 0..<p { g[i, j] = random.normal(row: i, column: j) } }
        var left = Matrix<Double>(rows: rows, columns: p)
        var right = Matrix<Double>(rows: columns, columns: p)
        for j in 0..<p {
            for i in 0..<rows { left[i, j] = g[i, j] }
            for i in 0..<columns { right[i, j] = g[rows + i, j] }
        }
        let u = try left.withView { try thinSVD(of: $0) }.u  // orthonormal columns
        let v = try right.withView { try thinSVD(of: $0) }.u
        var w = Matrix<Scalar>(rows: rows, columns: columns)
        for i in 0..<rows {
            for c in 0..<columns {
                var sum = 0.0
                for j in 0..<p { sum += u[i, j] * pow(condition, -Double(j) / Double(max(p - 1, 1))) * v[c, j] }
                w[i, c] = Scalar(sum)
            }
        }
        return w
    }

    func gram<Scalar: BLASScalar>(_ w: Matrix<Scalar>, tolerance: Double) throws -> GramSpectrum<Scalar>? {
        // the row-major buffer is the column-major W^T (columns x rows)
        try GramSpectrum(columnMajor: w.storage, rows: w.columns, columns: w.rows, tolerance: tolerance)
    }

    func testValuesWithinTheirAccuracyWhereEveryEigenvalueResolves() throws {
        // resolved: condition <= eps^(-1/4) = 8192 in Double
        for (rows, columns, condition) in [(40, 120, 1.0), (120, 40, 100.0), (60, 60, 7000.0), (90, 50, 2.0)] {
            let w: Matrix<Double> = try conditioned(rows, columns, condition: condition, seed: 7)
            let dense = try w.withView { try thinSVD(of: $0) }.s
            let route = try XCTUnwrap(try gram(w, tolerance: 1e-7), "\(rows) x \(columns), condition \(condition)")
            let values = try w.withView { try singularValues(of: $0, tolerance: 1e-7) }
            XCTAssertEqual(route.values, values)
            for (a, b) in zip(values, dense) {
                XCTAssertEqual(a, b, accuracy: pow(Double.ulpOfOne, 0.75) * dense[0])
            }
        }
        let f: Matrix<Float> = try conditioned(50, 80, condition: 20, seed: 3)
        let dense = try f.withView { try thinSVD(of: $0) }.s
        let tolerance = Double(pow(Float.ulpOfOne, 0.75))
        XCTAssertNotNil(try gram(f, tolerance: tolerance))
        let values = try f.withView { try singularValues(of: $0, tolerance: tolerance) }
        for (a, b) in zip(values, dense) {
            XCTAssertEqual(Double(a), Double(b), accuracy: tolerance * Double(dense[0]))
        }
    }

    func testTheSVDWhereTheGramMatrixDoesNotServe() throws {
        let illConditioned: Matrix<Double> = try conditioned(60, 90, condition: 1e6, seed: 5)
        var rankDeficient: Matrix<Double> = try conditioned(50, 70, condition: 10, seed: 9)
        for c in 0..<70 { rankDeficient[49, c] = rankDeficient[48, c] }
        let zero = Matrix<Double>(rows: 30, columns: 40)
        let wellConditioned: Matrix<Double> = try conditioned(40, 60, condition: 3, seed: 11)
        for (w, tolerance) in [(illConditioned, 1e-7), (rankDeficient, 1e-7), (zero, 1e-7), (wellConditioned, 1e-13)] {
            XCTAssertNil(try gram(w, tolerance: tolerance))
            let svd = try w.withView { try singularValues(of: $0) }
            XCTAssertEqual(try w.withView { try singularValues(of: $0, tolerance: tolerance) }, svd)
        }
        // Singular values near 1e-160 (float64) or 1e-21 (float32): the Gram matrix's products fall to
        // subnormal numbers and would move the values by 0.4 %; refused, the SVD's values.
        var tiny: Matrix<Double> = try conditioned(60, 40, condition: 2, seed: 19)
        var tinyFloat = Matrix<Float>(rows: 60, columns: 40)
        for i in 0..<60 {
            for c in 0..<40 {
                tinyFloat[i, c] = Float(tiny[i, c] * 1e-21)
                tiny[i, c] *= 1e-160
            }
        }
        XCTAssertNil(try gram(tiny, tolerance: 1e-7))
        XCTAssertEqual(
            try tiny.withView { try singularValues(of: $0, tolerance: 1e-7) },
            try tiny.withView { try singularValues(of: $0) })
        XCTAssertNil(try gram(tinyFloat, tolerance: 1e-5))
        XCTAssertFalse(GramSpectrum<Double>.serves(tolerance: .nan))
        XCTAssertFalse(GramSpectrum<Float>.serves(tolerance: 1e-6))
        XCTAssertTrue(GramSpectrum<Double>.serves(tolerance: 1.9e-12))
    }

    func testLeadingPairsFromTheGramMatrix() throws {
        for (rows, columns, condition) in [(30, 200, 50.0), (200, 30, 5.0), (80, 80, 1000.0)] {
            let w: Matrix<Double> = try conditioned(rows, columns, condition: condition, seed: 13)
            XCTAssertNotNil(try gram(w, tolerance: 1e-7))
            // pairs of W to about eps sigma_0^2 / sigma_j: 1e-12 for sigma_j >= sigma_0 / 1000
            try checkLeadingPairs(w, count: 12, tolerance: 1e-12, gram: 1e-7)
        }
        let f: Matrix<Float> = try conditioned(40, 160, condition: 4, seed: 17)
        try checkLeadingPairs(f, count: 6, tolerance: 2e-4, gram: Double(pow(Float.ulpOfOne, 0.75)))
    }
    /// `GramTridiagonal.largestVectors` by both of its solvers (MRRR up to a
    /// quarter of the order, divide and conquer above): every returned vector
    /// a unit eigenvector of `G` for its eigenvalue (the `count` largest of
    /// `eigenvalues()`, in order), residual within `50 p eps lambda_0`, and
    /// the two routes' vectors for the same eigenvalue equal up to sign.
    func testLargestVectorsByEitherSolver() throws {
        try checkLargestVectors(Double.self, tolerance: 1e-12)
        try checkLargestVectors(Float.self, tolerance: 2e-4)
    }

    func checkLargestVectors<Scalar: BLASScalar>(_: Scalar.Type, tolerance: Double) throws {
        let p = 48
        let a: Matrix<Scalar> = try conditioned(60, p, condition: 30, seed: 23)
        var g = [Scalar](repeating: 0, count: p * p)  // A^T A, symmetric: column-major = row-major
        for i in 0..<p {
            for j in 0..<p {
                var sum = 0.0
                for r in 0..<60 { sum += Double(a[r, i]) * Double(a[r, j]) }
                g[i * p + j] = Scalar(sum)
            }
        }
        let reduced = try GramTridiagonal(g, order: p)
        let values = try reduced.eigenvalues()
        let quarter = p / GramTridiagonal<Scalar>.divideAndConquerFraction
        var byCount: [Int: [Scalar]] = [:]
        for count in [1, quarter, quarter + 1, p] {
            let v = try XCTUnwrap(try reduced.largestVectors(count), "count \(count)")
            for j in 0..<count {
                var norm = 0.0
                var residual = 0.0
                for i in 0..<p {
                    var gv = 0.0
                    for c in 0..<p { gv += Double(g[i * p + c]) * Double(v[c + j * p]) }
                    residual = max(residual, abs(gv - values[j] * Double(v[i + j * p])))
                    norm += Double(v[i + j * p]) * Double(v[i + j * p])
                }
                XCTAssertEqual(norm, 1, accuracy: tolerance, "count \(count), vector \(j)")
                XCTAssertLessThanOrEqual(residual, tolerance * values[0], "count \(count), vector \(j)")
            }
            byCount[count] = v
        }
        // the first vectors of the MRRR (quarter) and divide-and-conquer (quarter + 1) routes, up to sign
        let (mrrr, dc) = (byCount[quarter]!, byCount[quarter + 1]!)
        for j in 0..<quarter {
            var dot = 0.0
            for i in 0..<p { dot += Double(mrrr[i + j * p]) * Double(dc[i + j * p]) }
            XCTAssertEqual(abs(dot), 1, accuracy: 10 * tolerance, "vector \(j)")
        }
    }
}
