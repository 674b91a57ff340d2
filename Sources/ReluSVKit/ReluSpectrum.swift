#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of a whole curve of ReLU singular-value bounds.
public struct SpectrumSettings: Sendable {
    /// Settings of each rank-`k` fit.
    public var fit = FitSettings()
    /// Seed of the mini-batch order.
    public var seed: UInt64 = 0
    /// Worker threads across `k`; 0 means one per online core.
    public var threads: Int = 0
    /// Contiguous chains of `k` the curve is split into when the work is not
    /// small (independent of `threads`, so results do not depend on it).
    public var chains: Int = 4
    /// Wall-clock budget in seconds for the fits (0: none). Candidates that
    /// need no optimisation are always computed.
    public var timeBudget: Double = 0
    /// Fit every `fitStride`-th requested `k` (by position) and every `k`
    /// below the stride; 0 chooses the stride from `workBudget`.
    public var fitStride: Int = 0
    /// Floating-point operations per thread the automatic step count and
    /// stride aim at (one to two minutes of one core).
    public var workBudget: Double = 2e12
    /// Fewest steps per fit before the automatic choice fits fewer `k` instead.
    public var minimumSteps: Int = 120
    /// Keep the factors of every reported approximant.
    public var keepFactors: Bool = false
    /// Step scales (times `fit.learningRate`) of independent fits per `k`,
    /// used when all of them fit in the work budget three times over.
    public var portfolio: [Double] = [1, 0.5, 0.25]
    /// Start each fit from the better of the truncated SVD and the extended
    /// previous approximant (false: always from the truncated SVD).
    public var warmStart: Bool = true

    public init() {}
}

/// One point of the curve.
public struct SpectrumEntry: Sendable, Equatable {
    public var k: Int
    /// The linear singular value `sigma_k(W)`.
    public var sigma: Double
    /// The SVD truncation bound `t_k` (MATH.md §2).
    public var truncationBound: Double
    /// The reported upper bound: the minimum over every evaluated candidate.
    public var bound: Double
    public var source: BoundSource
    /// Adam steps spent at this `k`.
    public var steps: Int
    /// Wall time spent at this `k`.
    public var seconds: Double
}

/// The curve of upper bounds of `s_k(phi; X)` for the requested `k`.
public struct ReluSpectrum<Scalar: BLASScalar> {
    /// In the order the `k` were requested.
    public var entries: [SpectrumEntry]
    /// Factors of each reported approximant (when `keepFactors`).
    public var factors: [RankFactors<Scalar>?]
    /// `max_i ||x_i||`.
    public var dataMaxNorm: Double
    /// Fits were run at every `fitStride`-th requested `k`.
    public var fitStride: Int
}

/// Computes certified upper bounds of the ReLU singular values `s_k(phi; X)`
/// (MATH.md §2–3) for every `k` in `ks` (each in `0 ..< min(m, n)`, no repeats).
///
/// For each `k` the bound is the minimum over these candidates, each
/// evaluated exactly over all points:
/// - `k = 0`: the exact `max_x ||phi(x) - act(b)||`; `k >= rank W`: zero;
/// - the truncated SVD `W_k` (its value is also reported as `t_k`);
/// - the approximant of the previous requested `k` (rank `<= k`);
/// - that approximant plus the next singular pairs of `W` up to rank `k`;
/// - every evaluated iterate of a fit (`ReluBoundFit`) warm-started from the
///   better of the last two, at every `fitStride`-th `k`.
///
/// Work runs in contiguous chains of `k` (warm starts flow along a chain),
/// one chain per thread, balanced by estimated cost; the calling thread
/// relays progress. The truncation bounds cost one rank-update GEMM per `k`.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func reluSpectrum<Scalar: BLASScalar>(
    of problem: ReluBoundProblem<Scalar>, ks requested: [Int], settings: SpectrumSettings = SpectrumSettings(),
    progress: Progress = .silent
) throws -> ReluSpectrum<Scalar> {
    let layer = problem.layer
    let m = layer.outputs, n = layer.inputs, N = problem.count, p = min(m, n)
    for k in requested where k < 0 || k >= p {
        throw EngineError.invalidArgument("k = \(k) is out of range: k must lie in [0, min(m, n) - 1] = [0, \(p - 1)]")
    }
    guard Set(requested).count == requested.count else { throw EngineError.invalidArgument("ks contains repeated values") }
    guard !requested.isEmpty else { throw EngineError.invalidArgument("ks is empty") }
    guard settings.fit.maxSteps >= 0, settings.fit.evaluationInterval > 0, settings.fit.batchSize > 0,
          settings.fit.learningRate > 0, settings.fit.learningRate.isFinite else {
        throw EngineError.invalidArgument("invalid fit settings")
    }
    guard settings.timeBudget >= 0, settings.timeBudget.isFinite else {
        throw EngineError.invalidArgument("time_budget must be non-negative and finite, got \(settings.timeBudget)")
    }
    let svd = try layer.weight.withView { try thinSVD(of: $0) }
    try progress.advance(to: 0)  // a chance to cancel between the set-up steps
    let rank = svd.numericalRank
    let ks = requested.sorted()

    // XS = X Vt^T diag(s) (N x p): the truncated-SVD predictions of every
    // rank are column blocks of XS times rows of U^T.
    var xs = Matrix<Scalar>(rows: N, columns: p)
    xs.withUnsafeMutableBufferPointer { c in
        svd.vt.storage.withUnsafeBufferPointer { vt in
            Scalar.gemm(transA: false, transB: true, m: N, n: p, k: n, alpha: 1, a: problem.x.base,
                        lda: problem.x.rowStride, b: vt.baseAddress!, ldb: n, beta: 0, c: c.baseAddress!, ldc: p)
        }
        for i in 0..<N { for j in 0..<p { c[i * p + j] *= svd.s[j] } }
    }

    try progress.advance(to: 0)

    // Which k are fitted, with how many steps, and what each costs (flops,
    // for balancing and the automatic stride).
    var fit = settings.fit
    let batch = Double(min(N, fit.batchSize))
    func fitCost(_ k: Int) -> Double {
        // A typical fit: 60 % of the step budget, one exact evaluation per interval.
        let steps = Double(fit.maxSteps) * 0.6
        let stepRows = 0.5 * batch + 0.5 * Double(min(N, fit.activeSetSize))
        return 2 * Double(k * (m + n)) * (5 * steps * stepRows + steps / Double(fit.evaluationInterval) * Double(N))
    }
    let fittable = ks.filter { $0 > 0 && $0 < rank && fit.maxSteps > 0 }
    let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    let threads = settings.threads > 0 ? settings.threads : cores
    let budget = settings.timeBudget > 0 ? 1.8e10 * settings.timeBudget : settings.workBudget
    let capacity = budget * Double(min(threads, max(1, fittable.count)))
    var stride = settings.fitStride
    if stride <= 0 {
        // Over budget: first fewer steps per fit (down to minimumSteps), then a stride.
        var total = fittable.reduce(0.0) { $0 + fitCost($1) }
        if total > capacity, fit.maxSteps > settings.minimumSteps {
            fit.maxSteps = max(settings.minimumSteps, Int(Double(fit.maxSteps) * capacity / total))
            total = fittable.reduce(0.0) { $0 + fitCost($1) }
        }
        // A power of two (the nearest), so fitted k fall on round values.
        let raw = total / capacity
        stride = raw <= 1 ? 1 : 1 << Int(log2(raw).rounded())
    }
    let position = Dictionary(uniqueKeysWithValues: ks.enumerated().map { ($1, $0) })
    let maxSteps = fit.maxSteps
    // Every stride-th k, and all k below the stride (cheap, and where the curve falls fastest).
    func fitted(_ k: Int) -> Bool { k > 0 && k < rank && maxSteps > 0 && (position[k]! % stride == 0 || k < stride) }
    func cost(_ k: Int) -> Double { (fitted(k) ? fitCost(k) : 0) + 4 * Double(N * m) + 1 }
    // Several step scales per fit when even that costs little.
    let fitWork = ks.filter(fitted).reduce(0.0) { $0 + fitCost($1) }
    let portfolio = fitWork * Double(settings.portfolio.count) <= 0.05 * capacity ? settings.portfolio : [1.0]
    func units(_ k: Int) -> Int { fitted(k) ? maxSteps * portfolio.count + 1 : 1 }
    var effective = settings
    effective.fit = fit

    // Contiguous chains of about equal cost, one per thread.
    let totalCost = ks.reduce(0.0) { $0 + cost($1) }
    // The split depends on the work only, never on the thread count, so that
    // results do not either (warm starts flow within a chain).
    let chainCount = max(1, min(ks.count, totalCost < 5e8 ? 1 : settings.chains))
    var chains: [[Int]] = []
    var current: [Int] = [], accumulated = 0.0
    for k in ks {
        current.append(k)
        accumulated += cost(k)
        if accumulated >= totalCost * Double(chains.count + 1) / Double(chainCount), chains.count < chainCount - 1 {
            chains.append(current)
            current = []
        }
    }
    if !current.isEmpty { chains.append(current) }

    let shared = SharedProgress()
    let totalUnits = ks.reduce(0) { $0 + units($1) }
    let overall = progress.scoped(0..<Int(progress.total), subtotal: totalUnits)
    let singleThread = min(threads, chains.count) == 1
    var lastReport = now()
    let report: () throws -> Void = {
        if shared.cancelled { throw EngineError.cancelled }
        if singleThread, now() - lastReport > 0.05 {
            lastReport = now()
            try overall.advance(to: shared.value)
        }
    }
    let deadline = settings.timeBudget > 0 ? now() + settings.timeBudget : Double.infinity
    let results = chains.map { _ in ChainResult<Scalar>() }
    let fitPortfolio = portfolio
    let tasks: [() throws -> Void] = chains.enumerated().map { index, chain in
        {
            let chainRun = SpectrumChain(problem: problem, svd: svd, rank: rank, xs: xs, settings: effective,
                                         fitted: fitted, cost: cost, units: units, portfolio: fitPortfolio)
            results[index].value = try chainRun.run(chain, deadline: deadline, shared: shared, report: report)
        }
    }
    try runInParallel(tasks, threads: threads, shared: shared, progress: overall)
    try overall.advance(to: totalUnits)

    // Merge, then make the curve monotone: a smaller k's approximant is a candidate.
    var byK: [Int: (SpectrumEntry, RankFactors<Scalar>?)] = [:]
    for r in results { byK.merge(r.value) { a, _ in a } }
    var previous: (SpectrumEntry, RankFactors<Scalar>?)?
    for k in ks {
        var (entry, factors) = byK[k]!
        if let previous, previous.0.bound < entry.bound {
            entry.bound = previous.0.bound
            entry.source = .previousK
            factors = previous.1
        }
        byK[k] = (entry, factors)
        previous = (entry, factors)
    }
    // An error that overflowed certifies nothing: report it as such, not as an infinite bound.
    guard byK.values.allSatisfy({ $0.0.bound.isFinite }) else {
        throw EngineError.overflow("an approximation error exceeds the range of \(Scalar.self); rescale W, b or X")
    }
    return ReluSpectrum(entries: requested.map { byK[$0]!.0 },
                        factors: requested.map { settings.keepFactors ? byK[$0]!.1 : nil },
                        dataMaxNorm: problem.maxPointNorm, fitStride: stride)
}

/// The output of one chain, written by its own thread only.
final class ChainResult<Scalar: BLASScalar> {
    var value: [Int: (SpectrumEntry, RankFactors<Scalar>?)] = [:]
}

/// One contiguous chain of `k`, processed in increasing order with warm starts.
struct SpectrumChain<Scalar: BLASScalar> {
    let problem: ReluBoundProblem<Scalar>
    let svd: ThinSVD<Scalar>
    let rank: Int
    let xs: Matrix<Scalar>
    let settings: SpectrumSettings
    let fitted: (Int) -> Bool
    let cost: (Int) -> Double
    let units: (Int) -> Int
    let portfolio: [Double]

    func run(
        _ chain: [Int], deadline: Double, shared: SharedProgress, report: () throws -> Void
    ) throws -> [Int: (SpectrumEntry, RankFactors<Scalar>?)] {
        let layer = problem.layer
        let m = layer.outputs, N = problem.count, p = svd.s.count
        var out: [Int: (SpectrumEntry, RankFactors<Scalar>?)] = [:]
        // Pre-activations (without b) of the truncated SVD and of the chain's best approximant.
        var zSvd = Matrix<Scalar>(rows: N, columns: m)
        var zBest = Matrix<Scalar>(rows: N, columns: m)
        var covered = 0
        var best: (factors: RankFactors<Scalar>, bound: Double)?
        // When the best is a truncated SVD, zBest is not kept (zSvd has moved on).
        var bestIsSvd = true
        let warmStart = settings.warmStart
        var remainingCost = chain.reduce(0.0) { $0 + cost($1) }

        for k in chain {
            let started = now()
            try report()
            if k > covered {
                addPairs(to: &zSvd, pairs: covered..<k)
                covered = k
            }
            let svdFactors = RankFactors(truncating: svd, rank: k)
            let (tk, svdErrors) = errors(of: zSvd, factors: svdFactors)
            var entry = SpectrumEntry(k: k, sigma: Double(svd.s[k]), truncationBound: tk, bound: tk,
                                      source: .svd, steps: 0, seconds: 0)
            var chosen = svdFactors
            if k == 0 {
                entry.source = .exact
                best = (svdFactors, tk)
                bestIsSvd = true
            } else if k >= rank {
                entry.bound = 0
                entry.source = .zero
                chosen = RankFactors(truncating: svd, rank: rank)
                best = (chosen, 0)
                bestIsSvd = true
            } else {
                var start = EvaluatedCandidate(factors: svdFactors, bound: tk, errors: svdErrors, source: .svd)
                var extended: EvaluatedCandidate<Scalar>? = nil
                if let previous = best, previous.factors.k < k, !bestIsSvd {
                    // (When the best is a truncated SVD, its extension is W_k itself.)
                    let pairs = previous.factors.k..<k
                    let extFactors = previous.factors.extended(by: svd, pairs: pairs)
                    let (extBound, extErrors) = errorsOfExtension(zBest, pairs: pairs, factors: extFactors)
                    extended = EvaluatedCandidate(factors: extFactors, bound: extBound, errors: extErrors, source: .extended)
                    if warmStart, extBound < start.bound { start = extended! }
                }
                var result = start
                if fitted(k) {
                    let share = cost(k) / max(remainingCost, 1)
                    let fitDeadline = deadline.isFinite ? started + (deadline - started) * share : .infinity
                    // One fit per step scale of the portfolio (one scale unless the work is small).
                    var reported = 0, total = 0
                    for scale in portfolio {
                        var fitSettings = settings.fit
                        fitSettings.learningRate *= scale
                        let runner = ReluBoundFit(problem: problem, settings: fitSettings, seed: settings.seed)
                        let (fitBest, steps) = try runner.run(from: start, deadline: fitDeadline) { step in
                            shared.add(total + step - reported)
                            reported = total + step
                            try report()
                        }
                        total += steps
                        if fitBest.bound < result.bound { result = fitBest }
                    }
                    shared.add(units(k) - 1 - reported)
                    entry.steps = total
                } else if units(k) > 1 {
                    shared.add(units(k) - 1)
                }
                if let extended, extended.bound < result.bound { result = extended }
                if let previous = best, previous.bound <= result.bound {
                    entry.bound = previous.bound
                    entry.source = .previousK
                    chosen = previous.factors
                } else {
                    entry.bound = result.bound
                    entry.source = result.source
                    chosen = result.factors
                    switch result.source {
                    case .svd: bestIsSvd = true
                    case .extended: addPairs(to: &zBest, pairs: best!.factors.k..<k)
                    default:
                        zBest = preactivation(of: result.factors)
                        bestIsSvd = false
                    }
                    best = (result.factors, result.bound)
                }
            }
            if entry.bound > tk { entry.bound = tk; entry.source = .svd; chosen = svdFactors }
            entry.seconds = now() - started
            out[k] = (entry, settings.keepFactors ? chosen : nil)
            remainingCost -= cost(k)
            shared.add(1)
        }
        return out
    }

    /// `z += XS[:, pairs] U[:, pairs]^T`: adds the singular pairs' predictions.
    func addPairs(to z: inout Matrix<Scalar>, pairs: Range<Int>) {
        guard !pairs.isEmpty else { return }
        let N = problem.count, m = problem.layer.outputs, p = svd.s.count
        z.withUnsafeMutableBufferPointer { zp in
            xs.storage.withUnsafeBufferPointer { a in
                svd.u.storage.withUnsafeBufferPointer { u in
                    Scalar.gemm(transA: false, transB: true, m: N, n: m, k: pairs.count, alpha: 1,
                                a: a.baseAddress! + pairs.lowerBound, lda: p, b: u.baseAddress! + pairs.lowerBound,
                                ldb: p, beta: 1, c: zp.baseAddress!, ldc: m)
                }
            }
        }
    }

    /// Exact errors of `z + XS[:, pairs] U[:, pairs]^T` (the extension of the
    /// approximant with pre-activations `z`), by blocks of rows, without copying `z`.
    func errorsOfExtension(_ z: Matrix<Scalar>, pairs: Range<Int>, factors: RankFactors<Scalar>) -> (Double, [Double]) {
        let layer = problem.layer
        let N = problem.count, m = layer.outputs, p = svd.s.count
        let block = 256
        let tmp = Workspace<Scalar>(count: block * m)
        var e = [Double](repeating: 0, count: N)
        var largest = 0.0
        z.storage.withUnsafeBufferPointer { zp in
            xs.storage.withUnsafeBufferPointer { a in
                svd.u.storage.withUnsafeBufferPointer { u in
                    problem.y.storage.withUnsafeBufferPointer { yp in
                        layer.bias.withUnsafeBufferPointer { b in
                            var start = 0
                            while start < N {
                                let rows = min(block, N - start)
                                tmp.base.update(from: zp.baseAddress! + start * m, count: rows * m)
                                Scalar.gemm(transA: false, transB: true, m: rows, n: m, k: pairs.count, alpha: 1,
                                            a: a.baseAddress! + start * p + pairs.lowerBound, lda: p,
                                            b: u.baseAddress! + pairs.lowerBound, ldb: p, beta: 1, c: tmp.base, ldc: m)
                                for i in 0..<rows {
                                    let zr = tmp.base + i * m, yr = yp.baseAddress! + (start + i) * m
                                    var s: Scalar = 0
                                    for j in 0..<m { let d = layer.activate(zr[j] + b[j]) - yr[j]; s += d * d }
                                    e[start + i] = certifiable(Double(s).squareRoot())
                                    largest = max(largest, e[start + i])
                                }
                                start += rows
                            }
                        }
                    }
                }
            }
        }
        let bound = factors.withPointers { u, v in problem.certified(errors: &e, largest: largest, u: u, v: v, k: factors.k) }
        return (bound, e)
    }

    /// `X V^T U^T` for the factors (pre-activation without the bias).
    func preactivation(of f: RankFactors<Scalar>) -> Matrix<Scalar> {
        let N = problem.count, m = f.m, n = f.n, k = f.k
        var z = Matrix<Scalar>(rows: N, columns: m)
        guard k > 0 else { return z }
        var pr = [Scalar](repeating: 0, count: N * k)
        f.withPointers { u, v in
            pr.withUnsafeMutableBufferPointer { pp in
                Scalar.gemm(transA: false, transB: true, m: N, n: k, k: n, alpha: 1, a: problem.x.base,
                            lda: problem.x.rowStride, b: v, ldb: n, beta: 0, c: pp.baseAddress!, ldc: k)
                z.withUnsafeMutableBufferPointer { zp in
                    Scalar.gemm(transA: false, transB: true, m: N, n: m, k: k, alpha: 1, a: pp.baseAddress!, lda: k,
                                b: u, ldb: k, beta: 0, c: zp.baseAddress!, ldc: m)
                }
            }
        }
        return z
    }

    /// Exact per-point errors of the approximant whose pre-activations are `z`.
    func errors(of z: Matrix<Scalar>, factors: RankFactors<Scalar>) -> (Double, [Double]) {
        let layer = problem.layer
        let N = problem.count, m = layer.outputs
        var e = [Double](repeating: 0, count: N)
        var largest = 0.0
        z.storage.withUnsafeBufferPointer { zp in
            problem.y.storage.withUnsafeBufferPointer { yp in
                layer.bias.withUnsafeBufferPointer { b in
                    for i in 0..<N {
                        let zr = zp.baseAddress! + i * m, yr = yp.baseAddress! + i * m
                        var s: Scalar = 0
                        for j in 0..<m { let d = layer.activate(zr[j] + b[j]) - yr[j]; s += d * d }
                        e[i] = certifiable(Double(s).squareRoot())
                        largest = max(largest, e[i])
                    }
                }
            }
        }
        let bound = factors.withPointers { u, v in problem.certified(errors: &e, largest: largest, u: u, v: v, k: factors.k) }
        return (bound, e)
    }
}
