#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of one rank-`k` fit (MATH.md §3).
public struct FitSettings: Sendable {
    /// Largest number of Adam steps (least squares and refinement together):
    /// a cap; the stopping rule ends a fit earlier once it stalls, and the
    /// work budget of a whole curve may lower the cap.
    public var maxSteps: Int = 500
    /// Steps between two exact evaluations of the bound over all points.
    public var evaluationInterval: Int = 10
    /// Stopping rule: stop after this many exact evaluations in a row that
    /// did not lower the best bound by a relative `minImprovement`.
    public var patience: Int = 3
    /// The relative decrease of the best bound an evaluation must bring to count as progress.
    public var minImprovement: Double = 1e-3
    /// Rows per mini-batch of the least-squares phase.
    public var batchSize: Int = 1024
    /// The least-squares phase uses every row (full batch) when `N` is at most this.
    public var fullBatchRows: Int = 4096
    /// Adam step size relative to the root-mean-square entry of each start factor.
    public var learningRate: Double = 0.02
    /// Run the minimax refinement after the least-squares phase.
    public var refine: Bool = true
    /// Start with the least-squares phase (false: refine from the start).
    public var leastSquaresFirst: Bool = true
    /// Least-squares evaluations without improvement before switching to refinement.
    public var leastSquaresPatience: Int = 2
    /// Judge the least-squares phase's progress by its own loss `sum_g e_g^2`
    /// (false: by the bound `max_g e_g`, which hands over sooner). The loss
    /// keeps falling long after the bound stalls, and the bound keeps
    /// improving now and then on the way (the refinement starts from the
    /// lowest-bound iterate), but only with steps to spare: a curve's plan turns
    /// it on from a raise of `SpectrumSettings.longFitRaise`. Progress is
    /// measured against the lowest loss evaluated, also after a restart (one
    /// that does not come back below it hands over; resetting it there gave
    /// higher curves on `bench/relu_sv.py --quick`).
    public var leastSquaresByLoss: Bool = false
    /// Points in the active set of the refinement (the largest errors).
    public var activeSetSize: Int = 256
    /// An evaluation above the best bound by this relative amount counts as a
    /// divergence: the step is halved and the fit restarts from the best factors.
    public var divergence: Double = 0.05
    /// Largest number of such halvings in one fit.
    public var maxBacktracks: Int = 8
    /// Step scales tried from the start, one evaluation interval each; the
    /// fit continues with the one that ends lowest.
    public var probeScales: [Double] = [1, 0.25, 0.0625]
    /// Relative margin by which a later (smaller) probe scale must beat the earlier choice.
    public var probeMargin: Double = 0.01
    /// Times the refinement halves its step size when it stalls at the largest `q`.
    public var stepHalvings: Int = 2
    /// Largest exponent `q` of the smooth maximum `sum_g s_g^q` (s_g squared errors).
    public var maxPower: Double = 32

    public init() {}
}

/// Which candidate produced a reported bound.
public enum BoundSource: Int32, Sendable, CaseIterable {
    /// `k = 0`: the exact value `max_x ||phi(x) - act(b)||`.
    case exact = 0
    /// The evaluated error of the reported approximant is exactly 0.
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
    /// Reduced-rank regression `Q_k Q_k^T W` on the pre-activations (MATH.md §3).
    case reducedRankRegression = 7
    /// The data projection `W V_k V_k^T` (MATH.md §3).
    case dataProjection = 8
    /// Weighted reduced-rank regression (Lawson reweighting, `WeightedRegression`).
    case weightedRRR = 9

    public var name: String {
        switch self {
        case .exact: "exact"
        case .zero: "zero"
        case .svd: "svd"
        case .fit: "fit"
        case .refine: "refine"
        case .previousK: "previous-k"
        case .extended: "extended"
        case .reducedRankRegression: "rrr"
        case .dataProjection: "data-projection"
        case .weightedRRR: "weighted-rrr"
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
        state =
            seed ^ (UInt64(CounterRandom.Stream.minibatch.rawValue) << 56)
            ^ (UInt64(truncatingIfNeeded: k) &* 0x9E37_79B9_7F4A_7C15)
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

/// Lowers the bound of one rank-`k` approximant (MATH.md §3, and beyond it),
/// in four named phases:
///
/// 1. `probe` (start): the first evaluation interval is run from the start
///    once per step scale of `probeScales`; the fit goes on from the one that
///    ended lowest (a smaller scale must win by `probeMargin`).
/// 2. `leastSquares`: Adam on `F(U, V) = sum_i ||act(U V x_i + b) - phi(x_i)||^2`
///    with the analytic gradient, full batch when `N <= fullBatchRows`, else
///    on mini-batches of `batchSize` rows drawn without replacement per epoch;
///    it hands over after `leastSquaresPatience` evaluations without improvement
///    (of the bound, or of the loss with `leastSquaresByLoss`), or at half the cap.
/// 3. `refinement`: Adam on the smooth maximum `sum_{g in A} s_g^q` of the
///    squared point errors over the active set `A` (the `activeSetSize`
///    points of largest exact error, renewed at every evaluation), `q = 2`
///    doubled after 2 evaluations without improvement up to `maxPower`, then
///    the step halved (`stepHalvings` times) after `patience` such evaluations.
/// 4. `restart` (inside 2 and 3): an evaluation more than `divergence` above
///    the best halves the step and goes back to the best factors (at most
///    `maxBacktracks` times).
///
/// The step of each factor is `learningRate` times the root-mean-square entry
/// of that start factor times the current scale: relative to the factors'
/// size, never to the error left, so it does not collapse at large `k`.
/// Every `evaluationInterval` steps the bound over all points is evaluated
/// exactly and the best factors kept, so the result is never worse than the
/// start. A fit also ends after `maxSteps` steps or at its deadline.
final class ReluBoundFit<Scalar: BLASScalar> {
    let problem: ReluBoundProblem<Scalar>
    let settings: FitSettings
    let seed: UInt64

    /// The optimiser's state, shared by the phases.
    struct State {
        var theta: [Scalar]
        var m1: [Double]
        var m2: [Double]
        var adamStep = 0
        /// Step scale (times the base steps of U and V).
        var scale: Double
        var power = 1.0
        var stale = 0
        var backtracks = 0
        var halvings = 0
        var steps = 0
        var best: EvaluatedCandidate<Scalar>
        /// Lowest least-squares loss `sum_g e_g^2` evaluated so far (`leastSquaresByLoss`).
        var bestLoss = Double.infinity
        var stopped = false
    }

    /// Row buffers for mini-batches and the active set.
    final class Buffers {
        let xb: Workspace<Scalar>, yb: Workspace<Scalar>, scratch: Workspace<Scalar>
        var order: [Int]
        var cursor: Int
        var random: SplitMix64
        var activeRows = 0
        var grad: [Scalar]
        init(rows: Int, n: Int, m: Int, k: Int, count: Int, seed: UInt64) {
            grad = [Scalar](repeating: 0, count: k * (m + n))
            xb = Workspace(count: rows * n)
            yb = Workspace(count: rows * m)
            scratch = Workspace(count: rows * (2 * k + m))
            order = Array(0..<count)
            cursor = count
            random = SplitMix64(seed: seed, k: k)
        }
    }

    let k: Int, m: Int, n: Int
    let lrU0: Double, lrV0: Double
    let fullBatch: Bool
    let batch: Int
    let activeGroups: Int
    let buffers: Buffers
    var deadline = Double.infinity
    var checkpoint: (Int) throws -> Void = { _ in }

    init(problem: ReluBoundProblem<Scalar>, settings: FitSettings, seed: UInt64, start: RankFactors<Scalar>) {
        self.problem = problem
        self.settings = settings
        self.seed = seed
        k = start.k
        m = problem.layer.outputs
        n = problem.layer.inputs
        lrU0 = settings.learningRate * ReluBoundFit.rms(start.u)
        lrV0 = settings.learningRate * ReluBoundFit.rms(start.v)
        let N = problem.count
        let P = problem.groupSize
        fullBatch = N <= max(settings.fullBatchRows, settings.batchSize)
        // Mini-batches hold whole groups (their rows are consecutive).
        batch = fullBatch ? N : max(P, settings.batchSize / P * P)
        activeGroups = min(problem.groups, max(1, settings.activeSetSize / P, min(8, problem.groups)))
        buffers = Buffers(
            rows: max(batch, activeGroups * P), n: n, m: m, k: max(k, 1),
            count: N, seed: seed)
    }

    /// Fits from `start`; `checkpoint(step)` is called after every step and
    /// may throw to cancel. Returns the best candidate (its bound from the
    /// ranking evaluation; certify it before reporting) and the steps taken.
    func run(
        from start: EvaluatedCandidate<Scalar>, deadline: Double, checkpoint: (Int) throws -> Void
    ) throws -> (best: EvaluatedCandidate<Scalar>, steps: Int) {
        guard k > 0, settings.maxSteps > 0, lrU0 > 0, lrV0 > 0 else { return (start, 0) }
        self.deadline = deadline
        return try withoutActuallyEscaping(checkpoint) { relay in
            self.checkpoint = relay
            defer { self.checkpoint = { _ in } }
            return try phases(from: start)
        }
    }

    /// The phases in order (see the type's documentation).
    private func phases(from start: EvaluatedCandidate<Scalar>) throws -> (best: EvaluatedCandidate<Scalar>, steps: Int)
    {
        var state = State(
            theta: start.factors.u + start.factors.v, m1: [Double](repeating: 0, count: k * (m + n)),
            m2: [Double](repeating: 0, count: k * (m + n)), scale: 1, best: start)
        if settings.leastSquaresFirst {
            try probe(&state, start: start)
            try leastSquares(&state)
        }
        if settings.refine { try refinement(&state) }
        return (state.best, state.steps)
    }

    // MARK: phases

    /// Phase 1: one evaluation interval per probe scale from the start.
    func probe(_ s: inout State, start: EvaluatedCandidate<Scalar>) throws {
        var chosen: (state: State, end: Double)?
        var best = s.best
        var steps = s.steps
        for scale in settings.probeScales {
            var trial = s
            trial.scale = scale
            trial.best = best
            trial.steps = steps
            let end = try interval(&trial, refining: false)
            best = trial.best
            steps = trial.steps
            // A smaller step must win clearly: early progress favours small steps.
            if chosen == nil || end < chosen!.end * (1 - settings.probeMargin) { chosen = (trial, end) }
            if trial.stopped { break }
        }
        guard var picked = chosen?.state else { return }
        picked.best = best
        picked.steps = steps
        picked.stale = best.bound < start.bound ? 0 : 1
        s = picked
    }

    /// Phase 2: least squares until `leastSquaresPatience` stale evaluations.
    func leastSquares(_ s: inout State) throws {
        s.power = 1
        while !s.stopped, s.steps < settings.maxSteps {
            let bound = try interval(&s, refining: false)
            if s.stopped { return }
            if diverged(bound, s) {
                if !restart(&s, refining: false) { return }
                continue
            }
            if s.stale >= settings.leastSquaresPatience || (settings.refine && s.steps >= settings.maxSteps / 2) {
                return
            }
        }
    }

    /// Phase 3: minimax refinement on the active set.
    func refinement(_ s: inout State) throws {
        s.power = 2
        s.stale = 0
        s.theta = s.best.factors.u + s.best.factors.v
        resetAdam(&s)
        selectActiveSet(s.best.errors)
        while !s.stopped, s.steps < settings.maxSteps {
            let bound = try interval(&s, refining: true)
            if s.stopped { return }
            if diverged(bound, s) {
                if !restart(&s, refining: true) { return }
                continue
            }
            if s.stale >= 2 && s.power < settings.maxPower {
                s.power *= 2
                s.stale = 0
                s.theta = s.best.factors.u + s.best.factors.v
                resetAdam(&s)
                selectActiveSet(s.best.errors)
            } else if s.stale >= settings.patience {
                // Stalled at the largest q: smaller steps, from the best factors.
                guard s.halvings < settings.stepHalvings else { return }
                s.halvings += 1
                s.scale /= 2
                s.stale = 0
                s.theta = s.best.factors.u + s.best.factors.v
                resetAdam(&s)
                selectActiveSet(s.best.errors)
            }
        }
    }

    /// Phase 4: after a divergence, halve the step and go back to the best
    /// factors; false when no backtrack is left.
    func restart(_ s: inout State, refining: Bool) -> Bool {
        guard s.backtracks < settings.maxBacktracks else { return false }
        s.backtracks += 1
        s.scale /= 2
        s.theta = s.best.factors.u + s.best.factors.v
        resetAdam(&s)
        if refining { selectActiveSet(s.best.errors) }
        return true
    }

    // MARK: steps and evaluations

    func diverged(_ bound: Double, _ s: State) -> Bool {
        !bound.isFinite || bound > s.best.bound * (1 + settings.divergence)
    }

    /// `evaluationInterval` Adam steps, then an exact evaluation over all
    /// points (kept when lower than the best; progress when lower by the relative
    /// `minImprovement`, or in the least-squares phase with `leastSquaresByLoss`
    /// when its loss is); returns its bound.
    func interval(_ s: inout State, refining: Bool) throws -> Double {
        for _ in 0..<settings.evaluationInterval {
            step(&s, refining: refining)
            s.steps += 1
            try checkpoint(s.steps)
            if s.steps >= settings.maxSteps { break }
        }
        if s.steps >= settings.maxSteps || now() > deadline { s.stopped = true }
        let (bound, errors) = s.theta.withUnsafeBufferPointer { t in
            problem.evaluate(u: t.baseAddress!, v: t.baseAddress! + m * k, k: k, certified: false)
        }
        let improved = bound.isFinite && bound < s.best.bound
        if !refining, settings.leastSquaresByLoss {
            let loss = errors.reduce(0) { $0 + $1 * $1 }
            s.stale = loss < s.bestLoss * (1 - settings.minImprovement) ? 0 : s.stale + 1
            s.bestLoss = min(s.bestLoss, loss)
        } else {
            s.stale = improved && bound < s.best.bound * (1 - settings.minImprovement) ? 0 : s.stale + 1
        }
        if improved {
            s.best = EvaluatedCandidate(
                factors: RankFactors(k: k, m: m, n: n, u: Array(s.theta[0..<(m * k)]), v: Array(s.theta[(m * k)...])),
                bound: bound, errors: errors, source: refining ? .refine : .fit)
        }
        if refining, !s.stopped { selectActiveSet(errors) }
        return bound
    }

    /// One Adam step on the mini-batch (least squares) or the active set (refinement).
    func step(_ s: inout State, refining: Bool) {
        let N = problem.count
        let b = buffers
        let used: Int
        let xPtr: UnsafePointer<Scalar>
        let ldx: Int
        let yPtr: UnsafePointer<Scalar>
        if refining {
            used = b.activeRows
            (xPtr, ldx, yPtr) = (UnsafePointer(b.xb.base), n, UnsafePointer(b.yb.base))
        } else if fullBatch {
            used = N
            xPtr = problem.x.base
            ldx = problem.x.rowStride
            yPtr = problem.y.storage.withUnsafeBufferPointer { $0.baseAddress! }  // storage is immutable here
        } else {
            let P = problem.groupSize
            let groups = problem.groups
            let perBatch = batch / P
            if b.cursor + perBatch > groups {
                b.order = Array(0..<groups)
                for i in stride(from: groups - 1, to: 0, by: -1) { b.order.swapAt(i, b.random.below(i + 1)) }
                b.cursor = 0
            }
            gatherGroups(b.order[b.cursor..<(b.cursor + perBatch)])
            b.cursor += perBatch
            used = batch
            (xPtr, ldx, yPtr) = (UnsafePointer(b.xb.base), n, UnsafePointer(b.yb.base))
        }
        s.theta.withUnsafeBufferPointer { t in
            b.grad.withUnsafeMutableBufferPointer { g in
                _ = problem.layer.gradient(
                    x: xPtr, ldx: ldx, y: yPtr, rows: used, u: t.baseAddress!, v: t.baseAddress! + m * k, k: k,
                    power: s.power, gradU: g.baseAddress!, gradV: g.baseAddress! + m * k, scratch: b.scratch.base,
                    skipLoss: true, groupSize: refining ? problem.groupSize : 1)
            }
        }
        s.adamStep += 1
        adam(&s, b.grad)
    }

    /// Copies the rows of `groups` (in order) into the row buffers.
    func gatherGroups(_ groups: ArraySlice<Int>) {
        let P = problem.groupSize
        problem.y.storage.withUnsafeBufferPointer { y in
            var r = 0
            for g in groups {
                for i in (g * P)..<((g + 1) * P) {
                    (buffers.xb.base + r * n).update(from: problem.x.row(i), count: n)
                    (buffers.yb.base + r * m).update(from: y.baseAddress! + i * m, count: m)
                    r += 1
                }
            }
        }
    }

    /// The active set: the `activeGroups` points of largest error.
    func selectActiveSet(_ errors: [Double]) {
        let top = errors.indices.sorted { errors[$0] > errors[$1] }.prefix(activeGroups)
        gatherGroups(top)
        buffers.activeRows = top.count * problem.groupSize
    }

    func resetAdam(_ s: inout State) {
        for i in s.m1.indices {
            s.m1[i] = 0
            s.m2[i] = 0
        }
        s.adamStep = 0
    }

    /// One Adam update (beta = 0.9, 0.999) with step sizes `lrU0 * scale` for
    /// U (the first `m k` parameters) and `lrV0 * scale` for V.
    private func adam(_ s: inout State, _ grad: [Scalar]) {
        let c1 = 1 - pow(0.9, Double(s.adamStep))
        let c2 = 1 - pow(0.999, Double(s.adamStep))
        let d2 = 1 / c2
        let split = m * k
        let lrU = lrU0 * s.scale / c1
        let lrV = lrV0 * s.scale / c1
        s.theta.withUnsafeMutableBufferPointer { t in
            grad.withUnsafeBufferPointer { g in
                s.m1.withUnsafeMutableBufferPointer { a in
                    s.m2.withUnsafeMutableBufferPointer { b in
                        for (range, lr) in [(0..<split, lrU), (split..<t.count, lrV)] {
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

    static func rms(_ a: [Scalar]) -> Double {
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
