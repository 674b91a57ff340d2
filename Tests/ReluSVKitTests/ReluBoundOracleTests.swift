import XCTest

@testable import ReluSVKit

/// The oracles of MATH.md §2–3 and §9 for the bound engine: data-aware
/// candidates, zeros at the rank of the pre-activations, grouped maxima, the
/// start portfolio and the fit's phases, each checked against direct loops.
final class ReluBoundOracleTests: XCTestCase {
    func gaussian(_ rows: Int, _ columns: Int, seed: UInt64, scale: Double = 1) -> Matrix<Double> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var a = Matrix<Double>(rows: rows, columns: columns)
        for i in 0..<rows { for j in 0..<columns { a[i, j] = scale * random.normal(row: i, column: j) } }
        return a
    }

    /// `(sum_{i in g} ||act(W x_i + b) - act(L x_i + b)||^2)^(1/2)` per group of `P` rows, by direct loops.
    func groupErrors(_ w: Matrix<Double>, _ b: [Double], _ x: Matrix<Double>, _ l: Matrix<Double>, P: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.rows / P)
        for i in 0..<x.rows {
            for r in 0..<w.rows {
                var wx = b[r]
                var lx = b[r]
                for c in 0..<w.columns {
                    wx += w[r, c] * x[i, c]
                    lx += l[r, c] * x[i, c]
                }
                let d = max(wx, 0) - max(lx, 0)
                out[i / P] += d * d
            }
        }
        return out.map { $0.squareRoot() }
    }

    func dense(_ f: RankFactors<Double>) -> Matrix<Double> {
        var l = Matrix<Double>(rows: f.m, columns: f.n)
        for i in 0..<f.m { for j in 0..<f.n { for r in 0..<f.k { l[i, j] += f.u[i * f.k + r] * f.v[r * f.n + j] } } }
        return l
    }

    /// `A B^T` for row-major `A` (`r x p`) and `B` (`c x p`).
    func productTransposed(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Matrix<Double> {
        var out = Matrix<Double>(rows: a.rows, columns: b.rows)
        for i in 0..<a.rows { for j in 0..<b.rows { for t in 0..<a.columns { out[i, j] += a[i, t] * b[j, t] } } }
        return out
    }

    /// MATH.md §3: the reduced-rank regression `L = Q_k Q_k^T W` satisfies
    /// `L X^T = Z_k`, the rank-k truncation of `Z = W X^T` (here built from the
    /// eigenvectors of `Z Z^T` by Jacobi rotations, independently of LAPACK).
    func testReducedRankRegressionIsTheTruncationOfZ() throws {
        let (m, n, N) = (5, 7, 40)
        let w = gaussian(m, n, seed: 21)
        let x = gaussian(N, n, seed: 22)
        let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        let basis = try XCTUnwrap(try x.withView { try CandidateBasis.reducedRankRegression(layer: layer, points: $0) })
        let z = productTransposed(w, x)  // m x N
        let zzt = productTransposed(z, z)  // m x m
        let (values, vectors) = jacobiEigen(zzt)
        let order = values.indices.sorted { values[$0] > values[$1] }
        for k in 1..<m {
            let lxt = productTransposed(dense(basis.factors(rank: k)), x)  // m x N
            // Z_k = Q_k Q_k^T Z with Q_k the top-k eigenvectors.
            for i in 0..<m {
                for j in 0..<N {
                    var zk = 0.0
                    for t in order.prefix(k) {
                        var qz = 0.0
                        for r in 0..<m { qz += vectors[r, t] * z[r, j] }
                        zk += vectors[i, t] * qz
                    }
                    XCTAssertEqual(lxt[i, j], zk, accuracy: 1e-10 * values.max()!.squareRoot())
                }
            }
        }
    }

    /// Symmetric eigen-decomposition by cyclic Jacobi rotations (columns of `vectors`).
    func jacobiEigen(_ a0: Matrix<Double>) -> ([Double], Matrix<Double>) {
        var a = a0
        let n = a.rows
        var v = Matrix<Double>(rows: n, columns: n)
        for i in 0..<n { v[i, i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n { off += a[p, q] * a[p, q] } }
            if off < 1e-30 { break }
            for p in 0..<n {
                for q in (p + 1)..<n where a[p, q] != 0 {
                    let theta = (a[q, q] - a[p, p]) / (2 * a[p, q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    for r in 0..<n {
                        let arp = a[r, p]
                        let arq = a[r, q]
                        a[r, p] = c * arp - s * arq
                        a[r, q] = s * arp + c * arq
                    }
                    for r in 0..<n {
                        let apr = a[p, r]
                        let aqr = a[q, r]
                        a[p, r] = c * apr - s * aqr
                        a[q, r] = s * apr + c * aqr
                    }
                    for r in 0..<n {
                        let vrp = v[r, p]
                        let vrq = v[r, q]
                        v[r, p] = c * vrp - s * vrq
                        v[r, q] = s * vrp + c * vrq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0, $0] }, v)
    }

    /// MATH.md §2: with N points, `s_k = 0` for every `k >= rank(X W^T) = N`;
    /// the curve reaches the rounding level there, certified by its factors.
    func testZerosAtTheRankOfThePreactivations() throws {
        let (m, n, N) = (12, 16, 6)
        let w = gaussian(m, n, seed: 23, scale: 0.3)
        let x = gaussian(N, n, seed: 24)
        let b = (0..<m).map { 0.05 * Double($0 % 5) - 0.1 }
        let layer = try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }
        var settings = SpectrumSettings()
        settings.keepFactors = true
        settings.fit.maxSteps = 40
        let spectrum = try x.withView {
            try reluSpectrum(of: ReluBoundProblem(layer: layer, points: $0), ks: Array(0..<m), settings: settings)
        }
        let s0 = spectrum.entries[0].bound
        XCTAssertGreaterThan(spectrum.entries[N - 1].bound, 1e-6 * s0)
        for (e, f) in zip(spectrum.entries, spectrum.factors) where e.k >= N {
            XCTAssertLessThan(e.bound, 1e-12 * s0, "k = \(e.k)")
            let l = dense(try XCTUnwrap(f))
            XCTAssertEqual(e.bound, groupErrors(w, b, x, l, P: 1).max()!, accuracy: 1e-15 * s0)
        }
    }

    /// MATH.md §9: grouped maxima. `P = 1` is the ungrouped problem; with `P`
    /// rows per point every bound is the maximum over groups of the
    /// root-sum-square of the row errors of the returned factors, `k = 0` exact.
    func testGroupedMaximaMatchAHandComputation() throws {
        let (m, n, N, P) = (8, 6, 60, 5)
        let w = gaussian(m, n, seed: 25, scale: 0.4)
        let x = gaussian(N, n, seed: 26)
        let b = (0..<m).map { 0.1 * Double($0 % 3) - 0.1 }
        let layer = try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }
        var settings = SpectrumSettings()
        settings.keepFactors = true
        settings.fit.maxSteps = 60
        let ks = Array(0..<6)
        let (grouped, plain, single) = try x.withView { view in
            (
                try reluSpectrum(
                    of: ReluBoundProblem(layer: layer, points: view, groupSize: P), ks: ks, settings: settings),
                try reluSpectrum(of: ReluBoundProblem(layer: layer, points: view), ks: ks, settings: settings),
                try reluSpectrum(
                    of: ReluBoundProblem(layer: layer, points: view, groupSize: 1), ks: ks, settings: settings)
            )
        }
        XCTAssertEqual(plain.entries.map(\.bound), single.entries.map(\.bound))
        let zero = Matrix<Double>(rows: m, columns: n)
        XCTAssertEqual(grouped.entries[0].bound, groupErrors(w, b, x, zero, P: P).max()!, accuracy: 1e-12)
        XCTAssertEqual(grouped.entries[0].source, .exact)
        var previous = Double.infinity
        for (e, f) in zip(grouped.entries, grouped.factors) {
            let factors = try XCTUnwrap(f)
            XCTAssertLessThanOrEqual(factors.k, e.k)
            XCTAssertEqual(
                e.bound, groupErrors(w, b, x, dense(factors), P: P).max()!, accuracy: 1e-10 * e.bound + 1e-14)
            XCTAssertLessThanOrEqual(e.bound, previous)
            previous = e.bound
        }
        XCTAssertThrowsError(
            try x.withView { try ReluBoundProblem(layer: layer, points: $0.rows(0..<(N - 1)), groupSize: P) })
    }

    /// The start portfolio: at every fitted `k` the curve ends at or below a
    /// fit from the cold start alone (same seed, same start: the same fit),
    /// so a warm start can no longer hold a `k` on a plateau above it.
    func testNoKEndsAboveTheColdFit() throws {
        let (m, n, N) = (16, 16, 160)
        let w = gaussian(m, n, seed: 27, scale: (2.0 / 16).squareRoot())
        var x = gaussian(N, n, seed: 28)
        for i in 0..<N { for j in 0..<n { x[i, j] = (i + j) % 3 == 0 ? abs(x[i, j]) : 0 } }  // sparse, nonnegative
        let b = (0..<m).map { 0.1 * Double($0 % 4) - 0.15 }
        let layer = try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }
        var settings = SpectrumSettings()
        settings.fit.maxSteps = 60
        settings.fitStride = 1
        var cold = settings
        cold.warmStart = false
        let ks = Array(0..<m)
        let (curve, coldFits) = try x.withView { view -> (ReluSpectrum<Double>, [Double]) in
            let problem = try ReluBoundProblem(layer: layer, points: view)
            let curve = try reluSpectrum(of: problem, ks: ks, settings: settings)
            let single = try ks.dropFirst().map {
                try reluSpectrum(of: problem, ks: [$0], settings: cold).entries[0].bound
            }
            return (curve, single)
        }
        for (e, c) in zip(curve.entries.dropFirst(), coldFits) {
            XCTAssertLessThanOrEqual(e.bound, c, "k = \(e.k)")
        }
    }

    /// Each phase of `ReluBoundFit` on its own: the probe and least squares
    /// lower the sum of squares, the refinement never returns worse than its
    /// start, a restart halves the step and goes back to the best factors.
    func testFitPhases() throws {
        let (m, n, N, k) = (10, 8, 200, 3)
        let w = gaussian(m, n, seed: 29, scale: 0.5)
        let x = gaussian(N, n, seed: 30)
        let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        try x.withView { view in
            let problem = try ReluBoundProblem(layer: layer, points: view)
            let svd = try w.withView { try thinSVD(of: $0) }
            let factors = CandidateBasis.svd(svd, points: view).factors(rank: k)
            let (bound, errors) = factors.withPointers { problem.evaluate(u: $0, v: $1, k: k) }
            let start = EvaluatedCandidate(factors: factors, bound: bound, errors: errors, source: .svd)
            let fit = ReluBoundFit(problem: problem, settings: FitSettings(), seed: 0, start: factors)
            var state = ReluBoundFit<Double>.State(
                theta: factors.u + factors.v, m1: .init(repeating: 0, count: k * (m + n)),
                m2: .init(repeating: 0, count: k * (m + n)), scale: 1, best: start)
            try fit.probe(&state, start: start)
            XCTAssertEqual(state.steps, 3 * FitSettings().evaluationInterval)
            func loss(_ theta: [Double]) -> Double {
                problem.lossAndGradient(
                    factors: RankFactors(
                        k: k, m: m, n: n, u: Array(theta[0..<(m * k)]),
                        v: Array(theta[(m * k)...]))
                ).loss
            }
            let lossAfterProbe = loss(state.theta)
            XCTAssertLessThan(lossAfterProbe, problem.lossAndGradient(factors: factors).loss)
            try fit.leastSquares(&state)
            XCTAssertLessThan(loss(state.theta), lossAfterProbe)
            XCTAssertLessThanOrEqual(state.best.bound, start.bound)
            let beforeRefinement = state.best.bound
            try fit.refinement(&state)
            XCTAssertLessThanOrEqual(state.best.bound, beforeRefinement)
            let scale = state.scale
            state.theta = state.theta.map { $0 * 3 }
            XCTAssertTrue(fit.restart(&state, refining: false))
            XCTAssertEqual(state.scale, scale / 2)
            XCTAssertEqual(state.theta, state.best.factors.u + state.best.factors.v)
        }
    }
}
