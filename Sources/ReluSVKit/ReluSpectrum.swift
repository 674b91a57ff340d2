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
    /// Wall-clock budget in seconds for the fits (0: none). It sets the work
    /// budget: below the estimated work it lowers the effort (fewer steps,
    /// then a stride), above it it raises it (as the work budget does, and
    /// also the refinement's patience and step halvings). Candidates that
    /// need no optimisation are always computed.
    public var timeBudget: Double = 0
    /// Largest factor by which a budget (work or time) above the estimated
    /// work raises each fit's step cap and least-squares patience. The work
    /// budget raises only a cap at `FitSettings`' default or above: a lower
    /// `fit.maxSteps` is the caller's choice of effort (a survey's short fits).
    public var maxRaise: Double = 4
    /// From this raise on, the least-squares phase is judged by its own loss
    /// (`FitSettings.leastSquaresByLoss`) and each fitted `k` is also fitted
    /// from the weighted regression (where it runs at every `k`) when it is
    /// below the best start and passes the warm start's test
    /// (`warmFitSlack`). The raise is figured on one fit per `k`, so such a
    /// curve may take up to about three times its share of the budget. On
    /// small layers (`bench/relu_sv.py --quick`, 16 x 16 over 200 points) the
    /// fits had ended by patience in another basin than the paper's
    /// procedure, 2.3x above it at k = 13 and 5x at k = 15; with the cap alone
    /// raised they still did. Below it (steps not to spare) a longer
    /// least-squares phase took steps from the refinement: 100-wide curves
    /// came out higher.
    public var longFitRaise: Double = 2
    /// Fit every `fitStride`-th requested `k` (by position), every `k` below
    /// `min(stride, 8)` and, for strides up to 8, the last 8 below the rank of
    /// `W` (where the curve falls fastest); 0 chooses the stride from `workBudget`.
    public var fitStride: Int = 0
    /// Floating-point operations of the whole curve the automatic step count
    /// and stride aim at (about ten seconds of one core), whatever `threads`
    /// is, so that results do not depend on it. Chosen on the suite of
    /// `bench/relu_sv.py` with the peer at every `k`: whole curves at least
    /// 10x below the paper's procedure in processor time on every layer,
    /// no `k` above it, mean bound ratios 0.28-0.77 (on 100-wide layers over
    /// 500 points it fits every second `k` with up to 300 steps).
    public var workBudget: Double = 4.25e11
    /// Steps a fit is expected to take (for the work estimate): most fits
    /// keep improving slowly and run to their cap, so the default cap is
    /// budgeted (a fit's `maxSteps` below it is budgeted instead).
    public var expectedSteps: Int = FitSettings().maxSteps
    /// Fewest steps per fit before the automatic choice fits fewer `k`
    /// instead (on the suite, fewer `k` with longer fits gave lower curves
    /// than every `k` with shorter ones for the same work).
    public var minimumSteps: Int = 300
    /// Steps of a bridge fit as a fraction of a fit's step cap (0: no bridge
    /// fits). Where fits run at a stride, the unfitted requested `k` between
    /// two fitted `k` (below the numerical rank of `W`) across which the bound
    /// falls by more than `bridgeDrop` get a short minimax refinement
    /// (`ReluBoundFit` without the least-squares phase) from the lower of
    /// their best candidate and the first fitted `k`'s approximant extended by
    /// the next singular pairs of `W` (`SpectrumChain.bridge`). Without them
    /// such a `k` repeats the fitted value before it (`previous-k`), a
    /// staircase that stood up to 12 % above the paper's procedure where the
    /// curve falls fast (`bench/relu_sv.py`, layers `subspace` and `heldout-2`). Without a
    /// time budget the fits at the fitted `k` and their starts do not depend
    /// on them; their work is not charged to the work budget (it does not
    /// change the stride).
    public var bridgeShare: Double = 0.5
    /// The relative drop of the bound between two fitted `k` above which the
    /// `k` between get bridge fits: where it falls less, the previous `k`'s
    /// value stays within it (measured: below the paper's procedure on the
    /// suite's layers).
    public var bridgeDrop: Double = 0.15
    /// Fewest steps of a bridge fit.
    public var minimumBridgeSteps: Int = 30
    /// Largest fit stride with bridge fits: up to it the bridges of a steep
    /// interval cost about one fitted `k` or two (measured on the 100-wide
    /// layers of `bench/relu_sv.py`: 0-22 % more processor time where fits
    /// run at every 2nd `k`, up to about 35 % where at every 4th); at wider
    /// strides they would cost several times the fits.
    public var bridgeMaxStride: Int = 4
    /// Keep the factors of every reported approximant.
    public var keepFactors: Bool = false
    /// Fit each `k` also from the previous `k`'s best approximant extended by
    /// the next singular pairs of `W` (a warm start), besides the cold start.
    public var warmStart: Bool = true
    /// The warm fit runs only when its start is within this relative slack
    /// of the best bound after the cold fit, or the cold fit did not get
    /// below the previous `k`'s bound: where the cold fit already went well
    /// below both, a second fit ends at about the same value (measured on the
    /// suite of `bench/relu_sv.py`) for twice the work.
    public var warmFitSlack: Double = 0.1
    /// Fit each `k` from the cold start too; off (with `warmStart` on) it is
    /// the former warm-only engine, kept for the test that shows its plateaus.
    public var coldStart: Bool = true
    /// Evaluate the data-aware candidates (reduced-rank regression and the
    /// data projection, MATH.md §3) and use them as cold starts.
    public var dataCandidates: Bool = true
    /// A fit runs on at most this many points (groups), those of largest
    /// error at its start, when there are more (0: all); its result is
    /// certified over all points. Such fits refine from the start (no
    /// least-squares phase): the data-aware starts already minimise the
    /// linear least squares. One that ends no lower over all points than its
    /// start is repeated on all points (`SpectrumChain.fit`).
    public var fitPoints: Int = 2048
    /// Lawson reweighting rounds of the weighted reduced-rank regression
    /// (`weighted-rrr`, `WeightedRegression`, each a power step,
    /// `RoundBasis.powerStep`); 0: not evaluated.
    public var weightedRounds: Int = 5
    /// Exponent `p` of Lawson's update `d_g <- d_g (e_g / max e)^p`.
    public var weightedExponent: Double = 1
    /// Largest work, `weightedRounds K N m min(N, m)` (`K` the requested `k`
    /// with a weighted regression; each round priced as a thin SVD of the
    /// `N x m` pre-activations, about what a power step's three GEMMs of
    /// `N m k` and QR cost over the `k` of a curve), at which the weighted
    /// candidates are evaluated at every `k`; above it they are evaluated by
    /// bands (`WeightedBands`). The default is a few seconds of one core.
    public var weightedLimit: Double = 1e10
    /// Widest band of the weighted regression above `weightedLimit` (0: no
    /// bands); the width itself follows the problem (`WeightedBands.width`).
    public var weightedBandWidth: Int = 128
    /// Lawson rounds per band (0: no bands).
    public var weightedBandRounds: Int = 4
    /// Exponent `p` of Lawson's update in the bands: few rounds, so a faster
    /// update than at every `k` (`weightedExponent`).
    public var weightedBandExponent: Double = 2

    public init() {}
}

/// One point of the curve.
public struct SpectrumEntry: Sendable, Equatable {
    public var k: Int
    /// The linear singular value `sigma_k(W)`.
    public var sigma: Double
    /// The SVD truncation bound `t_k` (MATH.md §2), certified like `bound`.
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
    /// `max_i ||x_i||` over the rows.
    public var dataMaxNorm: Double
    /// Fits were run at every `fitStride`-th requested `k`.
    public var fitStride: Int
    /// The kept factors are those of the layer scaled by this power of two
    /// (`CertificationScale`): the approximant is `L = U V / factorScale`.
    public var factorScale: Double = 1
}

/// Computes certified upper bounds of the ReLU singular values `s_k(phi; X)`
/// (MATH.md §2–3, grouped as in §9) for every `k` in `ks` (each in
/// `0 ..< min(m, n)`, no repeats).
///
/// For each `k` the bound is the minimum over these candidates, each
/// evaluated exactly over all points and certified (in float32 as `DoublePass.swift` says):
/// - the families of `CandidateBasis` at rank `k`: the truncated SVD `W_k`
///   (also reported as `t_k`; at `k = 0` the exact value), reduced-rank
///   regression and the data projection (`dataCandidates`);
/// - the approximant of the previous requested `k` (rank `<= k`);
/// - the previous best extended by the next singular pairs of `W`;
/// - at every `fitStride`-th `k` below the numerical rank of `W`, the best
///   evaluated iterate of a fit (`ReluBoundFit`) from the cold start (the best
///   family candidate) and one from the warm start (the extended previous best),
///   and where the budget leaves room (`longFitRaise`) one from the weighted
///   regression when it is below the best start;
/// - at the `k` between two fitted `k` across which the bound falls by more
///   than `bridgeDrop`, the best iterate of a short minimax refinement (a
///   bridge fit, `SpectrumChain.bridge`; across the ends of chains after all
///   chains, `bridgeEnds`).
/// A bound whose certified value is exactly 0 is reported with source `zero`.
///
/// Work: one pass per family over all `k` (rank updates, `O(N m)` per `k`),
/// then contiguous chains of `k` (warm starts flow along a chain), one chain
/// per thread, balanced by estimated cost; the calling thread relays progress.
/// `weightSVD`: the thin SVD of the problem's `W` when the caller has it
/// (else computed here); it may hold fewer pairs of vectors than values
/// (`leadingSVD(of:vectors:)`), at least the largest requested `k` (an
/// `invalidArgument` error otherwise).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func reluSpectrum<Scalar: BLASScalar>(
    of problem: ReluBoundProblem<Scalar>, ks requested: [Int], settings: SpectrumSettings = SpectrumSettings(),
    weightSVD: ThinSVD<Scalar>? = nil, progress: Progress = .silent
) throws -> ReluSpectrum<Scalar> {
    let layer = problem.layer
    let p = min(layer.outputs, layer.inputs)
    try ReluBoundRequest.check(ks: requested, p: p, settings: settings)
    if let weightSVD {
        precondition(
            weightSVD.u.rows == layer.outputs && weightSVD.vt.columns == layer.inputs && weightSVD.s.count == p,
            "the weight's SVD does not have the shape of W")
        let largest = requested.max() ?? 0
        guard largest <= weightSVD.u.columns else {
            throw EngineError.invalidArgument(
                "the shared SVD of W holds the singular vectors of its \(weightSVD.u.columns) largest values "
                    + "only; k = \(largest) needs the first \(largest)")
        }
    }
    let svd = try weightSVD ?? layer.weight.withView { try thinSVD(of: $0) }
    try progress.advance(to: 0)  // a chance to cancel between the set-up steps
    let ks = requested.sorted()
    var bases = [CandidateBasis.svd(svd, points: problem.x)]
    // The plain regression, nil without data candidates or where `X W^T` overflows; the weighted one starts from it.
    let rrr = settings.dataCandidates ? try CandidateBasis.reducedRankRegression(layer: layer, points: problem.x) : nil
    if settings.dataCandidates {
        if let rrr { bases.append(rrr) }
        try progress.advance(to: 0)
        bases.append(try CandidateBasis.dataProjection(layer: layer, points: problem.x, pairs: ks.last ?? 0))
    }
    try progress.advance(to: 0)
    let weighting =
        rrr == nil
        ? .none
        : SpectrumPlan.weighting(
            points: problem.count, outputs: layer.outputs, inputs: layer.inputs, ks: ks, settings: settings)
    let plan = SpectrumPlan(problem: problem, ks: ks, rank: svd.numericalRank, settings: settings, weighting: weighting)

    let shared = SharedProgress()
    let familyUnits = (bases.count + (weighting == .none ? 0 : 1)) * ks.count
    let totalUnits = familyUnits + ks.reduce(0) { $0 + plan.units($1) }
    let overall = progress.scoped(0..<Int(progress.total), subtotal: totalUnits)
    let threads = plan.threads
    var lastReport = now()
    let singleThread = threads == 1
    let report: () throws -> Void = {
        if shared.cancelled { throw EngineError.cancelled }
        if singleThread, now() - lastReport > 0.05 {
            lastReport = now()
            try overall.advance(to: shared.value)
        }
    }

    // 1. Every family at every k (blocked passes, MATH.md §3).
    var familyBounds = try familyCurves(
        bases, problem: problem, ks: ks, weighting: weighting, threads: threads, shared: shared,
        report: report, progress: overall)
    var weighted: [Int: ChainBest<Scalar>] = [:]
    if let rrr, weighting == .everyK {
        weighted = try weightedCandidates(
            problem: problem, rrr: rrr, ks: ks, rounds: settings.weightedRounds,
            exponent: settings.weightedExponent, threads: threads,
            evaluated: { _ in true }, shared: shared, progress: overall,
            report: report)
    }
    if let rrr, case .bands(let width) = weighting {
        // Each band's basis joins the families, evaluated at its band only.
        let bands = try weightedBandCurves(
            problem: problem, rrr: rrr, ks: ks, width: width,
            rounds: settings.weightedBandRounds, exponent: settings.weightedBandExponent, threads: threads,
            shared: shared, progress: overall, report: report)
        for band in bands {
            for k in ks { familyBounds[k]!.append(band.bounds[k] ?? .infinity) }
            bases.append(band.basis)
        }
        shared.add(ks.count - ks.filter { $0 > 0 && $0 < rrr.size }.count)
    }

    // 2. Fits along chains of k.
    let deadline = settings.timeBudget > 0 ? now() + settings.timeBudget : Double.infinity
    let chains = plan.chains()
    var run = SpectrumChain(
        problem: problem, bases: bases, familyBounds: familyBounds, svd: svd, plan: plan, weighted: weighted)
    if !chains.isEmpty, settings.fit.maxSteps > 0 { run.rowSpace = try RowSpace(problem: problem) }
    let results = chains.map { _ in Box<[Int: (SpectrumEntry, RankFactors<Scalar>?)]>([:]) }
    let ends = chains.map { _ in Box(SpectrumChain<Scalar>.Ends()) }
    let tasks: [() throws -> Void] = chains.enumerated().map { index, chain in
        {
            (results[index].value, ends[index].value) = try run.run(
                chain, deadline: deadline, shared: shared, report: report)
        }
    }
    try runInParallel(tasks, threads: threads, shared: shared, progress: overall)
    var byK: [Int: (SpectrumEntry, RankFactors<Scalar>?)] = [:]
    for r in results { byK.merge(r.value) { a, _ in a } }
    try bridgeEnds(
        ends.map(\.value), run: run, entries: &byK, deadline: deadline, threads: threads, shared: shared,
        report: report, progress: overall)
    try overall.advance(to: totalUnits)

    // Make the curve monotone: a smaller k's approximant is a candidate.
    var previous: (SpectrumEntry, RankFactors<Scalar>?)?
    for k in ks {
        var (entry, factors) = byK[k]!
        if let previous, previous.0.bound < entry.bound {
            entry.bound = previous.0.bound
            entry.source = previous.0.bound == 0 ? .zero : .previousK
            factors = previous.1
        }
        byK[k] = (entry, factors)
        previous = (entry, factors)
    }
    // An error that overflowed certifies nothing: report it as such, not as an infinite bound.
    guard byK.values.allSatisfy({ $0.0.bound.isFinite }) else {
        throw EngineError.overflow("an approximation error exceeds the range of \(Scalar.self); rescale W, b or X")
    }
    return ReluSpectrum(
        entries: requested.map { byK[$0]!.0 },
        factors: requested.map { settings.keepFactors ? byK[$0]!.1 : nil },
        dataMaxNorm: problem.maxPointNorm, fitStride: plan.stride)
}

/// The bridge fits across the ends of the chains (`SpectrumChain.Ends`): the
/// unfitted `k` between the last fitted `k` of one chain and the first fitted
/// `k` of a later one, bridged like those inside a chain (`SpectrumChain.bridge`),
/// the groups in parallel; `entries` updated where a bridge is lower.
func bridgeEnds<Scalar: BLASScalar>(
    _ ends: [SpectrumChain<Scalar>.Ends], run: SpectrumChain<Scalar>,
    entries: inout [Int: (SpectrumEntry, RankFactors<Scalar>?)], deadline: Double, threads: Int,
    shared: SharedProgress, report: @escaping () throws -> Void, progress: Progress
) throws {
    var groups: [(anchor: ChainBest<Scalar>?, pending: [SpectrumChain<Scalar>.Pending], next: Int)] = []
    var anchor: ChainBest<Scalar>?
    var carried: [SpectrumChain<Scalar>.Pending] = []
    for end in ends {
        carried += end.head
        if let first = end.firstFitted {
            if !carried.isEmpty { groups.append((anchor, carried, first)) }
            anchor = end.anchor
            carried = end.tail
        } else {
            carried += end.tail
        }
    }
    // After the last fitted k no drop is known: no bridge fits.
    shared.add(carried.count * run.plan.bridge.maxSteps)
    let updates = groups.map { group in
        Box(Dictionary(uniqueKeysWithValues: group.pending.map { ($0.k, entries[$0.k]!) }))
    }
    let tasks: [() throws -> Void] = groups.indices.map { index in
        { [entries] in
            let group = groups[index]
            try run.bridge(
                group.pending, from: group.anchor, to: entries[group.next]!.0.bound, out: &updates[index].value,
                deadline: deadline, shared: shared, report: report)
        }
    }
    try runInParallel(tasks, threads: threads, shared: shared, progress: progress)
    for update in updates { entries.merge(update.value) { _, b in b } }
}

extension SpectrumSettings {
    /// Throws `EngineError.invalidArgument` naming the first setting out of its
    /// range. The one owner of these checks; `ReluBoundRequest.check` calls it
    /// (for `reluSpectrum`, and for the C surface before it sizes memory).
    public func validate() throws {
        guard timeBudget.isFinite, timeBudget >= 0 else {
            throw EngineError.invalidArgument("time_budget must be finite and >= 0, got \(timeBudget)")
        }
        guard fit.learningRate.isFinite, fit.learningRate > 0 else {
            throw EngineError.invalidArgument("learning_rate must be positive, got \(fit.learningRate)")
        }
        guard fit.batchSize > 0 else {
            throw EngineError.invalidArgument("batch_size must be positive, got \(fit.batchSize)")
        }
        guard fit.maxSteps >= 0, fit.evaluationInterval > 0 else {
            throw EngineError.invalidArgument("max_steps must be >= 0 and the evaluation interval positive")
        }
        guard weightedRounds >= 0, weightedExponent.isFinite, weightedExponent > 0, warmFitSlack >= 0,
            weightedBandWidth >= 0, weightedBandRounds >= 0, weightedBandExponent.isFinite, weightedBandExponent > 0
        else {
            throw EngineError.invalidArgument(
                "weighted rounds and band width must be >= 0, their exponents positive and the warm-fit slack >= 0")
        }
        guard bridgeShare.isFinite, bridgeShare >= 0, minimumBridgeSteps >= 0, bridgeDrop.isFinite, bridgeDrop >= 0,
            bridgeMaxStride >= 0
        else {
            throw EngineError.invalidArgument(
                "the bridge share and drop must be finite and >= 0, the bridges' minimum steps and stride >= 0")
        }
    }
}

/// A value written by one worker thread and read after it is joined.
final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// The certified bound of every family's approximant at every `k` of `ks`
/// (ascending; beyond a basis's size the whole basis, rank `<= k`), keyed by
/// `k` in the order of `bases`: one blocked pass per family (`NestedCurve`),
/// the rows split into `threads` ranges run in parallel, then certified
/// (a `Float` problem's passes run on its `Double` copies, `passInDouble`).
func familyCurves<Scalar: BLASScalar>(
    _ bases: [CandidateBasis<Scalar>], problem: ReluBoundProblem<Scalar>, ks: [Int],
    weighting: SpectrumPlan.Weighting, threads: Int, shared: SharedProgress, report: @escaping () throws -> Void,
    progress: Progress
) throws -> [Int: [Double]] {
    if let exact = try problem.passInDouble(bases) {
        return try familyCurves(
            exact.bases, problem: exact.problem, ks: ks, weighting: weighting, threads: threads, shared: shared,
            report: report, progress: progress)
    }
    let largest = ks.last ?? 0
    let evaluated = bases.map { basis in
        ks.indices.filter {
            SpectrumPlan.evaluates(
                basis.source, position: $0, k: ks[$0], problem: problem, largestK: largest, weighting: weighting)
        }
    }
    let curves = try bases.indices.map { index in
        try NestedCurve(
            problem: problem, basis: bases[index], first: 0,
            counts: evaluated[index].map { min(ks[$0], bases[index].size) }, start: nil)
    }
    let parts = max(1, min(threads, problem.count / 64))
    let fills: [() throws -> Void] = curves.flatMap { curve in
        (0..<parts).map { part in
            {
                let rows = (problem.count * part / parts)..<(problem.count * (part + 1) / parts)
                try curve.fill(rows: rows, report: report)
            }
        }
    }
    try runInParallel(fills, threads: threads, shared: shared, progress: progress)
    let bounds = curves.map { _ in Box<[Double]>([]) }
    let certifications: [() throws -> Void] = curves.indices.map { index in
        {
            bounds[index].value = curves[index].bounds()
            shared.add(ks.count)
        }
    }
    try runInParallel(certifications, threads: threads, shared: shared, progress: progress)
    // +infinity where a family was not evaluated.
    var out: [Int: [Double]] = Dictionary(
        uniqueKeysWithValues: ks.map { ($0, [Double](repeating: .infinity, count: bases.count)) })
    for index in bases.indices {
        for (q, i) in evaluated[index].enumerated() { out[ks[i]]![index] = bounds[index].value[q] }
    }
    return out
}

/// Which `k` are fitted, with which settings, and what each costs (flops,
/// for balancing chains and for the automatic stride).
struct SpectrumPlan {
    let fit: FitSettings
    let stride: Int
    let threads: Int
    /// Fits per fitted `k` at most (cold, warm, and the weighted start where `weightedStart`).
    let starts: Int
    /// Fit also from the weighted regression where it is below the best start
    /// (`SpectrumSettings.longFitRaise`).
    let weightedStart: Bool
    /// Fits per fitted k the work estimate counts.
    let budgetedStarts: Double
    let rank: Int
    let ks: [Int]
    let settings: SpectrumSettings
    /// Settings of the bridge fits between fitted `k` (`bridged`).
    let bridge: FitSettings
    private let position: [Int: Int]
    private let perK: (Int) -> Double

    init<Scalar>(
        problem: ReluBoundProblem<Scalar>, ks: [Int], rank: Int, settings: SpectrumSettings, weighting: Weighting
    ) {
        let m = problem.layer.outputs
        let n = problem.layer.inputs
        let N = problem.count
        var fit = settings.fit
        let subset = settings.fitPoints > 0 && problem.groups > settings.fitPoints
        if subset { fit.leastSquaresFirst = false }
        let rows = subset ? settings.fitPoints * problem.groupSize : N
        let batch = Double(rows <= max(fit.fullBatchRows, fit.batchSize) ? rows : fit.batchSize)
        let active = Double(min(rows, fit.activeSetSize * problem.groupSize))
        let starts = settings.warmStart ? 2 : 1
        let lsShare = fit.leastSquaresFirst ? 0.5 : 0
        // The warm fit runs only where the cold one stayed near its start
        // (`warmFitSlack`): the work is budgeted as one fit per k then.
        let budgeted = settings.warmStart && !settings.warmFitSlack.isFinite ? 2.0 : 1.0
        // GEMM flops of a step and its share of an evaluation, plus a fixed
        // overhead (measured: a few hundred microseconds) that dominates small problems.
        let perStep = { (k: Int) -> Double in
            2 * Double(k * (m + n))
                * (3 * (lsShare * batch + (1 - lsShare) * active)
                    + Double(rows) / Double(fit.evaluationInterval)) + 5e6
        }
        perK = perStep
        // A fit on a subset ends with one evaluation over all points.
        let certification = { (k: Int) -> Double in subset ? 2 * Double(k * (m + n) * N) : 0 }
        func fitCost(_ k: Int, steps: Int) -> Double {
            budgeted * (Double(steps) * perStep(k) + certification(k))
        }
        let fittable = ks.filter { $0 > 0 && $0 < rank && fit.maxSteps > 0 }
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        threads = settings.threads > 0 ? settings.threads : cores
        let budget = SpectrumPlan.budget(settings)
        // The blocked passes of the families and of the fits' extensions come
        // first; the fits get what is left (at least a tenth of the budget).
        // A time budget is wall-clock, so every thread adds capacity; the work
        // budget is the whole curve's, so the plan (and the result) does not
        // depend on the thread count.
        let parallel = settings.timeBudget > 0 ? Double(min(threads, max(1, fittable.count))) : 1
        let passes = SpectrumPlan.passCost(problem: problem, ks: ks, settings: settings, weighting: weighting)
        let capacity = max(0.1 * budget * parallel, budget * parallel - passes)
        var expected = min(fit.maxSteps, settings.expectedSteps)
        var total = fittable.reduce(0.0) { $0 + fitCost($1, steps: expected) }
        // Room in the budget raises the effort (`maxRaise`, `longFitRaise`); the work
        // budget raises a cap only at the default or above: a lower one is the caller's choice.
        var extraStart = false
        let raisable = settings.timeBudget > 0 || fit.maxSteps >= FitSettings().maxSteps
        if raisable, total > 0, total < capacity {
            let raise = min(settings.maxRaise, capacity / total)
            fit.maxSteps = Int(Double(fit.maxSteps) * raise)
            fit.leastSquaresPatience = Int((Double(fit.leastSquaresPatience) * raise).rounded())
            if settings.timeBudget > 0 {
                fit.patience = Int((Double(fit.patience) * raise).rounded())
                fit.stepHalvings += Int(log2(raise).rounded())
            }
            if raise >= settings.longFitRaise {
                fit.leastSquaresByLoss = true
                extraStart = weighting == .everyK
            }
        }
        var stride = settings.fitStride
        if stride <= 0 {
            // Over budget: first fewer steps per fit (down to minimumSteps), then a stride.
            if total > capacity, expected > settings.minimumSteps {
                let steps = max(settings.minimumSteps, Int(Double(expected) * capacity / total))
                fit.maxSteps = steps
                expected = steps
                total = fittable.reduce(0.0) { $0 + fitCost($1, steps: expected) }
            }
            stride = SpectrumPlan.automaticStride(work: total, capacity: capacity, count: ks.count)
        }
        self.fit = fit
        self.stride = stride
        bridge = SpectrumPlan.bridgeSettings(fit, stride: stride, settings: settings)
        self.starts = starts + (extraStart ? 1 : 0)
        self.weightedStart = extraStart
        self.budgetedStarts = budgeted
        self.rank = rank
        self.ks = ks
        self.settings = settings
        position = Dictionary(uniqueKeysWithValues: ks.enumerated().map { ($1, $0) })
        self.expected = expected
        self.evaluation = Double(N * m)
    }

    private let expected: Int
    private let evaluation: Double

    /// The automatic stride for fits of `work` flops in `capacity`: the power
    /// of two nearest to `work / capacity` (so fitted `k` fall on round
    /// values), 1 when the work fits, and at most the power of two at or
    /// above `count` (the requested `k`; a wider stride fits the same `k`).
    /// Every ratio, down to a capacity of 0 (a `timeBudget` of a few
    /// zeptoseconds) or an infinite one, gives a stride in `1 ... 2^62`.
    static func automaticStride(work: Double, capacity: Double, count: Int) -> Int {
        let raw = work / capacity
        guard raw > 1 else { return 1 }  // also NaN (0 / 0): nothing to thin out
        let n = max(1, count)
        let widest = Int.bitWidth - 1 - n.leadingZeroBitCount + (n & (n - 1) == 0 ? 0 : 1)  // ceil(log2 n)
        let exponent = raw.isFinite ? min(log2(raw).rounded(), Double(widest)) : Double(widest)
        return 1 << Int(max(0, exponent))
    }

    /// Every stride-th k, all k below `min(stride, 8)` and, when the stride
    /// is at most 8 (fits are cheap), the last 8 below the rank: the curve
    /// falls fastest at both ends, where an unfitted k is furthest above a fit.
    func fitted(_ k: Int) -> Bool {
        let top = stride <= 8 ? 8 : 0
        return k > 0 && k < rank && fit.maxSteps > 0
            && (position[k]! % stride == 0 || k < min(stride, 8) || k >= rank - top)
    }

    /// A `k` between fitted ones that gets a bridge fit (`SpectrumSettings.bridgeShare`).
    func bridged(_ k: Int) -> Bool {
        stride > 1 && bridge.maxSteps > 0 && k > 0 && k < rank && !fitted(k)
    }

    /// The bridge fits' settings: the fits' without the least-squares phase,
    /// `bridgeShare * maxSteps` steps (at least `minimumBridgeSteps`, at most
    /// the fits' cap; 0 without a stride or above `bridgeMaxStride`).
    static func bridgeSettings(_ fit: FitSettings, stride: Int, settings: SpectrumSettings) -> FitSettings {
        var bridge = fit
        bridge.leastSquaresFirst = false
        let share = Double(fit.maxSteps) * settings.bridgeShare
        bridge.maxSteps =
            stride <= 1 || stride > settings.bridgeMaxStride || settings.bridgeShare <= 0 || fit.maxSteps == 0
            ? 0 : min(fit.maxSteps, max(settings.minimumBridgeSteps, Int(share.rounded())))
        return bridge
    }

    /// Flop equivalents of one element step of a blocked pass (`NestedCurve`:
    /// an update and an error term), measured against the GEMM rate the
    /// budget assumes: the pass runs at about 1/40 of it per element.
    static let elementCost = 40.0

    /// Evaluate the data-aware families at every `k` when the blocked pass is
    /// at most this many element steps (`N m max k`), else at every
    /// `largeFamilyStride`-th requested `k`: the data projection (it rarely
    /// wins on large layers with `N > n`) and, where the weighted regression
    /// runs by bands (which supersede it), the plain regression. Between the
    /// evaluated `k` the pass adds the pairs by GEMM (`NestedCurve`).
    static let familiesEverywhere = 4e9
    static let largeFamilyStride = 8

    /// Where a family is evaluated: every `k`, but on a large problem the data
    /// projection, and the plain regression under weighted bands, only at every
    /// `largeFamilyStride`-th position and where they are exact (`k >= min(N, n)`,
    /// and for the regression `k >= min(N, m, n)`).
    static func evaluates<Scalar>(
        _ source: BoundSource, position: Int, k: Int, problem: ReluBoundProblem<Scalar>,
        largestK: Int, weighting: Weighting
    ) -> Bool {
        let N = problem.count
        let m = problem.layer.outputs
        let n = problem.layer.inputs
        guard Double(N) * Double(m) * Double(largestK) > familiesEverywhere,
            position % largeFamilyStride != 0
        else { return true }
        switch source {
        case .dataProjection: return k >= min(N, n)
        case .reducedRankRegression: return !weighting.banded || k >= min(N, m, n)
        default: return true
        }
    }

    /// How the weighted regression is evaluated (MATH.md §3).
    enum Weighting: Equatable {
        case none
        /// Lawson's iteration at every `k` (`weightedCandidates`).
        case everyK
        /// By bands of about `width` `k` (`weightedBandCurves`).
        case bands(width: Int)

        var banded: Bool { if case .bands = self { true } else { false } }
    }

    /// At every `k` while the work is at most `weightedLimit`, else by bands
    /// as wide as `WeightedBands.width` says; none without data candidates or
    /// rounds. (The caller also needs the plain regression, which is missing
    /// when `X W^T` overflows.) The one owner of this choice: the curve, its
    /// plan and its memory estimate call it.
    static func weighting(
        points N: Int, outputs m: Int, inputs n: Int, ks: [Int], settings: SpectrumSettings
    ) -> Weighting {
        guard settings.dataCandidates, settings.weightedRounds > 0 else { return .none }
        let limit = WeightedBands.limit(points: N, outputs: m)
        let weightedKs = Double(ks.filter { $0 > 0 && $0 < limit }.count)
        let perK = Double(settings.weightedRounds) * Double(N) * Double(m) * Double(min(N, m))
        if weightedKs * perK <= settings.weightedLimit { return .everyK }
        guard settings.weightedBandWidth > 0, settings.weightedBandRounds > 0 else { return .none }
        // The bands' rounds may cost as much as the fits' budget, or twice the blocked passes where more.
        let passes = familyPassCost(points: N, outputs: m, ks: ks, settings: settings, banded: true)
        return .bands(
            width: WeightedBands.width(
                points: N, outputs: m, inputs: n, ks: ks, rounds: settings.weightedBandRounds,
                widest: settings.weightedBandWidth, allowed: max(2 * passes, budget(settings))))
    }

    /// Flops the whole curve aims at: `workBudget`, or with a time budget its
    /// seconds at the rate the plan assumes.
    static func budget(_ settings: SpectrumSettings) -> Double {
        settings.timeBudget > 0 ? 1.8e10 * settings.timeBudget : settings.workBudget
    }

    /// Estimated flops of the families' blocked passes: the SVD family and
    /// reduced-rank regression at every `k` (under bands where evaluated),
    /// the data projection where evaluated and the fits' extensions (about one
    /// more pass).
    static func familyPassCost(points N: Int, outputs m: Int, ks: [Int], settings: SpectrumSettings, banded: Bool)
        -> Double
    {
        let work = Double(N) * Double(m) * Double(ks.max() ?? 0)
        // A family evaluated at every `largeFamilyStride`-th k costs about that fraction of a pass.
        let strided = work <= familiesEverywhere ? 1 : 1 / Double(largeFamilyStride)
        let dataPasses = settings.dataCandidates ? strided + (banded ? strided : 1) : 0
        return elementCost * work * (2 + dataPasses)
    }

    /// Estimated flops of the blocked passes: the families' (`familyPassCost`)
    /// and the weighted bands'. Lawson's rounds are not charged to the fits'
    /// budget: they are bounded on their own (`weighting`), and where they
    /// took from the fits, curves came out higher (docs/engine.md).
    static func passCost<Scalar>(
        problem: ReluBoundProblem<Scalar>, ks: [Int], settings: SpectrumSettings, weighting: Weighting
    ) -> Double {
        let N = problem.count
        let m = problem.layer.outputs
        guard case .bands(let width) = weighting else {
            return familyPassCost(points: N, outputs: m, ks: ks, settings: settings, banded: false)
        }
        return familyPassCost(points: N, outputs: m, ks: ks, settings: settings, banded: true)
            + WeightedBands.passCost(points: N, outputs: m, inputs: problem.layer.inputs, ks: ks, width: width)
    }
    func cost(_ k: Int) -> Double {
        (fitted(k) ? budgetedStarts * Double(expected) * perK(k) : 0) + 4 * evaluation + 1
    }
    /// Progress units of one `k` (a bridge fit's steps, run or not, included).
    func units(_ k: Int) -> Int { fitted(k) ? fit.maxSteps * starts + 1 : bridged(k) ? bridge.maxSteps + 1 : 1 }

    /// Contiguous chains of about equal cost; the split depends on the work
    /// only, never on the thread count, so that results do not either.
    func chains() -> [[Int]] {
        let totalCost = ks.reduce(0.0) { $0 + cost($1) }
        let chainCount = max(1, min(ks.count, totalCost < 5e8 ? 1 : settings.chains))
        var chains: [[Int]] = []
        var current: [Int] = []
        var accumulated = 0.0
        for k in ks {
            current.append(k)
            accumulated += cost(k)
            if accumulated >= totalCost * Double(chains.count + 1) / Double(chainCount), chains.count < chainCount - 1 {
                chains.append(current)
                current = []
            }
        }
        if !current.isEmpty { chains.append(current) }
        return chains
    }
}
