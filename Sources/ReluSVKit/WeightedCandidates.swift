#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Weighted reduced-rank regression (MATH.md §3, the data-aware candidates,
/// weighted by Lawson's reweighting).
///
/// The reduced-rank regression `Q_k Q_k^T W` (`CandidateBasis`) minimises the
/// sum over all points of the squared pre-activation errors
/// `||(W - L) x||^2`, but the bound is the maximum over points of the ReLU
/// error `e_g`. For point weights `d_g > 0` the rank-`k` matrix minimising
/// `sum_g d_g sum_{i in g} ||(W - L) x_i||^2` is again `Q_k Q_k^T W`, now with
/// `Q` the left singular vectors of `Z D^(1/2)` (`Z = W X^T`, the columns of
/// point `g` scaled by `d_g^(1/2)`): `L X^T D^(1/2)` is the rank-`k`
/// truncation of `Z D^(1/2)`. Lawson's iteration for a minimax fit raises
/// the weight of the points whose error is large: starting from the plain
/// regression (`d = 1`), each round sets `d_g <- d_g (e_g / max e)^p` with the
/// exact ReLU errors `e_g` of the previous round (so a coordinate that stays
/// inactive in both the target and the approximant costs nothing), and takes
/// the SVD again, or one block power step towards it from the previous
/// round's basis (`RoundBasis.powerStep`, at every `k`). Every round's
/// matrix has rank `<= k` and its ReLU errors are evaluated (power rounds
/// from the points' projections, other rounds for `n >= 2 m` from the
/// pre-activations: the chosen round then again from its factors); the best
/// is certified like every other candidate (`ReluBoundProblem.certify`),
/// reported with source `weighted-rrr`.
///
/// Work per `k`: `rounds` power steps (three GEMMs of `N m k` and a QR of
/// `m x k` each) or thin SVDs of an `N x m` matrix and their evaluations
/// (`N k (m + n)` each, or `2 N m k` from the pre-activations), so it runs
/// only on layers where `N m` is small.
struct WeightedRegression<Scalar: BLASScalar> {
    let problem: ReluBoundProblem<Scalar>
    /// `X W^T` (`N x m`).
    let zt: Matrix<Scalar>
    let rounds: Int
    let exponent: Double
    /// Where each round's `Q` comes from (`RoundBasis`).
    let route: RoundBasis
    /// The row of each column's one nonzero entry of `W` (-1 for a zero
    /// column) when no column has two (a depthwise convolution's kernel
    /// matrix, a BatchNorm's diagonal); nil otherwise (`columnOwners(of:)`).
    let owners: [Int]?
    /// Rank the exact routes' rounds (the bands') from the pre-activations
    /// (`ReluBoundProblem.rankingErrors`) where that saves at least a third
    /// of the work, `n >= 2 m` (a convolution's patches, a joint map's
    /// stacked branches); elsewhere each is evaluated from its factors. Power
    /// rounds are always ranked, from the points' projections.
    let ranksFromPreactivations: Bool

    init(problem: ReluBoundProblem<Scalar>, rounds: Int, exponent: Double, route: RoundBasis) {
        self.problem = problem
        zt = linearPreactivations(layer: problem.layer, points: problem.x)
        self.rounds = rounds
        self.exponent = exponent
        self.route = route
        owners = columnOwners(of: problem.layer.weight)
        ranksFromPreactivations = problem.layer.inputs >= 2 * problem.layer.outputs
    }

    /// The best of `rounds` reweighted regressions at rank `k`, started from
    /// the plain regression's per-point errors `errors` (bound `bound`) and,
    /// for `RoundBasis.powerStep`, its basis `Q_k^T` (`basis`, `k x m`);
    /// certified. Nil when no round beats `bound` or the data are not finite.
    func candidate(k: Int, errors start: [Double], bound: Double, basis: Matrix<Scalar>? = nil) throws
        -> ChainBest<Scalar>?
    {
        guard let chosen = try bestRound(k: k, errors: start, bound: bound, basis: basis) else { return nil }
        let factors = chosen.factors ?? projection(chosen.vt, rank: k)
        var errors = chosen.errors
        if roundsAreRanked {
            // Ranked from the pre-activations or projections: the chosen round evaluated from its factors.
            let value: Double
            (value, errors) = factors.withPointers { problem.evaluate(u: $0, v: $1, k: k, certified: false) }
            guard value.isFinite, value < bound else { return nil }
        }
        let certified = factors.withFactorPointers { problem.certify(errors: &errors, factors: $0) }
        return ChainBest(base: .fitted(factors), rank: factors.k, bound: certified, source: .weightedRRR)
    }

    /// One round of Lawson's iteration: `Q^T` of its weighted regression, the
    /// rank-`k` approximant's factors where they were formed (`evaluation`),
    /// its evaluated (not yet certified) bound and point errors.
    struct Round {
        var vt: Matrix<Scalar>
        var factors: RankFactors<Scalar>?
        var bound: Double
        var errors: [Double]
    }

    /// Whether a round's bound and errors are a ranking (from the
    /// pre-activations or the points' projections), so that the chosen round
    /// is evaluated again from its factors (`candidate`), or the factors' own
    /// evaluation.
    var roundsAreRanked: Bool { route == .powerStep || ranksFromPreactivations }

    /// The round of Lawson's iteration at rank `k` whose approximant has the
    /// smallest maximum error, with `Q^T` (the rows of `vt`, `r x m`) of its
    /// weighted regression; nil when no round beats `bound` (the plain
    /// regression, errors `start`). Each round's errors (the next weights and
    /// the ranking) come from `evaluation(qt:rank:)`; each round's basis from
    /// `basisOfRound`, or for `RoundBasis.powerStep` from `basis` (the plain
    /// regression's `Q_k^T`, required) by `powerRounds`.
    func bestRound(k: Int, errors start: [Double], bound: Double, basis: Matrix<Scalar>? = nil) throws -> Round? {
        guard k > 0, rounds > 0, zt.storage.allSatisfy(\.isFinite) else { return nil }
        if route == .powerStep {
            guard let basis else { return nil }
            return powerRounds(k: k, errors: start, bound: bound, basis: basis)
        }
        let m = problem.layer.outputs
        let N = problem.count
        let P = problem.groupSize
        var weights = [Double](repeating: 1, count: problem.groups)
        var errors = start
        var best: Round?
        var gramMayServe = true  // until a round's Gram matrix does not resolve rank k (then the SVD)
        for _ in 0..<rounds {
            guard reweight(&weights, errors: errors) else { break }
            var scaled = zt
            scaled.withUnsafeMutableBufferPointer { z in
                for i in 0..<N {
                    let root = Scalar(weights[i / P].squareRoot())
                    for j in 0..<m { z[i * m + j] *= root }
                }
            }
            let vt = try basisOfRound(scaled, rank: k, gramMayServe: &gramMayServe)
            guard k <= vt.rows else { break }
            let (factors, value, next) = evaluation(qt: vt, rank: k)
            guard value.isFinite else { break }
            if value < (best?.bound ?? bound) { best = Round(vt: vt, factors: factors, bound: value, errors: next) }
            errors = next
        }
        return best
    }

    /// Lawson's rounds at rank `k` by power steps (`RoundBasis.powerStep`),
    /// from the plain regression's `Q_k^T` (`basis`) and errors `start`
    /// (bound `bound`): each round reweights, steps `Q <- orth(Z^T D Z Q)`
    /// (`powerStep`) and ranks the new `Q` from its projections `P = Z Q`
    /// (`N x k`; `X L^T = P Q^T`), which the next step reads again (`Z^T D
    /// P`). A round is three GEMMs of `N m k` and a QR of `m x k`; the
    /// weighted pre-activations are never formed. Nil when no round beats
    /// `bound`; the chosen round is evaluated from its factors by `candidate`
    /// (`roundsAreRanked`).
    func powerRounds(k: Int, errors start: [Double], bound: Double, basis: Matrix<Scalar>) -> Round? {
        guard k <= basis.rows, basis.columns == problem.layer.outputs else { return nil }
        var projected = projections(on: basis, rank: k)
        var weights = [Double](repeating: 1, count: problem.groups)
        var errors = start
        var best: Round?
        for _ in 0..<rounds {
            guard reweight(&weights, errors: errors),
                let vt = powerStep(projected: projected, weights: weights, rank: k)
            else { break }
            projected = projections(on: vt, rank: k)
            let (factors, value, next) = ranking(projected: projected, qt: vt, rank: k)
            guard value.isFinite else { break }
            if value < (best?.bound ?? bound) { best = Round(vt: vt, factors: factors, bound: value, errors: next) }
            errors = next
        }
        return best
    }

    /// The bound and point errors of `Q_k Q_k^T W` ranked from the points'
    /// projections `P = Z Q_k` (`projected`, `N x k`; `ranked`).
    func ranking(projected: [Scalar], qt vt: Matrix<Scalar>, rank k: Int) -> (
        factors: RankFactors<Scalar>?, bound: Double, errors: [Double]
    ) {
        let q = basis(vt, rank: k)
        let errors = projected.withUnsafeBufferPointer { p in
            q.withUnsafeBufferPointer { problem.rankingErrors(projection: p.baseAddress!, q: $0.baseAddress!, k: k) }
        }
        return ranked(errors, qt: vt, rank: k)
    }

    /// `P = Z Q_k` (`N x k`, row-major): the pre-activations `Z = X W^T`
    /// projected on the first `k` rows of `vt` (`Q_k^T`), one GEMM of `N m k`.
    func projections(on vt: Matrix<Scalar>, rank k: Int) -> [Scalar] {
        let N = problem.count
        let m = problem.layer.outputs
        var p = [Scalar](repeating: 0, count: N * k)
        zt.storage.withUnsafeBufferPointer { z in
            vt.storage.withUnsafeBufferPointer { q in
                Scalar.gemm(
                    transA: false, transB: true, m: N, n: k, k: m, alpha: 1, a: z.baseAddress!, lda: m,
                    b: q.baseAddress!, ldb: m, beta: 0, c: &p, ldc: k)
            }
        }
        return p
    }

    /// The bound and point errors of the round's rank-`k` approximant
    /// `Q_k Q_k^T W` (`Q_k^T` the first `k` rows of `vt`): from the
    /// pre-activations where `ranksFromPreactivations`, else from its factors.
    /// Its factors are returned where they were formed: not when ranked in
    /// `Double`, where nothing reads them (`V = Q_k^T W` is `k m n`
    /// multiply-adds; `candidate` forms the chosen round's).
    func evaluation(qt vt: Matrix<Scalar>, rank k: Int) -> (
        factors: RankFactors<Scalar>?, bound: Double, errors: [Double]
    ) {
        guard ranksFromPreactivations else {
            let factors = projection(vt, rank: k)
            let (bound, errors) = factors.withPointers { problem.evaluate(u: $0, v: $1, k: k, certified: false) }
            return (factors, bound, errors)
        }
        let q = basis(vt, rank: k)
        let errors = zt.storage.withUnsafeBufferPointer { z in
            vt.storage.withUnsafeBufferPointer { qt in
                q.withUnsafeBufferPointer {
                    problem.rankingErrors(preactivations: z.baseAddress!, q: $0.baseAddress!, qt: qt.baseAddress!, k: k)
                }
            }
        }
        return ranked(errors, qt: vt, rank: k)
    }

    /// A ranking's bound and errors: in `Double` the ranking itself; below
    /// `Double` with its largest errors recomputed in `Double` from the
    /// factors (`refineTop`), which are returned.
    func ranked(_ errors: [Double], qt vt: Matrix<Scalar>, rank k: Int) -> (
        factors: RankFactors<Scalar>?, bound: Double, errors: [Double]
    ) {
        guard Scalar.self != Double.self else { return (nil, errors.reduce(0, max), errors) }
        var errors = errors
        let factors = projection(vt, rank: k)
        let bound = factors.withFactorPointers { problem.refineTop(errors: &errors, factors: $0) }
        return (factors, bound, errors)
    }

    /// One block power step on the weighted Gram matrix `Z^T D Z` (`D` the
    /// group `weights`) from `Q` (`m x k`), given its projections `P = Z Q`
    /// (`projected`, `N x k`): the orthonormal `Q'^T` (`k x m`) spanning
    /// `Z^T (D P)`, one GEMM of `N m k` and a Householder QR of the `m x k`
    /// product (`orthonormalColumns`). Nil where LAPACK fails.
    func powerStep(projected: [Scalar], weights: [Double], rank k: Int) -> Matrix<Scalar>? {
        let N = problem.count
        let m = problem.layer.outputs
        let P = problem.groupSize
        guard k >= 1, k <= m, projected.count == N * k else { return nil }
        var scaled = projected
        for i in 0..<N {
            let d = Scalar(weights[i / P])
            for r in 0..<k { scaled[i * k + r] *= d }
        }
        // Row-major k x m is column-major m x k: the product's columns, then Q's.
        var y = [Scalar](repeating: 0, count: k * m)
        zt.storage.withUnsafeBufferPointer { z in
            Scalar.gemm(
                transA: true, transB: false, m: k, n: m, k: N, alpha: 1, a: scaled, lda: k, b: z.baseAddress!,
                ldb: m, beta: 0, c: &y, ldc: m)
        }
        guard let q = try? orthonormalColumns(&y, rows: m, columns: k) else { return nil }
        return Matrix(rows: k, columns: m, storage: q)
    }

    /// `Q_k` (`m x k`, row-major), the transpose of the first `k` rows of `vt`.
    func basis(_ vt: Matrix<Scalar>, rank k: Int) -> [Scalar] {
        let m = problem.layer.outputs
        var u = [Scalar](repeating: 0, count: m * k)
        for i in 0..<m { for r in 0..<k { u[i * k + r] = vt[r, i] } }
        return u
    }

    /// `Q^T` of a round's weighted regression from its scaled pre-activations
    /// `Z_s` (`N x m`), by `route`: a Gram matrix's eigenvectors where they
    /// serve rank `k` (`Z_s^T Z_s` for `N >= m`, `Z_s Z_s^T` for `N < m`),
    /// else the right singular vectors of `Z_s`. A Gram matrix that does not
    /// resolve `k` clears `gramMayServe`: the later rounds at this `k` (nearby
    /// weights) take the SVD at once.
    func basisOfRound(_ scaled: Matrix<Scalar>, rank k: Int, gramMayServe: inout Bool) throws -> Matrix<Scalar> {
        switch route {
        case .gram:
            if let vt = try gramEigenvectors(scaled, count: scaled.columns, resolving: nil) { return vt }
        case .gramWhereResolved where gramMayServe && scaled.rows >= scaled.columns:
            if let vt = try gramEigenvectors(scaled, count: k, resolving: k) { return vt }
            gramMayServe = false
        case .gramWhereResolved where gramMayServe:
            if let vt = try leftGramBasis(scaled, rank: k) { return vt }
            gramMayServe = false
        case .svd, .gramWhereResolved, .powerStep:  // a power round's basis comes from `powerStep`
            break
        }
        return try scaled.withView { try rightSVD(of: $0) }.vt
    }

    /// `Q_k^T` (`k x m`) of `Z_s` (`N x m`, `N < m`): its leading right
    /// singular directions from the eigenpairs of `Z_s Z_s^T` (`N x N`;
    /// `leftGramDirections`), computed in `Double` whatever `Scalar` (`N^2 m`
    /// and `N k m` multiply-adds and an `N x N` reduction, against an SVD of
    /// the `N x m` matrix). Nil where the eigenvalues do not resolve rank `k`
    /// (`RoundBasis.resolves`, `Double`'s `eps`).
    func leftGramBasis(_ scaled: Matrix<Scalar>, rank k: Int) throws -> Matrix<Scalar>? {
        let z = scaled.storage.map { Double($0) }
        let qt = try z.withUnsafeBufferPointer {
            try leftGramDirections(
                of: MatrixView(base: $0.baseAddress!, rows: scaled.rows, columns: scaled.columns), count: k)
        }
        return qt.map { Matrix(rows: k, columns: scaled.columns, storage: $0.storage.map { Scalar($0) }) }
    }

    /// `Q_count^T` (`count x m`, rows by decreasing eigenvalue) of the Gram
    /// matrix `Z_s^T Z_s` of the scaled pre-activations `Z_s` (`N x m`),
    /// reading only the `count` eigenvectors (`GramTridiagonal.largestVectors`).
    /// With `resolving` `k`, nil unless its eigenvalues (`?sterf`, before any
    /// vector) resolve rank `k` (`RoundBasis.resolves`, the working
    /// precision's `eps`); nil too where the eigenvector solver fails.
    func gramEigenvectors(_ scaled: Matrix<Scalar>, count: Int, resolving k: Int?) throws -> Matrix<Scalar>? {
        let m = scaled.columns
        let reduced = try gramReduction(scaled)
        if let k, try !RoundBasis.resolves(reduced.eigenvalues(), rank: k, epsilon: Double(Scalar.ulpOfOne)) {
            return nil
        }
        guard let q = try reduced.largestVectors(count) else { return nil }
        var vt = Matrix<Scalar>(rows: count, columns: m)
        for r in 0..<count { for i in 0..<m { vt[r, i] = q[i + r * m] } }
        return vt
    }

    /// `Z_s^T Z_s` (`m x m`, one `?syrk`) reduced to tridiagonal form.
    func gramReduction(_ scaled: Matrix<Scalar>) throws -> GramTridiagonal<Scalar> {
        let m = scaled.columns
        var g = [Scalar](repeating: 0, count: m * m)
        scaled.storage.withUnsafeBufferPointer { z in
            g.withUnsafeMutableBufferPointer { gp in
                // the row-major upper triangle: the column-major lower one GramTridiagonal reads
                Scalar.gramUpper(n: m, k: scaled.rows, a: z.baseAddress!, lda: m, c: gp.baseAddress!, ldc: m)
            }
        }
        return try GramTridiagonal(g, order: m)
    }

    /// Lawson's update `d_g <- d_g (e_g / max e)^p`, rescaled to a largest
    /// weight of 1 (with a floor of `1e-12` so that no point is dropped);
    /// false when the errors are all zero or not finite.
    func reweight(_ weights: inout [Double], errors: [Double]) -> Bool {
        guard let top = errors.max(), top > 0, top.isFinite else { return false }
        var largest = 0.0
        for g in weights.indices {
            weights[g] *= pow(errors[g] / top, exponent)
            largest = max(largest, weights[g])
        }
        guard largest > 0 else { return false }
        for g in weights.indices { weights[g] = max(weights[g] / largest, 1e-12) }
        return true
    }

    /// `L = Q_k Q_k^T W` as factors `U = Q_k` (`m x k`), `V = Q_k^T W`
    /// (`k x n`), `Q_k^T` the first `k` rows of `vt` (`r x m`). Where each
    /// column of `W` has at most one nonzero (`owners`), each entry of `V` is
    /// one product, `Q_k^T[r, c] W[c, j] + 0`: for a finite `Q_k` (an SVD of
    /// finite data) the value the GEMM gives (its other terms are exact
    /// zeros, its sum starts from `+0`), without the `k m n` multiply-adds.
    func projection(_ vt: Matrix<Scalar>, rank k: Int) -> RankFactors<Scalar> {
        let m = problem.layer.outputs
        let n = problem.layer.inputs
        let u = basis(vt, rank: k)
        var v = [Scalar](repeating: 0, count: k * n)
        let w = problem.layer.weight
        if let owners {
            for r in 0..<k {
                for j in 0..<n where owners[j] >= 0 { v[r * n + j] = vt[r, owners[j]] * w[owners[j], j] + 0 }
            }
            return RankFactors(k: k, m: m, n: n, u: u, v: v)
        }
        vt.storage.withUnsafeBufferPointer { q in
            w.storage.withUnsafeBufferPointer { wp in
                v.withUnsafeMutableBufferPointer { vp in
                    Scalar.gemm(
                        transA: false, transB: false, m: k, n: n, k: m, alpha: 1, a: q.baseAddress!, lda: m,
                        b: wp.baseAddress!, ldb: n, beta: 0, c: vp.baseAddress!, ldc: n)
                }
            }
        }
        return RankFactors(k: k, m: m, n: n, u: u, v: v)
    }
}

/// `X W^T` (`N x m`, without the bias), in the working precision.
func linearPreactivations<Scalar: BLASScalar>(layer: ReluLayer<Scalar>, points x: MatrixView<Scalar>) -> Matrix<Scalar>
{
    let m = layer.outputs
    let n = layer.inputs
    let N = x.rows
    var zt = Matrix<Scalar>(rows: N, columns: m)
    zt.withUnsafeMutableBufferPointer { zp in
        layer.weight.storage.withUnsafeBufferPointer { w in
            Scalar.gemm(
                transA: false, transB: true, m: N, n: m, k: n, alpha: 1, a: x.base, lda: x.rowStride,
                b: w.baseAddress!, ldb: n, beta: 0, c: zp.baseAddress!, ldc: m)
        }
    }
    return zt
}

/// The weighted candidate at every `k` of `ks` (`0 < k < rrr.size`) where
/// `evaluated(k)`, keyed by `k`, each started from the plain regression
/// `rrr` at that `k` (its errors and its basis, the rounds by power steps,
/// `RoundBasis.powerStep`); one progress unit per `k` of `ks`; the `k` are split
/// into `threads` contiguous parts run in parallel.
func weightedCandidates<Scalar: BLASScalar>(
    problem: ReluBoundProblem<Scalar>, rrr: CandidateBasis<Scalar>, ks: [Int], rounds: Int, exponent: Double,
    threads: Int, evaluated: @escaping (Int) -> Bool, shared: SharedProgress, progress: Progress,
    report: @escaping () throws -> Void
) throws -> [Int: ChainBest<Scalar>] {
    let regression = WeightedRegression(problem: problem, rounds: rounds, exponent: exponent, route: .powerStep)
    let parts = max(1, min(threads, ks.count))
    let results = (0..<parts).map { _ in Box<[Int: ChainBest<Scalar>]>([:]) }
    let tasks: [() throws -> Void] = (0..<parts).map { part in
        {
            for k in ks[(ks.count * part / parts)..<(ks.count * (part + 1) / parts)] {
                try report()
                defer { shared.add(1) }
                guard k > 0, k < rrr.size, evaluated(k) else { continue }
                let plain = rrr.factors(rank: k)
                let (bound, errors) = plain.withPointers { problem.evaluate(u: $0, v: $1, k: k, certified: false) }
                guard bound > 0 else { continue }
                let basis = rrr.leadingBasis(rank: k)
                if let w = try regression.candidate(k: k, errors: errors, bound: bound, basis: basis) {
                    results[part].value[k] = w
                }
            }
        }
    }
    try runInParallel(tasks, threads: threads, shared: shared, progress: progress)
    var out: [Int: ChainBest<Scalar>] = [:]
    for r in results { out.merge(r.value) { a, _ in a } }
    return out
}

/// Where a round of Lawson's iteration takes `Q` (the left singular vectors of
/// the weighted pre-activations `Z D^(1/2)`, as `Q^T`; docs/engine.md).
///
/// The Gram matrix `G = (Z D^(1/2))^T Z D^(1/2)` (`m x m`) has eigenvectors
/// `Q` and eigenvalues `sigma_i^2`: one `?syrk` of `N m^2 / 2` and an `m x m`
/// reduction with the `k` eigenvectors read (`GramTridiagonal`) instead of a
/// QR and an SVD of the `N x m` matrix (2-3x less time
/// for `N >= m`; for `N < m` the `N x N` Gram matrix of the other side,
/// `WeightedRegression.leftGramBasis`), but with the squared conditioning: the rounding of `G`,
/// about `eps lambda_0`, moves the eigenvectors of eigenvalues near it. The
/// rank-`k` regression reads only `Q_k`, which that rounding cannot disturb
/// much where `lambda_(k-1) >= sqrt(eps) lambda_0` (each kept eigenvalue then
/// exceeds the rounding by a factor `1 / sqrt(eps)`): there the Gram route
/// serves, elsewhere the SVD. Either way the round's approximant has rank
/// `<= k` and its bound is certified from its factors; the route changes only
/// which candidate is evaluated.
enum RoundBasis {
    /// The SVD of `Z D^(1/2)` in every round.
    case svd
    /// The Gram matrix's eigenvectors in every round (the bands, whose basis
    /// serves a whole band of `k`).
    case gram
    /// A Gram matrix's eigenvectors where they resolve rank `k` (`resolves`):
    /// of `Z^T D Z` (`m x m`) for `N >= m`, of `D^(1/2) Z Z^T D^(1/2)`
    /// (`N x N`, in `Double`) for `N < m`; else the SVD.
    case gramWhereResolved
    /// One block power step per round on `Z^T D Z` from the previous
    /// round's `Q_k` (the first round's from the plain regression's,
    /// `WeightedRegression.powerRounds`): three GEMMs of `N m k` (the step
    /// and the round's ranking share `Z Q_k`) and a QR of `m x k` instead of
    /// the Gram matrix's `N m min(N, m) / 2`, its reduction and the
    /// evaluation from the factors. The basis lags the exact one by a step,
    /// which damps Lawson's iteration; without a start basis no round runs.
    case powerStep

    /// Whether eigenvalues `values` (decreasing) of a Gram matrix computed in
    /// a precision of unit roundoff `epsilon` resolve the leading `k`:
    /// `values[k - 1] >= sqrt(epsilon) values[0] > 0`.
    static func resolves(_ values: [Double], rank k: Int, epsilon: Double) -> Bool {
        guard k >= 1, k <= values.count, let top = values.first, top > 0, top.isFinite else { return false }
        return values[k - 1] >= epsilon.squareRoot() * top
    }
}
