import XCTest

@testable import ReluSVKit

/// The weighted reduced-rank regression (`WeightedRegression`, MATH.md §3):
/// a rank-`<= k` matrix whose reported bound is the float64 maximum error of
/// its factors, recomputed here by direct loops in float64, for float32 and
/// float64 inputs, grouped and not; below the plain regression it starts from.
final class WeightedCandidateTests: XCTestCase {
    /// `W` He Gaussian, a bias, nonnegative sparse `X` (rows are points), in float64.
    static func data(m: Int, n: Int, N: Int, seed: UInt64) -> (w: [Double], b: [Double], x: [Double]) {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        let w = (0..<(m * n)).map { (2.0 / Double(n)).squareRoot() * random.normal(row: $0 / n, column: $0 % n) }
        let x = (0..<(N * n)).map { max(random.normal(row: m + $0 / n, column: $0 % n) - 0.5, 0) }
        let b = (0..<m).map { 0.1 * random.normal(row: m + N, column: $0) }
        return (w, b, x)
    }

    /// Per group of `P` rows: `(sum ||ReLU(W x + b) - ReLU(U V x + b)||^2)^(1/2)`, by loops in float64.
    static func errors(w: [Double], b: [Double], x: [Double], u: [Double], v: [Double], m: Int, n: Int, k: Int, P: Int)
        -> [Double]
    {
        let N = x.count / n
        var out = [Double](repeating: 0, count: N / P)
        for i in 0..<N {
            var vx = [Double](repeating: 0, count: k)
            for r in 0..<k { for c in 0..<n { vx[r] += v[r * n + c] * x[i * n + c] } }
            for row in 0..<m {
                var wx = b[row]
                var lx = b[row]
                for c in 0..<n { wx += w[row * n + c] * x[i * n + c] }
                for r in 0..<k { lx += u[row * k + r] * vx[r] }
                let d = max(wx, 0) - max(lx, 0)
                out[i / P] += d * d
            }
        }
        return out.map { $0.squareRoot() }
    }

    /// `data` rounded to `Scalar` (the caller's values: the oracle uses them,
    /// widened) and its layer.
    static func scalarData<Scalar: BLASScalar>(_: Scalar.Type, m: Int, n: Int, N: Int, seed: UInt64) throws -> (
        w: [Scalar], b: [Scalar], x: [Scalar], layer: ReluLayer<Scalar>
    ) {
        let (w, b, x) = data(m: m, n: n, N: N, seed: seed)
        let cast = { (a: [Double]) in a.map { Scalar(Double($0)) } }
        let (ws, bs) = (cast(w), cast(b))
        let layer = try Matrix(rows: m, columns: n, storage: ws).withView {
            try ReluLayer(weight: $0, bias: bs, slope: 0)
        }
        return (ws, bs, cast(x), layer)
    }

    func check<Scalar: BLASScalar>(
        _: Scalar.Type, P: Int, m: Int = 12, n: Int = 10, N: Int = 60, route: RoundBasis = .gramWhereResolved
    ) throws {
        let (ws, bs, xs, layer) = try Self.scalarData(Scalar.self, m: m, n: n, N: N, seed: 91)
        let widen = { (a: [Scalar]) in a.map { Double($0) } }
        let points = Matrix(rows: N, columns: n, storage: xs)
        try points.withView { view in
            let problem = try ReluBoundProblem(layer: layer, points: view, groupSize: P)
            let rrr = try XCTUnwrap(try CandidateBasis.reducedRankRegression(layer: layer, points: view))
            let regression = WeightedRegression(problem: problem, rounds: 4, exponent: 1, route: route)
            XCTAssertEqual(regression.ranksFromPreactivations, n >= 2 * m)
            var won = 0
            for k in 1..<min(m, n, N) {
                let plain = rrr.factors(rank: k)
                let (bound, start) = plain.withPointers { problem.evaluate(u: $0, v: $1, k: k, certified: false) }
                let basis = rrr.leadingBasis(rank: k)
                guard let c = try regression.candidate(k: k, errors: start, bound: bound, basis: basis) else {
                    continue
                }
                won += 1
                XCTAssertEqual(c.source, .weightedRRR)
                XCTAssertLessThanOrEqual(c.fit!.k, k)
                let exact = Self.errors(
                    w: widen(ws), b: widen(bs), x: widen(xs), u: widen(c.fit!.u), v: widen(c.fit!.v),
                    m: m, n: n, k: c.fit!.k, P: P
                ).max()!
                XCTAssertEqual(c.bound, exact, accuracy: 1e-9 * exact, "k = \(k), P = \(P), \(Scalar.self)")
                if Scalar.self == Double.self {
                    // The reported value is the evaluation from the factors, not the rounds' ranking.
                    let own = c.fit!.withPointers { problem.evaluate(u: $0, v: $1, k: c.fit!.k, certified: true) }
                    XCTAssertEqual(c.bound, own.bound, "k = \(k), P = \(P)")
                }
                XCTAssertLessThan(c.bound, bound * (1 + 1e-3), "k = \(k): not below the plain regression")
            }
            XCTAssertGreaterThan(won, 0, "the reweighting never improved on the plain regression")
        }
    }

    func testCertifiedInDoubleAndFloat() throws {
        for P in [1, 3] {
            for route in [RoundBasis.svd, .gram, .gramWhereResolved, .powerStep] {
                try check(Double.self, P: P, route: route)
                try check(Float.self, P: P, route: route)
                // n >= 2 m: the rounds ranked from the pre-activations, the chosen one certified from its factors.
                try check(Double.self, P: P, m: 6, n: 20, route: route)
                try check(Float.self, P: P, m: 6, n: 20, route: route)
                // N < m: the Gram matrix of the points' side (N x N).
                try check(Double.self, P: P, m: 24, n: 16, N: 12, route: route)
                try check(Float.self, P: P, m: 24, n: 16, N: 12, route: route)
            }
        }
    }

    /// The Gram route's rule: the `k`-th eigenvalue at least `sqrt(eps)` of the largest.
    func testGramResolvesOnlyAboveTheSquareRootOfEpsilon() {
        let values = [4.0, 1.0, 1e-9, 0]
        XCTAssertTrue(RoundBasis.resolves(values, rank: 1, epsilon: 1e-16))
        XCTAssertTrue(RoundBasis.resolves(values, rank: 2, epsilon: 1e-16))
        XCTAssertFalse(RoundBasis.resolves(values, rank: 3, epsilon: 1e-16))  // 1e-9 < 4e-8
        XCTAssertTrue(RoundBasis.resolves(values, rank: 3, epsilon: 1e-20))  // 1e-9 >= 4e-10
        XCTAssertFalse(RoundBasis.resolves(values, rank: 4, epsilon: 1e-20))
        XCTAssertFalse(RoundBasis.resolves(values, rank: 0, epsilon: 1e-16))
        XCTAssertFalse(RoundBasis.resolves(values, rank: 5, epsilon: 1e-16))
        XCTAssertFalse(RoundBasis.resolves([0, 0], rank: 1, epsilon: 1e-16))
        XCTAssertFalse(RoundBasis.resolves([.nan, 1], rank: 1, epsilon: 1e-16))
    }

    /// A round's basis by the resolved-Gram route: the Gram matrix's
    /// eigenvectors where its `k`-th eigenvalue is at least `sqrt(eps)` of
    /// the largest, else the SVD's right singular vectors, bit for bit, and
    /// the later rounds at that `k` go to the SVD at once. The pre-activations
    /// of a weight whose rows are scaled by `10^-i` spread over 7 decades.
    func testUnresolvedRanksTakeTheSVD() throws {
        let (m, n, N) = (8, 8, 40)
        let (w0, b, x) = Self.data(m: m, n: n, N: N, seed: 95)
        let w = (0..<(m * n)).map { w0[$0] * pow(10, -Double($0 / n)) }
        let layer = try Matrix(rows: m, columns: n, storage: w).withView {
            try ReluLayer(weight: $0, bias: b, slope: 0)
        }
        try Matrix(rows: N, columns: n, storage: x).withView { view in
            let problem = try ReluBoundProblem(layer: layer, points: view, groupSize: 1)
            let regression = WeightedRegression(problem: problem, rounds: 4, exponent: 1, route: .gramWhereResolved)
            let values = try regression.gramReduction(regression.zt).eigenvalues()
            let svd = try regression.zt.withView { try rightSVD(of: $0) }.vt
            var counts = (resolved: 0, unresolved: 0)
            for k in 1..<m {
                var mayServe = true
                let vt = try regression.basisOfRound(regression.zt, rank: k, gramMayServe: &mayServe)
                if RoundBasis.resolves(values, rank: k, epsilon: Double.ulpOfOne) {
                    counts.resolved += 1
                    let gram = try XCTUnwrap(regression.gramEigenvectors(regression.zt, count: k, resolving: nil))
                    XCTAssertEqual(vt.storage, gram.storage, "k = \(k): resolved, the Gram route")
                    XCTAssertEqual(vt.rows, k, "k = \(k): only the k vectors the regression reads")
                    XCTAssertTrue(mayServe)
                } else {
                    counts.unresolved += 1
                    XCTAssertEqual(vt.storage, svd.storage, "k = \(k): not resolved, the SVD")
                    XCTAssertFalse(mayServe)
                }
                var cleared = false
                XCTAssertEqual(
                    try regression.basisOfRound(regression.zt, rank: 1, gramMayServe: &cleared).storage, svd.storage)
            }
            XCTAssertGreaterThan(counts.resolved, 0)
            XCTAssertGreaterThan(counts.unresolved, 0, "no rank left unresolved: the fallback is not tested")
        }
    }

    /// A power step (`RoundBasis.powerStep`) returns an orthonormal `Q_k^T`
    /// spanning `Z^T D Z Q` (recomputed by loops in float64, `D` uneven
    /// weights of points or of groups of 3: the part of `G Q` outside the new
    /// span below 1e-10 of `||G Q||`), for a full-rank `Z` with `N >= m` and
    /// `N < m`, at a rank where `Z`'s values have a gap (not its rank, where any
    /// step spans everything); repeated with `D = I` it reaches the span of the SVD's
    /// leading `k` right singular vectors (projectors equal to 1e-8), the
    /// basis the exact routes take.
    func testPowerStepsSpanTheGramProductAndConverge() throws {
        for (m, n, N, P) in [(12, 20, 60, 1), (12, 20, 60, 3), (24, 16, 12, 3)] {
            let (_, _, xs, layer) = try Self.scalarData(Double.self, m: m, n: n, N: N, seed: 99)
            try Matrix(rows: N, columns: n, storage: xs).withView { view in
                let problem = try ReluBoundProblem(layer: layer, points: view, groupSize: P)
                let regression = WeightedRegression(problem: problem, rounds: 1, exponent: 1, route: .powerStep)
                let z = regression.zt
                let f = try z.withView { try rightSVD(of: $0) }
                let svd = f.vt
                // The rank of the widest gap s_k / s_(k-1): 300 steps reach its span to rounding.
                let ranks = (1..<min(m, N)).filter { f.s[$0] > 1e-8 * f.s[0] }
                XCTAssertEqual(ranks.count, min(m, N) - 1, "Z has full rank")
                let k = ranks.max { Double(f.s[$0] / f.s[$0 - 1]) > Double(f.s[$1] / f.s[$1 - 1]) }!
                XCTAssertLessThan(pow(Double(f.s[k] / f.s[k - 1]), 600), 1e-10)
                var q = Matrix<Double>(rows: k, columns: m)
                for r in 0..<k { for i in 0..<m { q[r, i] = cos(Double(7 * r + i)) } }  // not orthonormal
                let weights = (0..<(N / P)).map { 1 + 0.9 * cos(Double(3 * $0)) }
                let next = try XCTUnwrap(
                    regression.powerStep(projected: regression.projections(on: q, rank: k), weights: weights, rank: k))
                // G Q by loops: (Z^T D (Z Q^T)) as k columns of length m.
                var gq = [[Double]](repeating: [Double](repeating: 0, count: m), count: k)
                for r in 0..<k {
                    for p in 0..<N {
                        var dot = 0.0
                        for i in 0..<m { dot += z[p, i] * q[r, i] }
                        for i in 0..<m { gq[r][i] += z[p, i] * weights[p / P] * dot }
                    }
                }
                for r in 0..<k {
                    for s in 0..<k {
                        let dot = (0..<m).reduce(0.0) { $0 + next[r, $1] * next[s, $1] }
                        XCTAssertEqual(dot, r == s ? 1 : 0, accuracy: 1e-12, "orthonormal rows")
                    }
                    let coefficients = (0..<k).map { s in (0..<m).reduce(0.0) { $0 + next[s, $1] * gq[r][$1] } }
                    let outside = (0..<m).map { i in
                        gq[r][i] - (0..<k).reduce(0.0) { $0 + coefficients[$1] * next[$1, i] }
                    }
                    let norm = gq[r].reduce(0.0) { $0 + $1 * $1 }.squareRoot()
                    XCTAssertLessThan(outside.reduce(0.0) { max($0, abs($1)) }, 1e-10 * norm, "m = \(m), N = \(N)")
                }
                var iterate = next
                let ones = [Double](repeating: 1, count: N / P)
                for _ in 0..<300 {
                    iterate = try XCTUnwrap(
                        regression.powerStep(
                            projected: regression.projections(on: iterate, rank: k), weights: ones, rank: k))
                }
                for i in 0..<m {
                    for j in 0..<m {
                        let a = (0..<k).reduce(0.0) { $0 + iterate[$1, i] * iterate[$1, j] }
                        let b = (0..<k).reduce(0.0) { $0 + svd[$1, i] * svd[$1, j] }
                        XCTAssertEqual(a, b, accuracy: 1e-8, "m = \(m), N = \(N): the leading span")
                    }
                }
            }
        }
    }

    /// For `N < m` the basis from `Z_s Z_s^T` spans the SVD's leading `k`
    /// right singular vectors (equal projectors to 1e-9) and is orthonormal
    /// to 1e-9, in `Double` and `Float`; nil where rank `k` is not resolved
    /// (a rank-3 `Z_s` at `k = 4`).
    func testLeftGramBasisSpansTheLeadingRightSingularVectors() throws {
        try leftGram(Double.self)
        try leftGram(Float.self)
    }

    func leftGram<Scalar: BLASScalar>(_: Scalar.Type) throws {
        let (m, n, N) = (24, 16, 10)
        let (ws, bs, xs, layer) = try Self.scalarData(Scalar.self, m: m, n: n, N: N, seed: 97)
        _ = (ws, bs)
        try Matrix(rows: N, columns: n, storage: xs).withView { view in
            let problem = try ReluBoundProblem(layer: layer, points: view, groupSize: 1)
            let regression = WeightedRegression(problem: problem, rounds: 1, exponent: 1, route: .gramWhereResolved)
            let z = regression.zt
            let svd = try z.withView { try rightSVD(of: $0) }.vt
            for k in 1...6 {
                let q = try XCTUnwrap(try regression.leftGramBasis(z, rank: k), "k = \(k)")
                XCTAssertEqual(q.rows, k)
                for i in 0..<m {
                    for j in 0..<m {
                        var (left, right) = (0.0, 0.0)
                        for r in 0..<k {
                            left += Double(q[r, i]) * Double(q[r, j])
                            right += Double(svd[r, i]) * Double(svd[r, j])
                        }
                        XCTAssertEqual(left, right, accuracy: Scalar.self == Double.self ? 1e-9 : 1e-5)
                    }
                }
                for a in 0..<k {
                    for b in 0..<k {
                        let dot = (0..<m).reduce(0.0) { $0 + Double(q[a, $1]) * Double(q[b, $1]) }
                        XCTAssertEqual(dot, a == b ? 1 : 0, accuracy: Scalar.self == Double.self ? 1e-9 : 1e-5)
                    }
                }
            }
            // Three points repeated: Z_s of rank 3, so its fourth eigenvalue is rounding.
            var low = z
            for i in 3..<N { for j in 0..<m { low[i, j] = z[i % 3, j] } }
            XCTAssertNotNil(try regression.leftGramBasis(low, rank: 3))
            XCTAssertNil(try regression.leftGramBasis(low, rank: 4))
        }
    }

    /// The rounds' errors from the pre-activations `(Z Q_k) Q_k^T` agree with
    /// the evaluation from the factors `(X V^T) U^T` to rounding.
    func testRankingFromThePreactivationsAgreesWithTheFactors() throws {
        let (m, n, N) = (6, 20, 60)
        let (_, _, xs, layer) = try Self.scalarData(Double.self, m: m, n: n, N: N, seed: 93)
        try Matrix(rows: N, columns: n, storage: xs).withView { view in
            let problem = try ReluBoundProblem(layer: layer, points: view, groupSize: 3)
            let regression = WeightedRegression(problem: problem, rounds: 1, exponent: 1, route: .svd)
            let vt = try regression.zt.withView { try rightSVD(of: $0) }.vt
            for k in 1..<m {
                let factors = regression.projection(vt, rank: k)
                let ranked = regression.evaluation(qt: vt, rank: k)
                XCTAssertNil(ranked.factors)  // not formed for a ranking in Double
                let exact = factors.withPointers { problem.evaluate(u: $0, v: $1, k: k, certified: false) }
                XCTAssertEqual(ranked.bound, exact.bound, accuracy: 1e-12 * exact.bound, "k = \(k)")
                for (a, b) in zip(ranked.errors, exact.errors) { XCTAssertEqual(a, b, accuracy: 1e-12 * exact.bound) }
            }
        }
    }

    /// In a curve without fits the weighted candidate is reported under its
    /// name at some `k`, with factors of rank `<= k` that reproduce the bound.
    func testReportedInTheCurve() throws {
        let (m, n, N) = (12, 10, 60)
        let (w, b, x) = Self.data(m: m, n: n, N: N, seed: 92)
        let layer = try Matrix(rows: m, columns: n, storage: w).withView {
            try ReluLayer(weight: $0, bias: b, slope: 0)
        }
        var settings = SpectrumSettings()
        settings.fit.maxSteps = 0
        settings.keepFactors = true
        let curve = try Matrix(rows: N, columns: n, storage: x).withView {
            try reluSpectrum(
                of: ReluBoundProblem(layer: layer, points: $0), ks: Array(0..<min(m, n)), settings: settings)
        }
        var seen = 0
        for (e, f) in zip(curve.entries, curve.factors) where e.source == .weightedRRR {
            seen += 1
            let f = try XCTUnwrap(f)
            XCTAssertLessThanOrEqual(f.k, e.k)
            let exact = Self.errors(w: w, b: b, x: x, u: f.u, v: f.v, m: m, n: n, k: f.k, P: 1).max()!
            XCTAssertEqual(e.bound, exact, accuracy: 1e-12 * exact)
        }
        XCTAssertGreaterThan(seen, 0)
        settings.weightedRounds = 0
        let plain = try Matrix(rows: N, columns: n, storage: x).withView {
            try reluSpectrum(
                of: ReluBoundProblem(layer: layer, points: $0), ks: Array(0..<min(m, n)), settings: settings)
        }
        XCTAssertFalse(plain.entries.contains { $0.source == .weightedRRR })
        for (a, p) in zip(curve.entries, plain.entries) { XCTAssertLessThanOrEqual(a.bound, p.bound) }
    }

    /// `Q_k^T W` of a `W` with at most one nonzero per column (a depthwise kernel matrix: `C x 9C`, a
    /// diagonal) by its products alone, bit for bit the GEMM's; a `W` with two nonzeros in a column takes
    /// the GEMM (no owners).
    func checkOneNonzeroPerColumn<Scalar: BLASScalar>(_: Scalar.Type) throws {
        let random = CounterRandom(seed: 5, stream: .factorInitialisation)
        let c = 7
        var depthwise = Matrix<Scalar>(rows: c, columns: 9 * c)
        for i in 0..<c { for t in 0..<9 { depthwise[i, 9 * i + t] = Scalar(random.normal(row: i, column: t)) } }
        depthwise[2, 18] = 0  // a zero column
        var diagonal = Matrix<Scalar>(rows: c, columns: c)
        for i in 0..<c { diagonal[i, i] = Scalar(random.normal(row: 50, column: i)) }
        var shared = diagonal
        shared[0, 1] = 1
        XCTAssertNil(columnOwners(of: shared))
        for w in [depthwise, diagonal] {
            let (m, n, N) = (w.rows, w.columns, 30)
            var x = Matrix<Scalar>(rows: N, columns: n)
            for i in 0..<N { for j in 0..<n { x[i, j] = Scalar(max(random.normal(row: 100 + i, column: j), 0)) } }
            let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
            try x.withView { view in
                let regression = WeightedRegression(
                    problem: try ReluBoundProblem(layer: layer, points: view), rounds: 1, exponent: 1, route: .svd)
                XCTAssertNotNil(regression.owners)
                var vt = Matrix<Scalar>(rows: m, columns: m)
                for r in 0..<m { for i in 0..<m { vt[r, i] = Scalar(random.normal(row: 200 + r, column: i)) } }
                vt[1, 2] = -0.0  // a signed zero: the GEMM's sum starts from +0
                for k in [1, m / 2, m] {
                    var gemm = [Scalar](repeating: 0, count: k * n)
                    vt.storage.withUnsafeBufferPointer { q in
                        w.storage.withUnsafeBufferPointer { wp in
                            gemm.withUnsafeMutableBufferPointer { g in
                                Scalar.gemm(
                                    transA: false, transB: false, m: k, n: n, k: m, alpha: 1, a: q.baseAddress!,
                                    lda: m, b: wp.baseAddress!, ldb: n, beta: 0, c: g.baseAddress!, ldc: n)
                            }
                        }
                    }
                    let v = regression.projection(vt, rank: k).v
                    XCTAssertEqual(
                        v.map { Double($0).bitPattern }, gemm.map { Double($0).bitPattern },
                        "\(Scalar.self) \(m) x \(n), k = \(k)")
                }
            }
        }
    }

    func testProjectionOfOneNonzeroPerColumnIsTheGEMMs() throws {
        try checkOneNonzeroPerColumn(Float.self)
        try checkOneNonzeroPerColumn(Double.self)
    }
}
