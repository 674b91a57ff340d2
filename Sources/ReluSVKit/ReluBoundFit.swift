#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of one rank-`k` fit (MATH.md §3).
public struct FitSettings: Sendable {
    /// Largest number of Adam steps (least squares and refinement together).
    public var maxSteps: Int = 300
    /// Steps between two exact evaluations of the bound over all points.
    public var evaluationInterval: Int = 10
    /// Stopping rule: stop after this many exact evaluations in a row that
    /// did not lower the best bound by a relative `1e-4`.
    public var patience: Int = 4
    /// Rows per mini-batch of the least-squares phase (full batch when `N` is smaller).
    public var batchSize: Int = 512
    /// Adam step size relative to the root-mean-square entry of each start factor.
    public var learningRate: Double = 0.02
    /// Run the minimax refinement after the least-squares phase.
    public var refine: Bool = true
    /// Start with the least-squares phase (false: refine from the start).
    public var leastSquaresFirst: Bool = true
    /// Least-squares evaluations without improvement before switching to refinement.
    public var leastSquaresPatience: Int = 2
    /// Points in the active set of the refinement (the largest errors).
    public var activeSetSize: Int = 256
    /// An evaluation above the best bound by this relative amount counts as a
    /// divergence: the step is halved and the fit restarts from the best factors.
    public var divergence: Double = 0.05
    /// Largest number of such halvings in one fit.
    public var maxBacktracks: Int = 6
    /// Step scales tried from the start, one evaluation interval each; the
    /// fit continues with the one that ends lowest.
    public var probeScales: [Double] = [1, 0.2]
    /// Relative margin by which a later probe scale must beat the earlier choice.
    public var probeMargin: Double = 0.01
    /// Times the refinement halves its step size when it stalls at the largest `q`.
    public var stepHalvings: Int = 3
    /// Largest exponent `q` of the smooth maximum `sum_i s_i^q` (s_i squared errors).
    public var maxPower: Double = 64

    public init() {}
}

/// Which candidate produced a reported bound.
public enum BoundSource: Int32, Sendable, CaseIterable {
    /// `k = 0`: the exact value `max_x ||phi(x) - act(b)||`.
    case exact = 0
    /// `k >= rank W`: the layer itself has rank `<= k`.
    case zero = 1
    /// The truncated SVD `W_k`.
    case svd = 2
    /// An evaluated iterate of the least-squares Adam fit.
    case fit = 3
    /// An evaluated iterate of the minimax refinement.
    case refine = 4
    /// The approximant of a smaller `k` (rank `<= k`).
    case previousK = 5
    /// The approximant of a smaller `k` plus the next singular pairs of `W`.
    case extended = 6

    public var name: String {
        switch self {
        case .exact: "exact"
        case .zero: "zero"
        case .svd: "svd"
        case .fit: "fit"
        case .refine: "refine"
        case .previousK: "previous-k"
        case .extended: "extended"
        }
    }
}

/// A candidate approximant with its exact per-point errors and bound.
public struct EvaluatedCandidate<Scalar: BLASScalar> {
    public var factors: RankFactors<Scalar>
    public var bound: Double
    public var errors: [Double]
    public var source: BoundSource
}

/// Seeded 64-bit generator for mini-batch order (SplitMix64).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64, k: Int) {
        state = seed ^ (UInt64(CounterRandom.Stream.minibatch.rawValue) << 56) ^ (UInt64(truncatingIfNeeded: k) &* 0x9E37_79B9_7F4A_7C15)
    }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Lowers the bound of one rank-`k` approximant (MATH.md §3, and beyond it).
///
/// 1. Least squares: Adam on `F(U, V) = sum_i ||act(U V x_i + b) - phi(x_i)||^2`
///    with the analytic gradient, on mini-batches of `batchSize` points drawn
///    without replacement per epoch (the full data when `N <= batchSize`).
/// 2. Minimax refinement: Adam on the smooth maximum `sum_{i in A} s_i^q` of
///    the squared errors over the active set `A` (the `activeSetSize` points
///    of largest exact error, renewed at every evaluation), with `q = 2` doubled
///    whenever an evaluation brings no improvement, up to `maxPower`.
///
/// Every `evaluationInterval` steps the exact bound over all points is
/// evaluated and the best factors kept, so the result is never worse than
/// the start. Stopping rule: `patience` evaluations in a row without a
/// relative improvement of `1e-4` (in refinement, at the largest `q`),
/// `maxSteps` steps, or the deadline.
final class ReluBoundFit<Scalar: BLASScalar> {
    let problem: ReluBoundProblem<Scalar>
    let settings: FitSettings
    let seed: UInt64

    init(problem: ReluBoundProblem<Scalar>, settings: FitSettings, seed: UInt64) {
        self.problem = problem
        self.settings = settings
        self.seed = seed
    }

    /// Fits from `start`; `checkpoint(step)` is called after every step and
    /// may throw to cancel. Returns the best candidate and the steps taken.
    func run(
        from start: EvaluatedCandidate<Scalar>, deadline: Double, checkpoint: (Int) throws -> Void
    ) throws -> (best: EvaluatedCandidate<Scalar>, steps: Int) {
        let k = start.factors.k, m = problem.layer.outputs, n = problem.layer.inputs, N = problem.count
        guard k > 0, settings.maxSteps > 0 else { return (start, 0) }
        var best = start
        let size = k * (m + n)
        var theta = start.factors.u + start.factors.v
        var grad = [Scalar](repeating: 0, count: size)
        var m1 = [Double](repeating: 0, count: size), m2 = [Double](repeating: 0, count: size)
        // Steps relative to the factors' entries, shrunk with the error still to
        // remove (relative to s_0): near full rank the fit only makes small corrections.
        let scale = problem.outputScale > 0 ? min(1, 4 * start.bound / problem.outputScale) : 1
        var lrScale = scale
        let lrU0 = settings.learningRate * rms(start.factors.u)
        let lrV0 = settings.learningRate * rms(start.factors.v)
        guard lrU0 > 0, lrV0 > 0 else { return (start, 0) }
        var lrU = lrU0 * lrScale, lrV = lrV0 * lrScale
        var halvings = 0, backtracks = 0
        let initialScale = lrScale * (settings.probeScales.first ?? 1)
        lrU = lrU0 * initialScale
        lrV = lrV0 * initialScale
        lrScale = initialScale
        var probe = settings.leastSquaresFirst ? 0 : settings.probeScales.count
        var trials: [(bound: Double, theta: [Scalar], m1: [Double], m2: [Double], step: Int, scale: Double)] = []

        let fullBatch = N <= settings.batchSize
        let batch = fullBatch ? N : settings.batchSize
        let active = min(N, settings.activeSetSize)
        let rows = max(batch, active)
        let xb = Workspace<Scalar>(count: rows * n), yb = Workspace<Scalar>(count: rows * m)
        let scratch = Workspace<Scalar>(count: rows * (2 * k + m))
        var order = Array(0..<N), cursor = N
        var random = SplitMix64(seed: seed, k: k)
        var refining = false, power = 1.0, stale = 0, adamStep = 0, steps = 0
        var activeRows = 0

        func gather(_ indices: ArraySlice<Int>) {
            problem.y.storage.withUnsafeBufferPointer { y in
                for (r, i) in indices.enumerated() {
                    (xb.base + r * n).update(from: problem.x.row(i), count: n)
                    (yb.base + r * m).update(from: y.baseAddress! + i * m, count: m)
                }
            }
        }
        func selectActiveSet(_ errors: [Double]) {
            let top = errors.indices.sorted { errors[$0] > errors[$1] }.prefix(active)
            gather(top)
            activeRows = top.count
        }
        func restartAdam() {
            for i in 0..<size { m1[i] = 0; m2[i] = 0 }
            adamStep = 0
        }

        if settings.refine, !settings.leastSquaresFirst {
            refining = true
            power = 2
            selectActiveSet(best.errors)
        }
        evaluationLoop: while steps < settings.maxSteps {
            for _ in 0..<settings.evaluationInterval {
                // Forward/backward on the mini-batch or the active set.
                let used: Int
                let xPtr: UnsafePointer<Scalar>, ldx: Int, yPtr: UnsafePointer<Scalar>
                if refining {
                    used = activeRows
                    (xPtr, ldx, yPtr) = (UnsafePointer(xb.base), n, UnsafePointer(yb.base))
                } else if fullBatch {
                    used = N
                    xPtr = problem.x.base
                    ldx = problem.x.rowStride
                    yPtr = problem.y.storage.withUnsafeBufferPointer { $0.baseAddress! }  // storage is immutable here
                } else {
                    if cursor + batch > N {
                        for i in stride(from: N - 1, to: 0, by: -1) { order.swapAt(i, random.below(i + 1)) }
                        cursor = 0
                    }
                    gather(order[cursor..<(cursor + batch)])
                    cursor += batch
                    used = batch
                    (xPtr, ldx, yPtr) = (UnsafePointer(xb.base), n, UnsafePointer(yb.base))
                }
                theta.withUnsafeBufferPointer { t in
                    grad.withUnsafeMutableBufferPointer { g in
                        _ = problem.layer.gradient(
                            x: xPtr, ldx: ldx, y: yPtr, rows: used, u: t.baseAddress!, v: t.baseAddress! + m * k, k: k,
                            power: power, gradU: g.baseAddress!, gradV: g.baseAddress! + m * k, scratch: scratch.base,
                            skipLoss: true)
                    }
                }
                adamStep += 1
                adam(&theta, grad, &m1, &m2, step: adamStep, split: m * k, lrU: lrU, lrV: lrV)
                steps += 1
                try checkpoint(steps)
                if steps >= settings.maxSteps { break }
            }
            // Exact evaluation over all points.
            let (bound, errors) = theta.withUnsafeBufferPointer { t in
                problem.evaluate(u: t.baseAddress!, v: t.baseAddress! + m * k, k: k)
            }
            if bound.isFinite, bound < best.bound * (1 - 1e-4) {
                best = EvaluatedCandidate(
                    factors: RankFactors(k: k, m: m, n: n, u: Array(theta[0..<(m * k)]), v: Array(theta[(m * k)...])),
                    bound: bound, errors: errors, source: refining ? .refine : .fit)
                stale = 0
            } else {
                stale += 1
            }
            if now() > deadline { break }
            if probe < settings.probeScales.count {
                // Step-size probe: the first interval is run once per scale from
                // the start; the fit goes on from the scale that ended lowest.
                trials.append((bound.isFinite ? bound : .infinity, theta, m1, m2, adamStep, lrScale))
                probe += 1
                if probe < settings.probeScales.count {
                    lrScale = initialScale * settings.probeScales[probe]
                    theta = start.factors.u + start.factors.v
                } else {
                    // A smaller step must win clearly: early progress favours small steps.
                    var pick = trials[0]
                    for t in trials.dropFirst() where t.bound < pick.bound * (1 - settings.probeMargin) { pick = t }
                    (theta, m1, m2, adamStep, lrScale) = (pick.theta, pick.m1, pick.m2, pick.step, pick.scale)
                    trials = []
                }
                lrU = lrU0 * lrScale
                lrV = lrV0 * lrScale
                if probe < settings.probeScales.count { restartAdam() }
                stale = best.bound < start.bound ? 0 : 1
                continue
            }
            if !bound.isFinite || bound > best.bound * (1 + settings.divergence) {
                // The iterate moved away from the best: the step is too long.
                // Halve it and go back to the best factors (at most `maxBacktracks` times).
                guard backtracks < settings.maxBacktracks else { break }
                backtracks += 1
                lrScale /= 2
                lrU = lrU0 * lrScale
                lrV = lrV0 * lrScale
                theta = best.factors.u + best.factors.v
                restartAdam()
                if refining { selectActiveSet(best.errors) }
                continue
            }
            if !refining {
                if stale >= settings.leastSquaresPatience || steps >= settings.maxSteps / 2 {
                    guard settings.refine else { if stale >= settings.patience { break }; continue }
                    refining = true
                    power = 2
                    stale = 0
                    theta = best.factors.u + best.factors.v
                    restartAdam()
                    selectActiveSet(best.errors)
                }
            } else {
                selectActiveSet(errors)
                if stale >= 2 && power < settings.maxPower {
                    power *= 2
                    stale = 0
                    theta = best.factors.u + best.factors.v
                    restartAdam()
                    selectActiveSet(best.errors)
                } else if stale >= settings.patience {
                    // Stalled at the largest q: smaller steps, from the best factors.
                    guard halvings < settings.stepHalvings else { break evaluationLoop }
                    halvings += 1
                    lrScale /= 2
                    lrU = lrU0 * lrScale
                    lrV = lrV0 * lrScale
                    stale = 0
                    theta = best.factors.u + best.factors.v
                    restartAdam()
                    selectActiveSet(best.errors)
                }
            }
        }
        return (best, steps)
    }

    /// One Adam update (beta = 0.9, 0.999) with step sizes `lrU` for the first
    /// `split` parameters (U) and `lrV` for the rest (V).
    private func adam(_ theta: inout [Scalar], _ grad: [Scalar], _ m1: inout [Double], _ m2: inout [Double],
                      step: Int, split: Int, lrU: Double, lrV: Double) {
        let c1 = 1 - pow(0.9, Double(step)), c2 = 1 - pow(0.999, Double(step))
        let d2 = 1 / c2
        theta.withUnsafeMutableBufferPointer { t in
            grad.withUnsafeBufferPointer { g in
                m1.withUnsafeMutableBufferPointer { a in
                    m2.withUnsafeMutableBufferPointer { b in
                        for (range, lr) in [(0..<split, lrU / c1), (split..<t.count, lrV / c1)] {
                            for i in range {
                                let gi = Double(g[i])
                                let ai = 0.9 * a[i] + 0.1 * gi
                                let bi = 0.999 * b[i] + 0.001 * gi * gi
                                a[i] = ai
                                b[i] = bi
                                t[i] -= Scalar(lr * ai / ((bi * d2).squareRoot() + 1e-30))
                            }
                        }
                    }
                }
            }
        }
    }

    private func rms(_ a: [Scalar]) -> Double {
        guard !a.isEmpty else { return 0 }
        var s = 0.0
        for v in a { s += Double(v) * Double(v) }
        return (s / Double(a.count)).squareRoot()
    }
}

/// Monotonic clock in seconds.
func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
