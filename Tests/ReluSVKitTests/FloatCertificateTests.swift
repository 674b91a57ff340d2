import XCTest

@testable import ReluSVKit

/// The certificate of `Float` problems (`DoublePass.swift`, MATH.md §2, the
/// chain in float32): blocked passes run in `Double` on exact copies, so each
/// bound is the `Double` maximum error of the returned `Float` factors.
extension ReluSpectraTests {
    /// A `Float` layer (`n x n`, singular values from 1 down to 1e-7, as the
    /// Python tests use) over `N` Gaussian points: at high `k` the errors are
    /// at the rounding level and concentrated, where the rounding slack of
    /// `certify` exceeds their spread. `body` gets the problem, its SVD
    /// family, the same values in `Double` and the oracle: the direct
    /// `Double` maximum error of `Float` factors (`maxError`).
    func withConditionedFloatProblem(
        n: Int, points N: Int,
        _ body: (
            ReluBoundProblem<Float>, CandidateBasis<Float>, (w: Matrix<Double>, b: [Double], x: Matrix<Double>),
            (RankFactors<Float>) -> Double
        ) throws -> Void
    ) throws {
        let g = try gaussian(n, n, seed: 21).withView { try thinSVD(of: $0) }
        var w = Matrix<Float>(rows: n, columns: n)
        for i in 0..<n {
            for j in 0..<n {
                var s = 0.0
                for r in 0..<n { s += g.u[i, r] * pow(10, -7 * Double(r) / Double(n - 1)) * g.vt[r, j] }
                w[i, j] = Float(s)
            }
        }
        let x = Matrix(rows: N, columns: n, storage: gaussian(N, n, seed: 22).storage.map(Float.init))
        let b = (0..<n).map { Float(0.05 * Double($0 % 5) - 0.1) }
        let exact = (w: inDouble(w), b: b.map(Double.init), x: inDouble(x))
        let oracle = { (f: RankFactors<Float>) in
            self.maxError(
                exact.w, exact.b, exact.x,
                self.dense(RankFactors(k: f.k, m: f.m, n: f.n, u: f.u.map(Double.init), v: f.v.map(Double.init))))
        }
        try x.withView { xv in
            let layer = try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }
            let problem = try ReluBoundProblem(layer: layer, points: xv)
            let basis = CandidateBasis.svd(try w.withView { try thinSVD(of: $0) }, points: xv)
            try body(problem, basis, exact, oracle)
        }
    }

    func inDouble(_ a: Matrix<Float>) -> Matrix<Double> {
        Matrix(rows: a.rows, columns: a.columns, storage: a.storage.map(Double.init))
    }

    /// The `Float` SVD family at every count equals, bit for bit, the same pass
    /// run on a `Double` problem and basis built here from the same `Float`
    /// values (the path taken), and the direct `Double` error of the returned
    /// factors (the oracle, 1e-9 relative plus 1e-14 of `s_0`); at high `k` the
    /// slack rule alone would have recomputed more than 90 % of the points.
    func testFloatPassIsTheDoubleErrorOfTheFloatFactors() throws {
        let N = 1500
        try withConditionedFloatProblem(n: 40, points: N) { problem, basis, exact, oracle in
            let counts = Array(0...basis.size)
            let bounds = try NestedCurve.bounds(problem: problem, basis: basis, counts: counts) {}
            let expected = try exact.x.withView { xdv in
                let layer = try exact.w.withView { try ReluLayer(weight: $0, bias: exact.b, slope: 0) }
                let basisD = CandidateBasis<Double>(
                    source: .svd, b: inDouble(basis.b), c: inDouble(basis.c), points: xdv)
                return try NestedCurve.bounds(
                    problem: try ReluBoundProblem(layer: layer, points: xdv), basis: basisD, counts: counts
                ) {}
            }
            XCTAssertEqual(bounds, expected)
            for c in [0, 1, 10, 20, 30, 35, 39, 40] {
                let f = basis.factors(rank: c)
                let direct = oracle(f)
                XCTAssertEqual(
                    bounds[c], direct, accuracy: 1e-9 * direct + 1e-14 * problem.outputScale, "count \(c)")
                guard c >= 30 else { continue }
                let errors = f.withPointers { problem.evaluate(u: $0, v: $1, k: c, certified: false).errors }
                let slack = f.withFactorPointers { problem.roundingSlack(errors: errors, factors: $0) }
                let candidates = errors.indices.filter { errors[$0] + slack[$0] >= direct }.count
                XCTAssertGreaterThan(candidates, N * 9 / 10, "count \(c)")
            }
        }
    }

    /// A single `Float` candidate certified by `certify` where nearly every
    /// point is recomputed (in blocks, on the problem's `Double` copy): the
    /// bound is the direct `Double` error of its factors.
    func testFloatCertifyOfConcentratedErrorsIsTheDoubleError() throws {
        try withConditionedFloatProblem(n: 40, points: 1500) { problem, basis, _, oracle in
            for c in [5, 25, 38] {
                let f = basis.factors(rank: c)
                let bound = f.withPointers { problem.evaluate(u: $0, v: $1, k: c, certified: true).bound }
                let direct = oracle(f)
                XCTAssertEqual(bound, direct, accuracy: 1e-9 * direct + 1e-14 * problem.outputScale, "rank \(c)")
            }
            XCTAssertNotNil(try problem.doubleCopy(), "the blocks read the Double copy")
        }
    }

    /// Where the memory limit refuses the `Double` copy, a blocked pass
    /// fails with `outOfMemory` naming it, and `certify` still returns the
    /// `Double` error (its blocks then recompute the targets themselves).
    func testFloatCertificateWithoutRoomForTheDoubleCopy() throws {
        try withConditionedFloatProblem(n: 40, points: 1500) { problem, basis, _, oracle in
            MemoryBudget.setLimit(Int(ReluBoundRequest.doubleCopyBytes(points: 1500, outputs: 40, inputs: 40) / 2))
            defer { MemoryBudget.setLimit(0) }
            XCTAssertThrowsError(try problem.doubleCopy()) { error in
                guard case EngineError.outOfMemory(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("the float64 copy of a float32 problem"), message)
            }
            XCTAssertThrowsError(try NestedCurve.bounds(problem: problem, basis: basis, counts: [1, 2]) {})
            let f = basis.factors(rank: 38)
            let bound = f.withPointers { problem.evaluate(u: $0, v: $1, k: 38, certified: true).bound }
            let direct = oracle(f)
            XCTAssertEqual(bound, direct, accuracy: 1e-9 * direct + 1e-14 * problem.outputScale)
        }
    }
}
